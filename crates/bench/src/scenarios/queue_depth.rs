//! Dispatch latency against queue depth: the queue is filled (in steps, e.g. 100 → 100,000) with
//! calls of users whose limit is 0 — they wait for ever, and every dispatcher pass must look past
//! them — then the queued-call start latency of `dispatch_latency` is measured at each depth.

use sqlx::PgPool;

use super::bulk::{load_calls, Load};
use super::dispatch_latency;
use crate::environment::Stack;
use crate::report::percentile;

/// (queued calls, dispatch p50 ms, p99 ms) per depth.
pub async fn run(stack: &Stack, depths: &[i64], samples: usize) -> anyhow::Result<Vec<(f64, f64, f64)>> {
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
    pool.close().await;
    Ok(curve)
}
