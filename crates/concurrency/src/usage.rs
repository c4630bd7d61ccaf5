//! Reading the ledger: a user's slots in use, the slot table for operators, and the ledger's
//! health numbers for diagnostics and metrics.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::ids::{CallId, CallType, UserId};
use crate::leases::ActiveCall;

/// Slots in use of each type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Usage {
    pub direct: i64,
    pub campaign: i64,
}

impl Usage {
    pub fn of(&self, call_type: CallType) -> i64 {
        match call_type {
            CallType::Direct => self.direct,
            CallType::Campaign => self.campaign,
        }
    }
}

/// The slots `user` holds, by type.
pub async fn usage_of(conn: &mut PgConnection, user: UserId) -> sqlx::Result<Usage> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE call_type = 'direct') AS "direct!",
                  count(*) FILTER (WHERE call_type = 'campaign') AS "campaign!"
           FROM active_calls WHERE user_id = $1"#,
        user as UserId
    )
    .fetch_one(conn)
    .await?;
    Ok(Usage { direct: row.direct, campaign: row.campaign })
}

/// The slots every user holds, by type (the `switchboard_slots_in_use` gauges).
pub async fn usage_of_everyone(conn: &mut PgConnection) -> sqlx::Result<Usage> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE call_type = 'direct') AS "direct!",
                  count(*) FILTER (WHERE call_type = 'campaign') AS "campaign!"
           FROM active_calls"#
    )
    .fetch_one(conn)
    .await?;
    Ok(Usage { direct: row.direct, campaign: row.campaign })
}

/// What operators watch in the ledger: the first two should stay 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct LedgerHealth {
    /// Slots held for more than an hour.
    pub held_over_an_hour: i64,
    /// Slots without an execution ID for more than 10 seconds.
    pub missing_execution_id: i64,
    /// Account lines held by a call.
    pub lines_in_use: i64,
}

pub async fn ledger_health(conn: &mut PgConnection) -> sqlx::Result<LedgerHealth> {
    let row = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM active_calls WHERE started_at < now() - interval '1 hour') AS "held_long!",
             (SELECT count(*) FROM active_calls
               WHERE bolna_execution_id IS NULL AND started_at < now() - interval '10 seconds') AS "missing_id!",
             (SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL) AS "lines_in_use!""#
    )
    .fetch_one(conn)
    .await?;
    Ok(LedgerHealth {
        held_over_an_hour: row.held_long,
        missing_execution_id: row.missing_id,
        lines_in_use: row.lines_in_use,
    })
}

/// One row of the slot table, as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActiveCallRow {
    pub id: CallId,
    pub user_id: UserId,
    pub call_type: String,
    pub bolna_execution_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub lease_expires_at: DateTime<Utc>,
    pub age_seconds: f64,
}

/// Held slots, oldest first, optionally of one user.
pub async fn list_held_slots(
    conn: &mut PgConnection,
    user: Option<UserId>,
    limit: i64,
) -> sqlx::Result<Vec<ActiveCallRow>> {
    sqlx::query_as!(
        ActiveCallRow,
        r#"SELECT id AS "id: CallId", user_id AS "user_id: UserId", call_type, bolna_execution_id, started_at,
                  lease_expires_at, EXTRACT(EPOCH FROM now() - started_at)::float8 AS "age_seconds!"
           FROM active_calls WHERE ($1::uuid IS NULL OR user_id = $1)
           ORDER BY started_at, id LIMIT $2"#,
        user.map(uuid::Uuid::from),
        limit
    )
    .fetch_all(conn)
    .await
}

/// The slot `call` holds, if any (for an operator's audit of a force-release).
pub async fn slot_of(conn: &mut PgConnection, call: CallId) -> sqlx::Result<Option<ActiveCall>> {
    sqlx::query_as!(
        ActiveCall,
        r#"SELECT id AS "id: CallId", user_id AS "user_id: UserId", call_type AS "call_type: CallType",
                  bolna_execution_id, started_at, lease_expires_at
           FROM active_calls WHERE id = $1"#,
        call as CallId
    )
    .fetch_optional(conn)
    .await
}
