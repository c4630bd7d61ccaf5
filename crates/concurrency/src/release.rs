//! Releasing a slot, by call ID or by Bolna execution ID: idempotent (a second release finds
//! nothing), frees the call's account line in the same statement, and logs what it released.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::{CallId, CallType, UserId};

/// What a release freed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReleasedSlot {
    pub call_id: CallId,
    pub user_id: UserId,
    pub call_type: CallType,
    pub bolna_execution_id: Option<String>,
    pub started_at: DateTime<Utc>,
}

/// Releases the slot (and account line) of `call`. `None` when it held none (already released:
/// nothing happens).
#[tracing::instrument(name = "Release a call slot", skip(conn))]
pub async fn release_call_slot(
    conn: &mut PgConnection,
    call: CallId,
    reason: &str,
) -> sqlx::Result<Option<ReleasedSlot>> {
    let released = sqlx::query_as!(
        ReleasedSlot,
        r#"WITH released AS (DELETE FROM active_calls WHERE id = $1 RETURNING *),
                line AS (UPDATE account_slots s SET call_id = NULL, claimed_at = NULL
                         FROM released r WHERE s.call_id = r.id)
           SELECT id AS "call_id!: CallId", user_id AS "user_id!: UserId", call_type AS "call_type!: CallType",
                  bolna_execution_id, started_at AS "started_at!"
           FROM released"#,
        call as CallId
    )
    .fetch_optional(conn)
    .await?;
    Ok(logged(released, reason))
}

/// Releases the slot of the call Bolna knows as `execution_id`. `None` when none is held.
#[tracing::instrument(name = "Release a call slot by execution ID", skip(conn))]
pub async fn release_call_slot_by_execution_id(
    conn: &mut PgConnection,
    execution_id: &str,
    reason: &str,
) -> sqlx::Result<Option<ReleasedSlot>> {
    let holder = sqlx::query_scalar!(
        r#"SELECT id AS "id: CallId" FROM active_calls WHERE bolna_execution_id = $1"#,
        execution_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    match holder {
        Some(call) => release_call_slot(conn, call, reason).await,
        None => Ok(None),
    }
}

fn logged(released: Option<ReleasedSlot>, reason: &str) -> Option<ReleasedSlot> {
    if let Some(slot) = &released {
        tracing::info!(
            user_id = %slot.user_id,
            call_type = %slot.call_type,
            call_id = %slot.call_id,
            execution_id = slot.bolna_execution_id.as_deref().unwrap_or("-"),
            held_ms = (Utc::now() - slot.started_at).num_milliseconds(),
            reason,
            "released call slot"
        );
    }
    released
}
