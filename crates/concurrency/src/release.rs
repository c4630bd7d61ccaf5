//! Releasing a slot, by call ID or by Bolna execution ID: idempotent (`DELETE … RETURNING`; a second
//! release finds nothing), frees the call's account line too, and logs what it released.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::account_pool::free_account_line;
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

struct Row {
    id: CallId,
    user_id: UserId,
    call_type: String,
    bolna_execution_id: Option<String>,
    started_at: DateTime<Utc>,
}

/// Releases the slot (and account line) of `call`. `None` when it held none (already released:
/// nothing happens).
#[tracing::instrument(name = "Release a call slot", skip(conn))]
pub async fn release_call_slot(
    conn: &mut PgConnection,
    call: CallId,
    reason: &str,
) -> sqlx::Result<Option<ReleasedSlot>> {
    let row = sqlx::query_as!(
        Row,
        r#"DELETE FROM active_calls WHERE id = $1
           RETURNING id AS "id: CallId", user_id AS "user_id: UserId", call_type, bolna_execution_id, started_at"#,
        call as CallId
    )
    .fetch_optional(&mut *conn)
    .await?;
    finish(conn, row, reason).await
}

/// Releases the slot of the call Bolna knows as `execution_id`. `None` when none is held.
#[tracing::instrument(name = "Release a call slot by execution ID", skip(conn))]
pub async fn release_call_slot_by_execution_id(
    conn: &mut PgConnection,
    execution_id: &str,
    reason: &str,
) -> sqlx::Result<Option<ReleasedSlot>> {
    let row = sqlx::query_as!(
        Row,
        r#"DELETE FROM active_calls WHERE bolna_execution_id = $1
           RETURNING id AS "id: CallId", user_id AS "user_id: UserId", call_type, bolna_execution_id, started_at"#,
        execution_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    finish(conn, row, reason).await
}

async fn finish(
    conn: &mut PgConnection,
    row: Option<Row>,
    reason: &str,
) -> sqlx::Result<Option<ReleasedSlot>> {
    let Some(row) = row else { return Ok(None) };
    free_account_line(conn, row.id).await?;
    let call_type = row.call_type.parse().unwrap_or(CallType::Direct);
    let held_ms = (Utc::now() - row.started_at).num_milliseconds();
    tracing::info!(
        user_id = %row.user_id,
        call_type = %call_type,
        call_id = %row.id,
        execution_id = row.bolna_execution_id.as_deref().unwrap_or("-"),
        held_ms,
        reason,
        "released call slot"
    );
    Ok(Some(ReleasedSlot {
        call_id: row.id,
        user_id: row.user_id,
        call_type,
        bolna_execution_id: row.bolna_execution_id,
        started_at: row.started_at,
    }))
}
