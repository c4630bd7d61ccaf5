//! The one statement that writes executions onto their calls — for a batch of live webhooks, or
//! for one execution under the call's row lock (a batch of one). Rows go to PostgreSQL as one JSON
//! array of [`ExecutionRow`]s.

use bolna_client::Execution;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::PgConnection;

use super::decision::Decision;
use super::store::ReceivedEvent;
use crate::calls::CallStatus;
use crate::CallId;

/// One call's new state from one execution, to be written if the call is still in `read_status`.
#[derive(Debug)]
pub(crate) struct ExecutionWrite<'a> {
    pub id: CallId,
    pub read_status: CallStatus,
    pub decision: &'a Decision,
    pub execution: &'a Execution,
    /// The webhook body to store with the outcome (none when the reconciler applies what it read).
    pub event: Option<&'a ReceivedEvent<'a>>,
}

/// What became of one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// The call was written; the stored webhook event's id, when one was given.
    Done { event_id: Option<i64> },
    /// The call's status had changed since it was read: nothing written (a lost race).
    StatusChanged,
}

/// One write as the statement reads it (the field names are its `jsonb_to_recordset` columns).
#[derive(Debug, Serialize)]
struct ExecutionRow<'a> {
    ord: usize,
    call_id: CallId,
    read_status: &'static str,
    new_status: Option<&'static str>,
    provider: Option<&'a str>,
    line_free: bool,
    duration: Option<f64>,
    cost: Option<f64>,
    transcript: Option<&'a str>,
    recording: Option<&'a str>,
    hangup_by: Option<&'a str>,
    hangup_reason: Option<&'a str>,
    hangup_code: Option<&'a str>,
    voice_mail: Option<bool>,
    extracted: Option<&'a Value>,
    error: Option<&'a str>,
    store_event: bool,
    event_execution: Option<&'a str>,
    event_status: Option<&'a str>,
    event_body: Option<&'a Value>,
    event_ip: Option<&'a str>,
    event_outcome: &'static str,
    event_detail: Option<&'a str>,
}

impl<'a> ExecutionRow<'a> {
    fn new(ord: usize, write: &'a ExecutionWrite<'a>) -> Self {
        let (execution, decision, event) = (write.execution, write.decision, write.event);
        let telephony = execution.telephony_data.as_ref();
        Self {
            ord,
            call_id: write.id,
            read_status: write.read_status.as_str(),
            new_status: decision.new_status(),
            provider: decision.provider_status.as_deref(),
            line_free: decision.line_free,
            duration: execution.duration_seconds(),
            cost: execution.total_cost,
            transcript: execution.transcript.as_deref(),
            recording: telephony.and_then(|t| t.recording_url.as_deref()),
            hangup_by: telephony.and_then(|t| t.hangup_by.as_deref()),
            hangup_reason: telephony.and_then(|t| t.hangup_reason.as_deref()),
            hangup_code: telephony.and_then(|t| t.hangup_provider_code.as_deref()),
            voice_mail: execution.answered_by_voice_mail,
            extracted: execution.extracted_data.as_ref().filter(|data| !data.is_null()),
            error: execution.error_message.as_deref(),
            store_event: event.is_some(),
            event_execution: event.and_then(|e| e.execution_id),
            event_status: event.and_then(|e| e.status),
            event_body: event.and_then(|e| e.body),
            event_ip: event.and_then(|e| e.source_ip),
            event_outcome: decision.outcome.as_str(),
            event_detail: decision.detail.as_deref(),
        }
    }
}

