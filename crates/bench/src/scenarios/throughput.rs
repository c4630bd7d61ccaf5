//! Throughput over HTTP at a fixed number of concurrent clients: call admissions (each request
//! admitted, handed to the simulator and its execution ID recorded) and webhook events (stored and
//! applied, mixed statuses, 15% duplicates).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::environment::{execution_body, Stack};

/// Admissions per second with `clients` concurrent clients for `seconds`, spread over `keys`.
/// Every call must start (201): a call that queued (its user's slots full) or failed would make the
/// figure measure something else, so more than 1% of them is an error.
pub async fn admissions(stack: &Stack, keys: &[String], clients: usize, seconds: u64) -> anyhow::Result<f64> {
    let started = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let began = Instant::now();
    let workers = (0..clients).map(|_| {
        let (started, other, next) = (started.clone(), other.clone(), next.clone());
        async move {
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let key = &keys[n % keys.len()];
                match stack.call_at(n, key, &format!("+1444{n:07}")).await {
                    Ok((201, _)) => started.fetch_add(1, Ordering::Relaxed),
                    _ => other.fetch_add(1, Ordering::Relaxed),
                };
            }
        }
    });
    futures::future::join_all(workers).await;
    let (started, other) = (started.load(Ordering::Relaxed), other.load(Ordering::Relaxed));
    anyhow::ensure!(
        other * 100 <= started,
        "{other} of {} call requests did not start at once (queued or failed): too few users or slots",
        started + other
    );
    Ok(started as f64 / began.elapsed().as_secs_f64())
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
