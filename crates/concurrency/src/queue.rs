//! The queue of calls waiting for a slot, and starting its heads: when a slot frees (hand-over)
//! and when the dispatcher looks. Both use `start_queue_head` in `sql/ledger.sql`: the head by the
//! FIFO rule, then the same reservation as [`crate::reserve`], built from the rules admission uses.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::{CallId, CallType, UserId};
use crate::policy::SlotPolicy;
use crate::release::{release_call_slot, ReleasedSlot};

/// The channel dispatchers listen on: a slot or line freed that no queued call of the same user
/// and type took (or a limit raised), so another user's queue may start; `admit_calls` in
/// `sql/ledger.sql` notifies it too (by this name) when it inserts a scheduled call.
pub const DISPATCH_CHANNEL: &str = "switchboard_dispatch";

/// What trying to start the head of a queue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueStart {
    /// The head holds a slot and a line now and is `initiating`: start it at Bolna after commit.
    Started(CallId),
    /// Nobody of this user and type waits.
    Empty,
    /// All of the user's slots of this type are taken.
    UserLimitReached,
    /// The head's user's or campaign's budget is spent: it stays queued.
    BudgetExhausted,
    /// Bolna's rate limit: no send token is free (see [`crate::send_tokens`]).
    RateLimitReached,
    /// Every account line is taken.
    AccountLimitReached,
    /// Another transaction holds the head (a cancel in flight): the next pass decides.
    HeadBusy,
}

/// Starts the head of the queue of `user` and `call_type` if a slot, a send token and a line are
/// free, in the caller's transaction.
pub async fn start_queue_head(
    conn: &mut PgConnection,
    user: UserId,
    call_type: CallType,
    policy: &SlotPolicy,
) -> sqlx::Result<QueueStart> {
    let answer = sqlx::query!(
        r#"SELECT outcome AS "outcome!", call_id AS "call_id: CallId" FROM start_queue_head($1, $2, $3, $4, $5, $6)"#,
        user as UserId,
        call_type.as_str(),
        policy.lines(),
        policy.tokens(),
        policy.send_window_seconds(),
        policy.lease_seconds()
    )
    .fetch_one(conn)
    .await?;
    Ok(match (answer.outcome.as_str(), answer.call_id) {
        ("started", Some(call)) => QueueStart::Started(call),
        ("empty", _) => QueueStart::Empty,
        ("user_limit", _) => QueueStart::UserLimitReached,
        ("budget_exhausted", _) => QueueStart::BudgetExhausted,
        ("rate_limit", _) => QueueStart::RateLimitReached,
        ("account_limit", _) => QueueStart::AccountLimitReached,
        _ => QueueStart::HeadBusy,
    })
}

/// What a release freed, and the queued call that took the freed slot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HandOver {
    /// `None` when the call held no slot (already released: nothing happened).
    pub released: Option<ReleasedSlot>,
    /// The head of the same user's queue of the same type, now `initiating`.
    pub next: Option<CallId>,
}

/// Releases the slot of `call` (idempotent) and hands it straight to the head of the same user's
/// queue of the same type, in the caller's transaction. When nobody of that user and type can
/// take it, the freed line is announced so any instance's dispatcher gives it to another user.
#[tracing::instrument(name = "Release a slot and hand it over", skip(conn, policy))]
pub async fn release_and_hand_over(
    conn: &mut PgConnection,
    call: CallId,
    reason: &str,
    policy: &SlotPolicy,
) -> sqlx::Result<HandOver> {
    let Some(released) = release_call_slot(conn, call, reason).await? else {
        return Ok(HandOver::default());
    };
    let next = match start_queue_head(conn, released.user_id, released.call_type, policy).await? {
        QueueStart::Started(next) => Some(next),
        _ => {
            announce_free_capacity(conn).await?;
            None
        }
    };
    Ok(HandOver { released: Some(released), next })
}

/// Wakes every instance's dispatcher when the transaction commits.
pub async fn announce_free_capacity(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", DISPATCH_CHANNEL).execute(conn).await?;
    Ok(())
}

/// A queue whose user has a free slot of its type, with when its head became due.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StartableQueue {
    pub user_id: UserId,
    pub call_type: CallType,
    pub head_due_at: DateTime<Utc>,
}

/// The dispatcher's pass: the queues whose user has a free slot of their type, oldest head first
/// (the fair order across users), at most `$1`. Public so the benchmark can show its plan.
///
/// The distinct queues are found with a loose index scan — a recursive walk of `idx_calls_queue`
/// that jumps from one queue to the next — and each head is one more index probe, so a pass costs
/// a few probes per waiting *queue*, not a scan of every waiting *call* (100,000 calls queued for
/// 100 users: about 2 ms, where `DISTINCT ON` over the queue took 30 ms).
pub const STARTABLE_QUEUES_SQL: &str = "WITH RECURSIVE queues AS (
        (SELECT user_id, call_type FROM slot_queue ORDER BY user_id, call_type LIMIT 1)
        UNION ALL
        SELECT next.user_id, next.call_type FROM queues q,
        LATERAL (SELECT user_id, call_type FROM slot_queue
                 WHERE (user_id, call_type) > (q.user_id, q.call_type)
                 ORDER BY user_id, call_type LIMIT 1) next)
    SELECT q.user_id, q.call_type, head.due_at AS head_due_at
    FROM queues q
    CROSS JOIN LATERAL slot_queue_head(q.user_id, q.call_type) head
    CROSS JOIN LATERAL user_free_slots(q.user_id, q.call_type) slots
    WHERE slots.free > 0
    ORDER BY head.due_at, head.id
    LIMIT $1";

/// See [`STARTABLE_QUEUES_SQL`].
pub async fn startable_queues(conn: &mut PgConnection, limit: i64) -> sqlx::Result<Vec<StartableQueue>> {
    sqlx::query_as::<_, StartableQueue>(STARTABLE_QUEUES_SQL).bind(limit).fetch_all(conn).await
}

/// What [`enqueue_due_scheduled_calls`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduledCalls {
    /// Calls that joined the queue.
    pub enqueued: i32,
    /// When the earliest call still scheduled is due (`None`: none is); no later than `now` when
    /// some due calls were left for later.
    pub next_due_at: Option<DateTime<Utc>>,
}

/// Puts up to `limit` scheduled calls whose time has come by `now` into the queue, in one round
/// trip with when the next is due (the SQL function `enqueue_due_scheduled_calls`).
pub async fn enqueue_due_scheduled_calls(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: i32,
) -> sqlx::Result<ScheduledCalls> {
    let row = sqlx::query!(
        r#"SELECT enqueued AS "enqueued!", next_due_at FROM enqueue_due_scheduled_calls($1, $2)"#,
        now,
        limit
    )
    .fetch_one(conn)
    .await?;
    Ok(ScheduledCalls { enqueued: row.enqueued, next_due_at: row.next_due_at })
}
