//! Dispatch latency against queue depth: the queue is filled (in steps, e.g. 100 → 100,000) with
//! calls of users whose limit is 0 — they wait for ever, and every dispatcher pass must look past
//! them — then the queued-call start latency of `dispatch_latency` is measured at each depth.

use sqlx::PgPool;

use super::bulk::{explain, load_calls, Load};
use super::dispatch_latency;
use crate::environment::Stack;
use crate::report::percentile;

/// The dispatcher's pass query (a copy of `startable_heads` in call-service's `dispatch/claim.rs`).
const STARTABLE_HEADS: &str = "WITH RECURSIVE queues AS ( \
    (SELECT user_id, call_type FROM calls WHERE status = 'queued' AND bolna_execution_id IS NULL \
     ORDER BY user_id, call_type LIMIT 1) \
    UNION ALL \
    SELECT next.user_id, next.call_type FROM queues q, \
    LATERAL (SELECT user_id, call_type FROM calls WHERE status = 'queued' AND bolna_execution_id IS NULL \
             AND (user_id, call_type) > (q.user_id, q.call_type) ORDER BY user_id, call_type LIMIT 1) next) \
    SELECT head.id FROM queues q JOIN users u ON u.id = q.user_id \
    CROSS JOIN LATERAL (SELECT id, created_at FROM calls WHERE user_id = q.user_id AND call_type = q.call_type \
                        AND status = 'queued' AND bolna_execution_id IS NULL ORDER BY created_at, id LIMIT 1) head \
    WHERE (SELECT count(*) FROM active_calls a WHERE a.user_id = q.user_id AND a.call_type = q.call_type) \
          < CASE q.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END \
    ORDER BY head.created_at, head.id LIMIT 100";

/// The same pass as it was before (`DISTINCT ON` over every waiting call), for comparison.
const STARTABLE_HEADS_BEFORE: &str = "SELECT q.id FROM (SELECT DISTINCT ON (user_id, call_type) id, user_id, call_type, created_at \
    FROM calls WHERE status = 'queued' AND bolna_execution_id IS NULL ORDER BY user_id, call_type, created_at, id) q \
    JOIN users u ON u.id = q.user_id \
    WHERE (SELECT count(*) FROM active_calls a WHERE a.user_id = q.user_id AND a.call_type = q.call_type) \
          < CASE q.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END \
    ORDER BY q.created_at, q.id LIMIT 100";

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
        (format!("dispatcher pass with {queued} calls queued"), STARTABLE_HEADS.to_owned(), vec![]),
        (format!("the dispatcher pass before this change, {queued} queued"), STARTABLE_HEADS_BEFORE.to_owned(), vec![]),
        (
            format!("admission: is an older call of this user waiting? ({queued} queued)"),
            "SELECT EXISTS (SELECT 1 FROM calls WHERE user_id = $1::uuid AND call_type = 'direct' AND status = 'queued' \
             AND bolna_execution_id IS NULL AND id <> '00000000-0000-0000-0000-000000000000')"
                .to_owned(),
            vec![waiting_user.as_str()],
        ),
    ] {
        plans.push((name, explain(&pool, &sql, &params).await?));
    }
    pool.close().await;
    Ok(QueueDepth { curve, plans })
}
