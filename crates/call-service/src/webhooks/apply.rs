//! Applying one execution (a webhook body, or what the reconciler read from Bolna) to its call, in
//! the caller's transaction: match the call, move its status forward by the state machine, merge
//! the data later events add, and free its slot when the line is free — exactly once.

use bolna_client::Execution;
use sqlx::{PgConnection, PgPool};

use super::store::{insert_event, EventOutcome, ReceivedEvent};
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
    /// The webhook event stored with the outcome, when one was given to store.
    pub event_id: Option<i64>,
}

/// What an execution does to a call, decided from the call's status alone.
struct Decision {
    incoming: Option<CallStatus>,
    transition: Transition,
    /// The line is free (the call ended or disconnected): the slot goes back.
    line_free: bool,
    outcome: EventOutcome,
    detail: Option<String>,
}

impl Decision {
    fn new(status: CallStatus, cancel_requested: bool, execution: &Execution) -> Self {
        let incoming = match CallStatus::from_execution(&execution.status) {
            // Stopped at the user's request: the user canceled it.
            Some(CallStatus::Stopped) if cancel_requested => Some(CallStatus::Canceled),
            other => other,
        };
        let transition = match incoming {
            Some(incoming) => status.transition(true, incoming),
            None => Transition::Stale,
        };
        let (outcome, detail) = match (transition, incoming) {
            (_, None) => (EventOutcome::Stale, Some(format!("unknown status `{}` stored", execution.status))),
            (Transition::Apply, _) => (EventOutcome::Applied, None),
            (Transition::Duplicate, _) => (EventOutcome::Duplicate, None),
            (Transition::Stale, _) => (EventOutcome::Stale, Some(format!("call is already {status}"))),
        };
        let line_free = incoming.is_some_and(CallStatus::line_is_free);
        Self { incoming, transition, line_free, outcome, detail }
    }

    /// The status to write, when the call moves.
    fn new_status(&self) -> Option<&'static str> {
        self.incoming.filter(|_| self.transition == Transition::Apply).map(CallStatus::as_str)
    }

    fn ends_the_call(&self) -> bool {
        self.transition == Transition::Apply && self.incoming.is_some_and(CallStatus::is_terminal)
    }
}

/// Applies `execution` to its call under the call's row lock, in the caller's transaction; stores
/// `event` with the outcome when given (else the caller records it).
pub(crate) async fn apply_execution(
    conn: &mut PgConnection,
    execution: &Execution,
    config: &ServiceConfig,
    event: Option<&ReceivedEvent<'_>>,
) -> sqlx::Result<Applied> {
    let call = match find_call(&mut *conn, execution).await? {
        None => {
            let detail = "no call matches this execution ID or switchboard_call_id";
            return unmatched(conn, event, detail.into()).await;
        }
        Some(Matched::Conflict(detail)) => return unmatched(conn, event, detail).await,
        Some(Matched::Call(call)) => *call,
    };
    let decision = Decision::new(call.status, call.cancel_requested_at.is_some(), execution);
    // The row is locked: the status cannot have changed, so the write always happens.
    let event_id = write_execution(&mut *conn, call.id, call.status, &decision, execution, config, event)
        .await?
        .unwrap_or_default();
    if decision.ends_the_call() {
        crate::campaigns::settle::settle_contact(conn, call.id, config.clock.now()).await?;
    }
    let next = match decision.line_free {
        true => {
            release_and_hand_over(conn, call.id, &format!("line free: {}", execution.status), config).await?
        }
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

/// The common case of a webhook — a live status (`initiated`, `ringing`, `in-progress`, …) for a
/// call known by its execution ID — without a transaction: read the call, decide, then one
/// statement that writes the call only if its status is still the one read (optimistic
/// concurrency), extends its lease and stores `event`. Two round trips instead of seven. `None`
/// when this path does not apply or lost a race: the caller then takes the locked path.
pub(crate) async fn apply_live_status(
    pool: &PgPool,
    execution: &Execution,
    config: &ServiceConfig,
    event: &ReceivedEvent<'_>,
) -> sqlx::Result<Option<Applied>> {
    let live = CallStatus::from_execution(&execution.status).is_some_and(|status| !status.line_is_free());
    if !live {
        return Ok(None);
    }
    let Some(call) = sqlx::query!(
        r#"SELECT id AS "id: CallId", status AS "status: CallStatus", cancel_requested_at IS NOT NULL AS "cancel_requested!"
           FROM calls WHERE bolna_execution_id = $1"#,
        execution.id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let decision = Decision::new(call.status, call.cancel_requested, execution);
    let mut conn = pool.acquire().await?;
    let Some(event_id) =
        write_execution(&mut conn, call.id, call.status, &decision, execution, config, Some(event)).await?
    else {
        tracing::debug!(call_id = %call.id, execution_id = %execution.id, "the call moved since it was read: applying under its row lock");
        return Ok(None);
    };
    let Decision { outcome, detail, .. } = decision;
    Ok(Some(Applied { outcome, call: Some(call.id), next: None, detail, event_id }))
}

/// Writes `execution` onto call `id` if its status is still `read_status`, in one statement:
/// moves the status by `decision`, merges the data later events add, renews the slot's lease
/// when less than half is left unless the line is free (then the caller releases it), and stores
/// `event` with its outcome.
/// `None` when the status had changed; else the stored event's id, if any.
async fn write_execution(
    conn: &mut PgConnection,
    id: CallId,
    read_status: CallStatus,
    decision: &Decision,
    execution: &Execution,
    config: &ServiceConfig,
    event: Option<&ReceivedEvent<'_>>,
) -> sqlx::Result<Option<Option<i64>>> {
    let telephony = execution.telephony_data.clone().unwrap_or_default();
    let written = sqlx::query!(
        r#"WITH changed AS (
             UPDATE calls SET
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
             WHERE id = $1 AND status = $15
             RETURNING id),
           -- The ledger's lease (concurrency::extend_lease), in the same statement, renewed once
           -- less than half of it is left: a call's live webhooks come seconds apart, and each
           -- renewal is a write that updates four indexes.
           lease AS (
             UPDATE active_calls SET lease_expires_at = now() + make_interval(secs => $16::float8)
             WHERE NOT $4 AND id IN (SELECT id FROM changed)
               AND lease_expires_at < now() + make_interval(secs => $16::float8 / 2)),
           stored AS (
             INSERT INTO webhook_events (execution_id, status, body, raw_body, source_ip, outcome, detail, processed_at, call_id)
             SELECT $17, $18, $19, $20, $21, $22, $23, now(), id FROM changed WHERE $24
             RETURNING id)
           SELECT (SELECT id FROM stored) AS event_id FROM changed"#,
        id as CallId,
        decision.new_status(),
        execution.status.as_str(),
        decision.line_free,
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
        read_status.as_str(),
        config.lease.as_secs_f64(),
        event.and_then(|e| e.execution_id),
        event.and_then(|e| e.status),
        event.and_then(|e| e.body),
        event.and_then(|e| e.raw_body),
        event.and_then(|e| e.source_ip),
        decision.outcome.as_str(),
        decision.detail.as_deref(),
        event.is_some(),
    )
    .fetch_optional(conn)
    .await?;
    Ok(written.map(|row| row.event_id))
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
