//! Execution IDs on held slots, and leases: a slot's lease runs `lease` past its last event; one
//! that expires without a line-free webhook is the reconciler's to check. The writes are the SQL
//! functions `attach_execution_ids` and `renew_leases` (`sql/ledger.sql`), which the statements
//! recording Bolna's answers and applying live webhooks also call.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::{CallId, CallType, UserId};

/// Records Bolna's execution ID on the slot of `call`. False when the call holds no slot (its line
/// was already freed, e.g. by a fast webhook) or the slot had it already.
#[tracing::instrument(name = "Record the execution ID on a slot", skip(conn))]
pub async fn update_active_call_with_execution_id(
    conn: &mut PgConnection,
    call: CallId,
    execution_id: &str,
) -> sqlx::Result<bool> {
    let attached = sqlx::query_scalar!(
        r#"SELECT attach_execution_ids(ARRAY[$1::uuid], ARRAY[$2::text]) AS "attached!""#,
        call as CallId,
        execution_id
    )
    .fetch_one(conn)
    .await?;
    Ok(attached > 0)
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

/// Slots whose lease has expired and whose execution Bolna can be asked about, oldest first.
pub async fn expired_leases(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<ActiveCall>> {
    sqlx::query_as!(
        ActiveCall,
        r#"SELECT id AS "id: CallId", user_id AS "user_id: UserId", call_type AS "call_type: CallType",
                  bolna_execution_id, started_at, lease_expires_at
           FROM active_calls WHERE lease_expires_at < now() AND bolna_execution_id IS NOT NULL
           ORDER BY lease_expires_at LIMIT $1"#,
        limit
    )
    .fetch_all(conn)
    .await
}
