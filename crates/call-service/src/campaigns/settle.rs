//! When a campaign call ends, its contact is settled by the retry policy: `done`, a retry at
//! `now + delay` (dialled once that has come and its zone's window is open), or `exhausted`; the campaign
//! is woken (a slot of its `max_concurrency` is free), and completes when nothing is left to dial.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::due::wake_campaign;
use crate::CallId;

/// Settles the contact of `call` if `call` is its current, ended attempt. Runs in the caller's
/// transaction, which holds the call's row (lock order: call, contact, campaign).
pub(crate) async fn settle_contact(
    conn: &mut PgConnection,
    call: CallId,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    let row = sqlx::query!(
        r#"SELECT call_outcome(c.status, c.answered_by_voice_mail) AS outcome, cc.id AS contact_id, cc.attempts,
                  cp.id AS campaign_id, cp.retry_on, cp.retry_delay_seconds, cp.max_attempts
           FROM calls c
           JOIN campaign_contacts cc ON cc.id = c.contact_id AND cc.last_call_id = c.id AND cc.status = 'in_progress'
           JOIN campaigns cp ON cp.id = cc.campaign_id
           WHERE c.id = $1
           FOR UPDATE OF cc"#,
        call as CallId
    )
    .fetch_optional(&mut *conn)
    .await?;
    // The outcome is NULL until the call is finished (`call_outcome` in sql/calls.sql).
    let Some(row) = row else { return Ok(()) };
    let Some(outcome) = row.outcome.as_deref() else { return Ok(()) };
    let retryable = row.retry_on.iter().any(|on| on == outcome);
    let (status, next_attempt_at) = match (retryable, row.attempts < row.max_attempts) {
        (true, true) => {
            ("retry_scheduled", Some(now + TimeDelta::seconds(i64::from(row.retry_delay_seconds))))
        }
        (true, false) => ("exhausted", None),
        (false, _) => ("done", None),
    };
    sqlx::query!(
        "UPDATE campaign_contacts SET status = $2, next_attempt_at = $3, last_outcome = $4 WHERE id = $1",
        row.contact_id,
        status,
        next_attempt_at,
        outcome,
    )
    .execute(&mut *conn)
    .await?;
    wake_campaign(conn, row.campaign_id, now).await?;
    tracing::info!(contact_id = %row.contact_id, call_id = %call, outcome, status, attempts = row.attempts, "campaign contact settled");
    complete_if_finished(conn, row.campaign_id).await
}

/// A running campaign with nothing pending, in progress or scheduled for retry is completed.
pub(crate) async fn complete_if_finished(conn: &mut PgConnection, campaign: Uuid) -> sqlx::Result<()> {
    let completed = sqlx::query!(
        r#"UPDATE campaigns SET status = 'completed', ended_at = now(), next_due_at = NULL
           WHERE id = $1 AND status = 'running'
             AND NOT EXISTS (SELECT 1 FROM campaign_contacts WHERE campaign_id = $1
                               AND status IN ('pending', 'in_progress', 'retry_scheduled'))"#,
        campaign
    )
    .execute(conn)
    .await?;
    if completed.rows_affected() > 0 {
        tracing::info!(campaign_id = %campaign, "campaign completed");
    }
    Ok(())
}
