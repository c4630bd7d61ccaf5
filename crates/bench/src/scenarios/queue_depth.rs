//! Dispatch latency against queue depth: the queue is filled (in steps, e.g. 100 → 100,000) with
//! calls of users whose limit is 0 — they wait for ever, and every dispatcher pass must look past
//! them — then the queued-call start latency of `dispatch_latency` is measured at each depth.

use sqlx::PgPool;

use super::bulk::{explain, load_calls, Load};
use super::dispatch_latency;
use crate::environment::Stack;
use crate::report::percentile;

/// The same pass as it was before the loose index scan (`DISTINCT ON` over every waiting call),
/// on today's rules, for comparison.
const STARTABLE_QUEUES_BEFORE: &str =
    "SELECT q.id FROM (SELECT DISTINCT ON (user_id, call_type) id, user_id, call_type, due_at \
    FROM slot_queue ORDER BY user_id, call_type, due_at, id) q \
    CROSS JOIN LATERAL user_free_slots(q.user_id, q.call_type) slots \
    WHERE slots.free > 0 \
    ORDER BY q.due_at, q.id LIMIT 100";

pub struct QueueDepth {
    /// (queued calls, dispatch p50 ms, p99 ms) per depth.
    pub curve: Vec<(f64, f64, f64)>,
    /// Plans of the queue statements at the deepest queue: (statement, plan).
    pub plans: Vec<(String, String)>,
}

pub async fn run(stack: &Stack, depths: &[i64], samples: usize) -> anyhow::Result<QueueDepth> {
    let pool = PgPool::connect(&stack.database_url).await?;
    let mut blocked = Vec::new();
    for _ in 0..100 {
        blocked.push(stack.user_with_id(0).await?.0);
    }
    let mut queued = 0;
    let mut curve = Vec::new();
    for (round, &depth) in depths.iter().enumerate() {
        queued += load_calls(
            &pool,
            &Load { first: 10_000_000 + queued, count: depth - queued, owners: &blocked, status: "queued" },
        )
        .await?;
        eprintln!("  {queued} queued calls: dispatch latency");
        let mut latency = dispatch_latency::run(stack, samples, round as u32 + 1).await?;
        curve.push((
            queued as f64,
            percentile(&mut latency.dispatch_ms, 50.0),
            percentile(&mut latency.dispatch_ms, 99.0),
        ));
    }
    let waiting_user = blocked[0].to_string();
    let mut plans = Vec::new();
    for (name, sql, params) in [
        (
            format!("dispatcher pass with {queued} calls queued"),
            concurrency::STARTABLE_QUEUES_SQL.replace("$1", "100"),
            vec![],
        ),
        (
            format!("the dispatcher pass with DISTINCT ON instead, {queued} queued"),
            STARTABLE_QUEUES_BEFORE.to_owned(),
            vec![],
        ),
        (
            format!("admission: is an older call of this user waiting? ({queued} queued)"),
            "SELECT EXISTS (SELECT 1 FROM slot_queue_head($1::uuid, 'direct'))".to_owned(),
            vec![waiting_user.as_str()],
        ),
    ] {
        plans.push((name, explain(&pool, &sql, &params).await?));
    }
    pool.close().await;
    Ok(QueueDepth { curve, plans })
}