/// Writes each execution onto its call (distinct calls) in one statement, if the call's status is
/// still the one read: moves the status by the decision, merges the data later events add, renews
/// the slot's lease unless the line is free (then the caller releases the slot; the ledger's
/// `renew_leases` renews only a lease less than half left), and stores the event with its outcome.
/// One answer per write, in order.
pub(crate) async fn write_executions(
    conn: &mut PgConnection,
    writes: &[ExecutionWrite<'_>],
    lease: std::time::Duration,
) -> sqlx::Result<Vec<Written>> {
    if writes.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ExecutionRow<'_>> =
        writes.iter().enumerate().map(|(ord, write)| ExecutionRow::new(ord, write)).collect();
    // The bodies' bytes ride beside the JSON rows (JSON cannot carry arbitrary bytes), by position.
    let received: Vec<&[u8]> = writes.iter().map(|w| w.event.map_or(&[][..], |e| e.received)).collect();
    let written = sqlx::query!(
        r#"WITH input AS (
             SELECT * FROM jsonb_to_recordset($1) AS i(
                 ord bigint, call_id uuid, read_status text, new_status text, provider text, line_free bool,
                 duration float8, cost float8, transcript text, recording text, hangup_by text,
                 hangup_reason text, hangup_code text, voice_mail bool, extracted jsonb, error text,
                 store_event bool, event_execution text, event_status text, event_body jsonb,
                 event_ip text, event_outcome text, event_detail text)),
           changed AS (
             UPDATE calls c SET
               status = COALESCE(i.new_status, c.status),
               provider_status = COALESCE(i.provider, c.provider_status),
               last_event_at = now(),
               started_at = COALESCE(c.started_at, now()),
               answered_at = CASE WHEN i.new_status = 'in-progress' THEN COALESCE(c.answered_at, now()) ELSE c.answered_at END,
               ended_at = CASE WHEN i.line_free THEN COALESCE(c.ended_at, now()) ELSE c.ended_at END,
               conversation_duration = COALESCE(NULLIF(i.duration, 0), c.conversation_duration),
               total_cost = COALESCE(NULLIF(i.cost, 0), c.total_cost),
               transcript = COALESCE(i.transcript, c.transcript),
               recording_url = COALESCE(i.recording, c.recording_url),
               hangup_by = COALESCE(i.hangup_by, c.hangup_by),
               hangup_reason = COALESCE(i.hangup_reason, c.hangup_reason),
               hangup_provider_code = COALESCE(i.hangup_code, c.hangup_provider_code),
               answered_by_voice_mail = COALESCE(i.voice_mail, c.answered_by_voice_mail),
               extracted_data = COALESCE(i.extracted, c.extracted_data),
               error = CASE WHEN i.new_status IS NOT NULL AND i.error IS NOT NULL THEN i.error ELSE c.error END,
               reconcile_reason = CASE WHEN i.new_status IS NOT NULL THEN NULL ELSE c.reconcile_reason END
             FROM input i
             WHERE c.id = i.call_id AND c.status = i.read_status
             RETURNING c.id AS changed_id, i.ord AS changed_ord, i.line_free AS changed_line_free),
           leases AS (
             SELECT renew_leases(array_agg(ch.changed_id) FILTER (WHERE NOT ch.changed_line_free), $2) FROM changed ch),
           stored AS (
             INSERT INTO webhook_events (execution_id, status, body, received, source_ip, outcome, detail, processed_at, call_id)
             SELECT i.event_execution, i.event_status, i.event_body, ($3::bytea[])[i.ord + 1], i.event_ip, i.event_outcome,
                    i.event_detail, now(), ch.changed_id
             FROM changed ch JOIN input i ON i.ord = ch.changed_ord
             WHERE i.store_event
             RETURNING id AS event_id, call_id AS event_call)
           SELECT ch.changed_ord AS "ord!", s.event_id AS "event_id?"
           FROM changed ch CROSS JOIN leases LEFT JOIN stored s ON s.event_call = ch.changed_id"#,
        Json(&rows) as _,
        lease.as_secs_f64(),
        &received[..] as &[&[u8]],
    )
    .fetch_all(conn)
    .await?;
    let mut answers = vec![Written::StatusChanged; writes.len()];
    for row in written {
        if let Some(answer) = usize::try_from(row.ord).ok().and_then(|ord| answers.get_mut(ord)) {
            *answer = Written::Done { event_id: row.event_id };
        }
    }
    Ok(answers)
}
