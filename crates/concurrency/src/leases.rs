//! Execution IDs on held slots, and leases: a slot's lease runs `lease` past its last event; one
//! that expires without a terminal webhook is the reconciler's to check.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::{CallId, CallType, UserId};

/// Records Bolna's execution ID on the slot of `call`. False when the call holds no slot (its
/// line was already freed, e.g. by a fast webhook).
#[tracing::instrument(name = "Record the execution ID on a slot", skip(conn))]
pub async fn update_active_call_with_execution_id(
    conn: &mut PgConnection,
    call: CallId,
    execution_id: &str,
) -> sqlx::Result<bool> {
    let updated = sqlx::query!(
        "UPDATE active_calls SET bolna_execution_id = $2 WHERE id = $1 AND bolna_execution_id IS DISTINCT FROM $2",
        call as CallId,
        execution_id
    )
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() > 0)
}

/// Pushes the lease of `call` to `lease` from now.
pub async fn extend_lease(conn: &mut PgConnection, call: CallId, lease: Duration) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE active_calls SET lease_expires_at = now() + make_interval(secs => $2) WHERE id = $1",
        call as CallId,
        lease.as_secs_f64()
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A held slot.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveCall {
    pub id: CallId,
    pub user_id: UserId,
    pub call_type: CallType,
    pub bolna_execution_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
}

/// Slots whose lease has expired, oldest first, claimed with `SKIP LOCKED` so instances share the
/// work (the rows stay locked until the caller's transaction ends).
pub async fn expired_leases(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<ActiveCall>> {
    let rows = sqlx::query!(
        r#"SELECT id AS "id: CallId", user_id AS "user_id: UserId", call_type, bolna_execution_id, started_at, lease_expires_at
           FROM active_calls WHERE lease_expires_at < now()
           ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED"#,
        limit
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ActiveCall {
            id: r.id,
            user_id: r.user_id,
            call_type: r.call_type.parse().unwrap_or(CallType::Direct),
            bolna_execution_id: r.bolna_execution_id,
            started_at: r.started_at,
            lease_expires_at: r.lease_expires_at,
        })
        .collect())
}
