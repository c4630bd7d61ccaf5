//! Reading the ledger: a user's slots in use, and the slot table for operators.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::ids::{CallId, CallType, UserId};

/// Slots in use of one type.
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
pub async fn list_active_calls(
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
