//! `webhook_events`: every body as received, and what processing made of it.

use serde_json::Value;
use sqlx::PgConnection;

use crate::CallId;

/// What became of a webhook event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Stored, not (yet) applied: processing failed or is still to come.
    Pending,
    /// Moved the call forward (or added data to it).
    Applied,
    /// The call was already in that status.
    Duplicate,
    /// Older than what the call knows: status unchanged, data merged.
    Stale,
    /// No call matches (yet): kept for the reconciler.
    Unmatched,
    /// Not a webhook body (malformed JSON or missing `id`/`status`).
    Rejected,
}

impl EventOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Pending => "pending",
            EventOutcome::Applied => "applied",
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Stale => "stale",
            EventOutcome::Unmatched => "unmatched",
            EventOutcome::Rejected => "rejected",
        }
    }
}

/// A received body to store: its bytes exactly as received, and (when it is JSON) the parsed body
/// for queries, without NUL characters (PostgreSQL's `jsonb` cannot hold them).
#[derive(Debug, Clone)]
pub struct ReceivedEvent<'a> {
    pub execution_id: Option<&'a str>,
    pub status: Option<&'a str>,
    pub body: Option<&'a Value>,
    pub received: &'a [u8],
    pub source_ip: Option<&'a str>,
}

pub(crate) async fn insert_event(
    conn: &mut PgConnection,
    event: &ReceivedEvent<'_>,
    outcome: EventOutcome,
    detail: Option<&str>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO webhook_events (execution_id, status, body, received, source_ip, outcome, detail, processed_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $6 IN ('pending', 'unmatched') THEN NULL ELSE now() END)
           RETURNING id"#,
        event.execution_id,
        event.status,
        event.body,
        event.received,
        event.source_ip,
        outcome.as_str(),
        detail
    )
    .fetch_one(conn)
    .await
}

pub(crate) async fn set_outcome(
    conn: &mut PgConnection,
    id: i64,
    call: Option<CallId>,
    outcome: EventOutcome,
    detail: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE webhook_events SET call_id = $2, outcome = $3, detail = $4,
                  processed_at = CASE WHEN $3 IN ('pending', 'unmatched') THEN NULL ELSE now() END
           WHERE id = $1"#,
        id,
        call.map(uuid::Uuid::from),
        outcome.as_str(),
        detail
    )
    .execute(conn)
    .await?;
    Ok(())
}
