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
///
/// The distinct queues (user, call type) are found with a loose index scan — a recursive walk of
/// `idx_calls_queue` that jumps from one queue to the next — and each queue's head is one more index
/// probe. A pass therefore costs a few probes per waiting *queue*, not a scan of every waiting
/// *call*: with 100,000 calls queued for 100 users a pass takes about 2 ms where `DISTINCT ON` over
/// the whole queue took 30 ms (measured by `switchboard-bench`; see docs/capacity.md).
pub(crate) async fn startable_heads(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<QueueHead>> {
    sqlx::query_as!(
        QueueHead,
        r#"WITH RECURSIVE queues AS (
               (SELECT user_id, call_type FROM calls
                WHERE status = 'queued' AND bolna_execution_id IS NULL
                ORDER BY user_id, call_type LIMIT 1)
               UNION ALL
               SELECT next.user_id, next.call_type FROM queues q,
               LATERAL (SELECT user_id, call_type FROM calls
                        WHERE status = 'queued' AND bolna_execution_id IS NULL
                          AND (user_id, call_type) > (q.user_id, q.call_type)
                        ORDER BY user_id, call_type LIMIT 1) next
           )
           SELECT head.id AS "id!: CallId", head.user_id AS "user_id!: UserId",
                  head.call_type AS "call_type!: CallType", head.created_at AS "created_at!"
           FROM queues q
           JOIN users u ON u.id = q.user_id
           CROSS JOIN LATERAL (SELECT id, user_id, call_type, created_at FROM calls
                               WHERE user_id = q.user_id AND call_type = q.call_type
                                 AND status = 'queued' AND bolna_execution_id IS NULL
                               ORDER BY created_at, id LIMIT 1) head
           WHERE (SELECT count(*) FROM active_calls a WHERE a.user_id = q.user_id AND a.call_type = q.call_type)
                 < CASE q.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END
           ORDER BY head.created_at, head.id
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
