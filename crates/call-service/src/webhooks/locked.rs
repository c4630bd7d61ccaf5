//! Applying one execution to its call under the call's row lock, in the caller's transaction: for
//! webhooks that free the line or name a call not yet matched, and for what the reconciler reads
//! from Bolna. Match the call, write the decision (see [`super::writer`]), and when the line is
//! free give the slot back and hand it on — exactly once.

use bolna_client::Execution;
use chrono::{DateTime, Utc};
use concurrency::SlotPolicy;
use sqlx::PgConnection;

use super::decision::Decision;
use super::store::{insert_event, EventOutcome, ReceivedEvent};
use super::writer::{write_executions, ExecutionWrite, Written};
use crate::calls::ending::release_slot;
use crate::calls::store::{adopt_execution_id, lock_call};
use crate::calls::Call;
use crate::{select_call, CallId};

/// What applying an execution did.
#[derive(Debug)]
pub(crate) struct Applied {
    pub outcome: EventOutcome,
    pub call: Option<CallId>,
    /// A queued call that received the freed slot: start it after commit.
    pub next: Option<Call>,
    pub detail: Option<String>,
    /// The webhook event stored with the outcome, when one was given to store.
    pub event_id: Option<i64>,
}

/// Applies `execution` to its call under the call's row lock, in the caller's transaction; stores
/// `event` with the outcome when given (else the caller records it).
pub(crate) async fn apply_execution(
    conn: &mut PgConnection,
    execution: &Execution,
    slots: &SlotPolicy,
    now: DateTime<Utc>,
    event: Option<&ReceivedEvent<'_>>,
) -> sqlx::Result<Applied> {
    let call = match find_call(&mut *conn, execution).await? {
        Matched::Nothing => {
            let detail = "no call matches this execution ID or switchboard_call_id";
            return unmatched(conn, event, detail.into()).await;
        }
        Matched::Conflict(detail) => return unmatched(conn, event, detail).await,
        Matched::Call(call) => *call,
    };
    let decision = Decision::new(
        call.status,
        call.provider_status.as_deref(),
        call.cancel_requested_at.is_some(),
        execution,
    );
    let write =
        ExecutionWrite { id: call.id, read_status: call.status, decision: &decision, execution, event };
    // The row is locked: the status cannot have changed, so the write always happens.
    let event_id = match write_executions(&mut *conn, std::slice::from_ref(&write), slots.lease).await?[..] {
        [Written::Done { event_id }] => event_id,
        _ => None,
    };
    // A campaign call that ends or frees its line no longer counts against its campaign's
    // concurrency: settling its contact wakes the campaign; a line freed before the end
    // (`call-disconnected`) wakes it here. Both before the slot's release takes the user's row.
    if decision.ends_the_call() {
        crate::campaigns::settle::settle_contact(conn, call.id, now).await?;
    } else if let Some(campaign) = call.campaign_id.filter(|_| decision.line_free) {
        crate::campaigns::due::wake_campaign(conn, campaign, now).await?;
    }
    let next = match decision.line_free {
        true => release_slot(conn, call.id, &format!("line free: {}", execution.status), slots).await?,
        false => None,
    };
    let Decision { outcome, detail, .. } = decision;
    Ok(Applied { outcome, call: Some(call.id), next, detail, event_id })
}

/// No call for the execution: `event` (if given) is stored as unmatched, for the reconciler.
async fn unmatched(
    conn: &mut PgConnection,
    event: Option<&ReceivedEvent<'_>>,
    detail: String,
) -> sqlx::Result<Applied> {
    let event_id = match event {
        Some(event) => Some(insert_event(conn, event, EventOutcome::Unmatched, Some(&detail)).await?),
        None => None,
    };
    Ok(Applied { outcome: EventOutcome::Unmatched, call: None, next: None, detail: Some(detail), event_id })
}

/// Which call an execution belongs to.
enum Matched {
    Call(Box<Call>),
    /// Our call ID names a call that belongs to another execution.
    Conflict(String),
    Nothing,
}

/// The call, locked: by execution ID, else by our call ID echoed in `recipient_data` (then the
/// execution ID is adopted onto the call and its slot).
async fn find_call(conn: &mut PgConnection, execution: &Execution) -> sqlx::Result<Matched> {
    if let Some(call) = select_call!("WHERE bolna_execution_id = $1 FOR UPDATE", execution.id)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(Matched::Call(Box::new(call)));
    }
    let Some(id) = execution.switchboard_call_id().and_then(|id| id.parse::<CallId>().ok()) else {
        return Ok(Matched::Nothing);
    };
    let Some(call) = lock_call(conn, id).await? else {
        return Ok(Matched::Nothing);
    };
    match &call.bolna_execution_id {
        // Recorded meanwhile (the row lock waited for the hand-off's transaction): the same call.
        Some(recorded) if *recorded == execution.id => Ok(Matched::Call(Box::new(call))),
        Some(other) => Ok(Matched::Conflict(format!("call {id} belongs to execution {other}"))),
        None => {
            adopt_execution_id(conn, id, &execution.id).await?;
            concurrency::update_active_call_with_execution_id(conn, id, &execution.id).await?;
            tracing::info!(call_id = %id, execution_id = %execution.id, "execution ID adopted from a webhook");
            Ok(Matched::Call(Box::new(Call { bolna_execution_id: Some(execution.id.clone()), ..call })))
        }
    }
}
