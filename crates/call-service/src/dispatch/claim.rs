//! Claiming queued calls for free slots: the head of each user's queue (per call type) whose user
//! has a free slot, oldest first across users, each claimed in its own transaction with
//! `FOR UPDATE SKIP LOCKED` so instances never take the same call.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::calls::admission::mark_initiating;
use crate::calls::Call;
use crate::error::CallError;
use crate::service::CallService;
use crate::{CallId, CallType, UserId};

/// A queue head that may start.
#[derive(Debug, Clone)]
pub(crate) struct QueueHead {
    pub id: CallId,
    pub user_id: UserId,
    pub call_type: CallType,
    pub created_at: DateTime<Utc>,
}

/// What a claim attempt found.
#[derive(Debug)]
pub(crate) enum Claim {
    Claimed(Box<Call>),
    /// Taken by another instance, canceled, or the user filled up meanwhile.
    Skipped,
    /// Every account line is taken: stop this pass.
    AccountFull,
}

/// Heads of the queues whose user has a free slot of that type, oldest first.
pub(crate) async fn startable_heads(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<QueueHead>> {
    sqlx::query_as!(
        QueueHead,
        r#"SELECT q.id AS "id!: CallId", q.user_id AS "user_id!: UserId", q.call_type AS "call_type!: CallType",
                  q.created_at AS "created_at!"
           FROM (SELECT DISTINCT ON (user_id, call_type) id, user_id, call_type, created_at
                 FROM calls WHERE status = 'queued' AND bolna_execution_id IS NULL
                 ORDER BY user_id, call_type, created_at, id) q
           JOIN users u ON u.id = q.user_id
           WHERE (SELECT count(*) FROM active_calls a WHERE a.user_id = q.user_id AND a.call_type = q.call_type)
                 < CASE q.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END
           ORDER BY q.created_at, q.id
           LIMIT $1"#,
        limit
    )
    .fetch_all(conn)
    .await
}

impl CallService {
    /// Claims one queue head: locks it, reserves a slot, marks it `initiating`.
    pub(crate) async fn claim(&self, head: &QueueHead) -> Result<Claim, CallError> {
        let mut tx = self.pool().begin().await?;
        let still_queued = sqlx::query_scalar!(
            r#"SELECT id AS "id: CallId" FROM calls
               WHERE id = $1 AND status = 'queued' AND bolna_execution_id IS NULL
               FOR UPDATE SKIP LOCKED"#,
            head.id as CallId
        )
        .fetch_optional(&mut *tx)
        .await?;
        if still_queued.is_none() {
            return Ok(Claim::Skipped);
        }
        let answer = concurrency::reserve(
            &mut tx,
            head.user_id,
            head.call_type,
            head.id,
            self.config().account_lines,
            self.config().lease,
        )
        .await?;
        match answer {
            concurrency::Reservation::Reserved => {
                let call = mark_initiating(&mut tx, head.id, true).await?;
                tx.commit().await?;
                Ok(Claim::Claimed(Box::new(call)))
            }
            concurrency::Reservation::UserLimitReached { .. } => Ok(Claim::Skipped),
            concurrency::Reservation::AccountLimitReached => Ok(Claim::AccountFull),
        }
    }
}
