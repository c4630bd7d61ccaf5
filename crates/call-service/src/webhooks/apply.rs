//! Applying one execution (a webhook body, or what the reconciler read from Bolna) to its call, in
//! the caller's transaction: match the call, move its status forward by the state machine, merge
//! the data later events add, and free its slot when the line is free — exactly once.

use std::collections::{HashMap, HashSet};

use bolna_client::Execution;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use super::store::{insert_event, EventOutcome, ReceivedEvent};
use crate::calls::handover::release_and_hand_over;
use crate::calls::{Call, CallStatus, Transition};
use crate::error::CallError;
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

/// A webhook with a live status (`initiated`, `ringing`, `in-progress`, …), as the batch carries it.
#[derive(Debug)]
pub(crate) struct LiveWebhook {
    pub execution: Execution,
    pub body: Value,
    pub source_ip: Option<String>,
}

impl LiveWebhook {
    /// Whether `execution` may take this path: a status that leaves the line busy.
    pub fn applies_to(execution: &Execution) -> bool {
        CallStatus::from_execution(&execution.status).is_some_and(|status| !status.line_is_free())
    }

    fn event(&self) -> ReceivedEvent<'_> {
        ReceivedEvent {
            execution_id: Some(&self.execution.id),
            status: Some(self.execution.status.as_str()),
            body: Some(&self.body),
            raw_body: None,
            source_ip: self.source_ip.as_deref(),
        }
    }
}

/// What the batched path did with one live webhook.
#[derive(Debug)]
pub(crate) enum LiveOutcome {
    /// Stored and applied (or found a duplicate or stale) in the batch's statement.
    Done(Box<Applied>),
    /// Another webhook for the same call came first in the batch: submit it again, and the next
    /// batch decides it from the status the first one left (Bolna sends a call's changes close
    /// together, and repeats them: 15% duplicates in the benchmark). Cheaper than the row lock's
    /// transaction of four round trips.
    SameCallInBatch,
    /// Not for this path — an unknown or not yet recorded execution, a lost race, a failed
    /// statement: apply it alone under the call's row lock.
    Locked,
}

/// The common case of webhooks — live statuses for calls known by their execution IDs — for a
/// whole batch without a transaction (the batch worker's job): one read of the calls, a decision
/// per webhook, then one statement that writes each call only if its status is still the one read
/// (optimistic concurrency), renews leases and stores the events. Two round trips and one commit
/// for the batch. See [`LiveOutcome`] for the webhooks it leaves to others.
pub(crate) async fn apply_live_batch(
    pool: &PgPool,
    lease: std::time::Duration,
    webhooks: Vec<LiveWebhook>,
) -> Vec<Result<LiveOutcome, CallError>> {
    match try_live_batch(pool, lease, &webhooks).await {
        Ok(applied) => applied.into_iter().map(Ok).collect(),
        Err(error) => {
            tracing::warn!(error = %error, webhooks = webhooks.len(), "a batch of live webhooks failed; applying them one by one");
            webhooks.iter().map(|_| Ok(LiveOutcome::Locked)).collect()
        }
    }
}

async fn try_live_batch(
    pool: &PgPool,
    lease: std::time::Duration,
    webhooks: &[LiveWebhook],
) -> sqlx::Result<Vec<LiveOutcome>> {
    let executions: Vec<&str> = webhooks.iter().map(|w| w.execution.id.as_str()).collect();
    let known = sqlx::query!(
        r#"SELECT id AS "id: CallId", status AS "status: CallStatus", bolna_execution_id AS "execution!",
                  cancel_requested_at IS NOT NULL AS "cancel_requested!"
           FROM calls WHERE bolna_execution_id = ANY($1)"#,
        &executions[..] as _
    )
    .fetch_all(pool)
    .await?;
    let known: HashMap<&str, _> = known.iter().map(|call| (call.execution.as_str(), call)).collect();
    let events: Vec<ReceivedEvent<'_>> = webhooks.iter().map(LiveWebhook::event).collect();
    // One write per call: a second webhook for the same call goes to the next batch, which then
    // sees what the first one did.
    let mut in_batch = HashSet::new();
    let mut planned = Vec::with_capacity(webhooks.len());
    for webhook in webhooks {
        planned.push(match known.get(webhook.execution.id.as_str()) {
            None => Planned::Leave(LiveOutcome::Locked),
            Some(call) if !in_batch.insert(call.id) => Planned::Leave(LiveOutcome::SameCallInBatch),
            Some(call) => Planned::Write(
                call.id,
                call.status,
                Decision::new(call.status, call.cancel_requested, &webhook.execution),
            ),
        });
    }
    let writes: Vec<ExecutionWrite<'_>> = planned
        .iter()
        .zip(webhooks.iter().zip(&events))
        .filter_map(|(plan, (webhook, event))| match plan {
            Planned::Write(id, read_status, decision) => Some(ExecutionWrite {
                id: *id,
                read_status: *read_status,
                decision,
                execution: &webhook.execution,
                event: Some(event),
            }),
            Planned::Leave(_) => None,
        })
        .collect();
    let mut written = write_executions(&mut *pool.acquire().await?, &writes, lease).await?.into_iter();
    let mut applied = Vec::with_capacity(webhooks.len());
    for plan in planned {
        applied.push(match plan {
            Planned::Leave(outcome) => outcome,
            Planned::Write(id, _, decision) => match written.next().flatten() {
                Some(event_id) => {
                    let Decision { outcome, detail, .. } = decision;
                    LiveOutcome::Done(Box::new(Applied {
                        outcome,
                        call: Some(id),
                        next: None,
                        detail,
                        event_id,
                    }))
                }
                // The call's status changed since it was read: a lost race.
                None => LiveOutcome::Locked,
            },
        });
    }
    Ok(applied)
}

