//! Applying one execution (a webhook body, or what the reconciler read from Bolna) to its call, in
//! the caller's transaction: match the call, move its status forward by the state machine, merge
//! the data later events add, and free its slot when the line is free — exactly once.

use bolna_client::Execution;
use sqlx::PgConnection;

use super::store::EventOutcome;
use crate::calls::handover::release_and_hand_over;
use crate::calls::{Call, CallStatus, Transition};
use crate::service::ServiceConfig;
use crate::{select_call, CallId};

/// What applying an execution did.
#[derive(Debug)]
pub(crate) struct Applied {
    pub outcome: EventOutcome,
    pub call: Option<CallId>,
    /// A queued call that received the freed slot: start it after commit.
    pub next: Option<Call>,
    pub detail: Option<String>,
}

impl Applied {
    fn unmatched(detail: impl Into<String>) -> Self {
        Self { outcome: EventOutcome::Unmatched, call: None, next: None, detail: Some(detail.into()) }
    }
}

pub(crate) async fn apply_execution(
    conn: &mut PgConnection,
    execution: &Execution,
    config: &ServiceConfig,
) -> sqlx::Result<Applied> {
    let Some(call) = find_call(conn, execution).await? else {
        return Ok(Applied::unmatched("no call matches this execution ID or switchboard_call_id"));
    };
    let call = match call {
        Matched::Call(call) => *call,
        Matched::Conflict(detail) => return Ok(Applied::unmatched(detail)),
    };
    let incoming = match CallStatus::from_execution(&execution.status) {
        // Stopped at the user's request: the user canceled it.
        Some(CallStatus::Stopped) if call.cancel_requested_at.is_some() => Some(CallStatus::Canceled),
        other => other,
    };
    let transition = match incoming {
        Some(status) => call.status.transition(true, status),
        None => Transition::Stale,
    };
    let apply = transition == Transition::Apply;
    let line_free = incoming.is_some_and(CallStatus::line_is_free);
    let telephony = execution.telephony_data.clone().unwrap_or_default();
    let new_status = incoming.filter(|_| apply).map(CallStatus::as_str);
    sqlx::query!(
        r#"UPDATE calls SET
              status = COALESCE($2, status),
              provider_status = $3,
              last_event_at = now(),
              started_at = COALESCE(started_at, now()),
              answered_at = CASE WHEN $2 = 'in-progress' THEN COALESCE(answered_at, now()) ELSE answered_at END,
              ended_at = CASE WHEN $4 THEN COALESCE(ended_at, now()) ELSE ended_at END,
              conversation_duration = COALESCE(NULLIF($5::float8, 0), conversation_duration),
              total_cost = COALESCE(NULLIF($6::float8, 0), total_cost),
              transcript = COALESCE($7, transcript),
              recording_url = COALESCE($8, recording_url),
              hangup_by = COALESCE($9, hangup_by),
              hangup_reason = COALESCE($10, hangup_reason),
              hangup_provider_code = COALESCE($11, hangup_provider_code),
              answered_by_voice_mail = COALESCE($12, answered_by_voice_mail),
              extracted_data = COALESCE($13, extracted_data),
              error = CASE WHEN $2 IS NOT NULL AND $14::text IS NOT NULL THEN $14 ELSE error END,
              reconcile_reason = CASE WHEN $2 IS NOT NULL THEN NULL ELSE reconcile_reason END
           WHERE id = $1"#,
        call.id as CallId,
        new_status,
        execution.status.as_str(),
        line_free,
        execution.duration_seconds(),
        execution.total_cost,
        execution.transcript,
        telephony.recording_url,
        telephony.hangup_by,
        telephony.hangup_reason,
        telephony.hangup_provider_code,
        execution.answered_by_voice_mail,
        execution.extracted_data.clone().filter(|data| !data.is_null()),
        execution.error_message,
    )
    .execute(&mut *conn)
    .await?;

    if apply && incoming.is_some_and(CallStatus::is_terminal) {
        crate::campaigns::settle::settle_contact(conn, call.id, config.clock.now()).await?;
    }
    let next = if line_free {
        release_and_hand_over(conn, call.id, &format!("line free: {}", execution.status), config).await?
    } else {
        concurrency::extend_lease(conn, call.id, config.lease).await?;
        None
    };
    let (outcome, detail) = match (transition, incoming) {
        (_, None) => (EventOutcome::Stale, Some(format!("unknown status `{}` stored", execution.status))),
        (Transition::Apply, _) => (EventOutcome::Applied, None),
        (Transition::Duplicate, _) => (EventOutcome::Duplicate, None),
        (Transition::Stale, _) => (EventOutcome::Stale, Some(format!("call is already {}", call.status))),
    };
    Ok(Applied { outcome, call: Some(call.id), next, detail })
}

enum Matched {
    Call(Box<Call>),
    Conflict(String),
}

/// The call, locked: by execution ID, else by our call ID echoed in `recipient_data` (then the
/// execution ID is adopted onto the call and its slot).
async fn find_call(conn: &mut PgConnection, execution: &Execution) -> sqlx::Result<Option<Matched>> {
    if let Some(call) = select_call!("WHERE bolna_execution_id = $1 FOR UPDATE", execution.id)
        .fetch_optional(&mut *conn)
        .await?
    {
        return Ok(Some(Matched::Call(Box::new(call))));
    }
    let Some(id) = execution.switchboard_call_id().and_then(|id| id.parse::<CallId>().ok()) else {
        return Ok(None);
    };
    let Some(call) =
        select_call!("WHERE id = $1 FOR UPDATE", id as CallId).fetch_optional(&mut *conn).await?
    else {
        return Ok(None);
    };
    match &call.bolna_execution_id {
        // Recorded meanwhile (the row lock waited for the hand-off's transaction): the same call.
        Some(recorded) if *recorded == execution.id => Ok(Some(Matched::Call(Box::new(call)))),
        Some(other) => Ok(Some(Matched::Conflict(format!("call {id} belongs to execution {other}")))),
        None => {
            sqlx::query!(
                "UPDATE calls SET bolna_execution_id = $2 WHERE id = $1",
                id as CallId,
                execution.id
            )
            .execute(&mut *conn)
            .await?;
            concurrency::update_active_call_with_execution_id(conn, id, &execution.id).await?;
            tracing::info!(call_id = %id, execution_id = %execution.id, "execution ID adopted from a webhook");
            Ok(Some(Matched::Call(Box::new(Call { bolna_execution_id: Some(execution.id.clone()), ..call }))))
        }
    }
}
