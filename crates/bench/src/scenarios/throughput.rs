//! Throughput over HTTP at a fixed number of concurrent clients: call admissions (each request
//! admitted, handed to the simulator and its execution ID recorded) and webhook events (stored and
//! applied, mixed statuses, 15% duplicates).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::environment::{execution_body, Stack};

/// Admissions per second with `clients` concurrent clients for `seconds`, spread over `keys`.
pub async fn admissions(stack: &Stack, keys: &[String], clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let started = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let workers = (0..clients).map(|_| {
        let (started, next) = (started.clone(), next.clone());
        async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let key = &keys[n % keys.len()];
                if let Ok((201, _)) = stack.call_at(n, key, &format!("+1444{n:07}")).await {
                    started.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    futures::future::join_all(workers).await;
    Ok(started.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64())
}

/// Webhook events per second with `clients` concurrent clients for `seconds`, walking each
/// execution forward through live statuses, 15% of posts repeating the previous one.
pub async fn webhooks(
    stack: &Stack,
    database_url: &str,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let pool = sqlx::PgPool::connect(database_url).await?;
    let executions: Vec<String> = sqlx::query_scalar(
        "SELECT bolna_execution_id FROM calls WHERE bolna_execution_id IS NOT NULL LIMIT 20000",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    anyhow::ensure!(!executions.is_empty(), "no calls to send webhooks for");
    const STATUSES: [&str; 3] = ["initiated", "ringing", "in-progress"];
    let plan: Vec<(String, &str)> =
        STATUSES.iter().flat_map(|status| executions.iter().map(move |e| (e.clone(), *status))).collect();
    let next = Arc::new(AtomicUsize::new(0));
    let applied = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let workers = (0..clients).map(|_| {
        let (next, applied, plan) = (next.clone(), applied.clone(), &plan);
        async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                // Every 7th post repeats an earlier one (≈ 15% duplicates).
                let index = if n % 7 == 6 { n.saturating_sub(3) } else { n };
                let Some((execution, status)) = plan.get(index % plan.len()) else { break };
                if let Ok(200) = stack.webhook(&execution_body(execution, status)).await {
                    applied.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    futures::stream::iter(workers).buffer_unordered(clients).collect::<Vec<()>>().await;
    Ok(applied.load(Ordering::Relaxed) as f64 / began.elapsed().as_secs_f64())
}