/// What a batch means to do with one webhook: write onto the call if it is still in the status
/// read, or leave it to another batch or to the row lock.
enum Planned {
    Write(CallId, CallStatus, Decision),
    Leave(LiveOutcome),
}

/// One call's new state from one execution, to be written if the call is still in `read_status`.
struct ExecutionWrite<'a> {
    id: CallId,
    read_status: CallStatus,
    decision: &'a Decision,
    execution: &'a Execution,
    /// The webhook body to store with the outcome (none when the reconciler applies what it read).
    event: Option<&'a ReceivedEvent<'a>>,
}

/// Writes `execution` onto call `id` if its status is still `read_status` (see [`write_executions`]).
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
    let write = ExecutionWrite { id, read_status, decision, execution, event };
    let mut written = write_executions(conn, std::slice::from_ref(&write), config.lease).await?;
    Ok(written.pop().flatten())
}

/// Writes each execution onto its call (distinct calls) in one statement, if the call's status is
/// still the one read: moves the status by the decision, merges the data later events add, renews
/// the slot's lease when less than half is left unless the line is free (then the caller releases
/// it), and stores the event with its outcome. Per write, in order: `None` when the status had
/// changed, else the stored event's id, if any.
async fn write_executions(
    conn: &mut PgConnection,
    writes: &[ExecutionWrite<'_>],
    lease: std::time::Duration,
) -> sqlx::Result<Vec<Option<Option<i64>>>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let n = writes.len();
    let mut ids = Vec::with_capacity(n);
    let mut new_statuses = Vec::with_capacity(n);
    let mut providers = Vec::with_capacity(n);
    let mut lines_free = Vec::with_capacity(n);
    let mut durations = Vec::with_capacity(n);
    let mut costs = Vec::with_capacity(n);
    let mut transcripts = Vec::with_capacity(n);
    let mut recordings = Vec::with_capacity(n);
    let mut hangup_bys = Vec::with_capacity(n);
    let mut hangup_reasons = Vec::with_capacity(n);
    let mut hangup_codes = Vec::with_capacity(n);
    let mut voice_mails = Vec::with_capacity(n);
    let mut extracted = Vec::with_capacity(n);
    let mut errors = Vec::with_capacity(n);
    let mut read_statuses = Vec::with_capacity(n);
    let mut event_executions = Vec::with_capacity(n);
    let mut event_statuses = Vec::with_capacity(n);
    let mut event_bodies = Vec::with_capacity(n);
    let mut event_raws = Vec::with_capacity(n);
    let mut event_ips = Vec::with_capacity(n);
    let mut outcomes = Vec::with_capacity(n);
    let mut details = Vec::with_capacity(n);
    let mut stores = Vec::with_capacity(n);
    for write in writes {
        let (execution, decision, event) = (write.execution, write.decision, write.event);
        let telephony = execution.telephony_data.as_ref();
        ids.push(write.id.as_uuid());
        new_statuses.push(decision.new_status());
        providers.push(execution.status.as_str());
        lines_free.push(decision.line_free);
        durations.push(execution.duration_seconds());
        costs.push(execution.total_cost);
        transcripts.push(execution.transcript.as_deref());
        recordings.push(telephony.and_then(|t| t.recording_url.as_deref()));
        hangup_bys.push(telephony.and_then(|t| t.hangup_by.as_deref()));
        hangup_reasons.push(telephony.and_then(|t| t.hangup_reason.as_deref()));
        hangup_codes.push(telephony.and_then(|t| t.hangup_provider_code.as_deref()));
        voice_mails.push(execution.answered_by_voice_mail);
        extracted.push(execution.extracted_data.as_ref().filter(|data| !data.is_null()).map(Json));
        errors.push(execution.error_message.as_deref());
        read_statuses.push(write.read_status.as_str());
        event_executions.push(event.and_then(|e| e.execution_id));
        event_statuses.push(event.and_then(|e| e.status));
        event_bodies.push(event.and_then(|e| e.body).map(Json));
        event_raws.push(event.and_then(|e| e.raw_body));
        event_ips.push(event.and_then(|e| e.source_ip));
        outcomes.push(decision.outcome.as_str());
        details.push(decision.detail.as_deref());
        stores.push(event.is_some());
    }
    let rows = sqlx::query!(
        r#"WITH input AS (
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::float8[], $6::float8[],
                                  $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bool[],
                                  $13::jsonb[], $14::text[], $15::text[], $17::text[], $18::text[], $19::jsonb[],
                                  $20::text[], $21::text[], $22::text[], $23::text[], $24::bool[])
                  WITH ORDINALITY AS i(call_id, new_status, provider, line_free, duration, cost, transcript_in,
                                       recording, hangup_by_in, hangup_reason_in, hangup_code, voice_mail,
                                       extracted, error_in, read_status, event_execution, event_status,
                                       event_body, event_raw, event_ip, event_outcome, event_detail,
                                       store_event, ord)),
           changed AS (
             UPDATE calls c SET
               status = COALESCE(i.new_status, c.status),
               provider_status = i.provider,
               last_event_at = now(),
               started_at = COALESCE(c.started_at, now()),
               answered_at = CASE WHEN i.new_status = 'in-progress' THEN COALESCE(c.answered_at, now()) ELSE c.answered_at END,
               ended_at = CASE WHEN i.line_free THEN COALESCE(c.ended_at, now()) ELSE c.ended_at END,
               conversation_duration = COALESCE(NULLIF(i.duration, 0), c.conversation_duration),
               total_cost = COALESCE(NULLIF(i.cost, 0), c.total_cost),
               transcript = COALESCE(i.transcript_in, c.transcript),
               recording_url = COALESCE(i.recording, c.recording_url),
               hangup_by = COALESCE(i.hangup_by_in, c.hangup_by),
               hangup_reason = COALESCE(i.hangup_reason_in, c.hangup_reason),
               hangup_provider_code = COALESCE(i.hangup_code, c.hangup_provider_code),
               answered_by_voice_mail = COALESCE(i.voice_mail, c.answered_by_voice_mail),
               extracted_data = COALESCE(i.extracted, c.extracted_data),
               error = CASE WHEN i.new_status IS NOT NULL AND i.error_in IS NOT NULL THEN i.error_in ELSE c.error END,
               reconcile_reason = CASE WHEN i.new_status IS NOT NULL THEN NULL ELSE c.reconcile_reason END
             FROM input i
             WHERE c.id = i.call_id AND c.status = i.read_status
             RETURNING c.id AS changed_id, i.ord AS changed_ord, i.line_free AS changed_line_free),
           -- The ledger's lease (concurrency::extend_lease), in the same statement, renewed once
           -- less than half of it is left: a call's live webhooks come seconds apart, and each
           -- renewal is a write that updates four indexes.
           lease AS (
             UPDATE active_calls a SET lease_expires_at = now() + make_interval(secs => $16::float8)
             FROM changed ch
             WHERE a.id = ch.changed_id AND NOT ch.changed_line_free
               AND a.lease_expires_at < now() + make_interval(secs => $16::float8 / 2)),
           stored AS (
             INSERT INTO webhook_events (execution_id, status, body, raw_body, source_ip, outcome, detail, processed_at, call_id)
             SELECT i.event_execution, i.event_status, i.event_body, i.event_raw, i.event_ip, i.event_outcome,
                    i.event_detail, now(), ch.changed_id
             FROM changed ch JOIN input i ON i.ord = ch.changed_ord
             WHERE i.store_event
             RETURNING id AS event_id, call_id AS event_call)
           SELECT ch.changed_ord AS "ord!", s.event_id AS "event_id?"
           FROM changed ch LEFT JOIN stored s ON s.event_call = ch.changed_id"#,
        &ids[..],
        &new_statuses[..] as _,
        &providers[..] as _,
        &lines_free[..],
        &durations[..] as _,
        &costs[..] as _,
        &transcripts[..] as _,
        &recordings[..] as _,
        &hangup_bys[..] as _,
        &hangup_reasons[..] as _,
        &hangup_codes[..] as _,
        &voice_mails[..] as _,
        &extracted[..] as _,
        &errors[..] as _,
        &read_statuses[..] as _,
        lease.as_secs_f64(),
        &event_executions[..] as _,
        &event_statuses[..] as _,
        &event_bodies[..] as _,
        &event_raws[..] as _,
        &event_ips[..] as _,
        &outcomes[..] as _,
        &details[..] as _,
        &stores[..],
    )
    .fetch_all(conn)
    .await?;
    let mut written = vec![None; n];
    for row in rows {
        if let Some(slot) = usize::try_from(row.ord).ok().and_then(|ord| written.get_mut(ord.wrapping_sub(1)))
        {
            *slot = Some(row.event_id);
        }
    }
    Ok(written)
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
