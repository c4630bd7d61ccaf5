//! Latency of a call start at a steady, open-loop request rate (requests are sent on a schedule,
//! not when the previous one returns), the simulator answering at once. The baseline is the same
//! `POST /call` sent straight to the simulator at the same rate: the difference is Switchboard's
//! overhead (admission, hand-off, record). Both run at the rate for a warm-up first.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Mutex;

use crate::environment::{Stack, AGENT};

/// Seconds at the rate before measuring: a fresh server opens its pooled database connections and
/// PostgreSQL warms its caches in the first second (about 2% of requests over 15 ms then).
const WARM_UP_SECONDS: u64 = 2;

/// Latencies in milliseconds of requests sent at `rate` per second for `seconds`, after
/// [`WARM_UP_SECONDS`] at the same rate that are not counted.
async fn open_loop<F, Fut>(rate: u32, seconds: u64, send: F) -> Vec<f64>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send + 'static,
{
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let send = Arc::new(send);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let warm_up = u64::from(rate) * WARM_UP_SECONDS;
    let total = warm_up + u64::from(rate) * seconds;
    let mut tasks = Vec::with_capacity(total as usize);
    for n in 0..total {
        ticker.tick().await;
        let (send, latencies) = (send.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            if send(n).await && n >= warm_up {
                latencies.lock().await.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    futures::future::join_all(tasks).await;
    let latencies = latencies.lock().await.clone();
    latencies
}

/// `POST /call` straight to the simulator at `rate` for `seconds`: the baseline's latencies (ms).
pub async fn direct(stack: &Stack, rate: u32, seconds: u64) -> anyhow::Result<Vec<f64>> {
    let direct_url = format!("{}/call", stack.sim.base_url());
    let http = stack.http.clone();
    let direct_ms = open_loop(rate, seconds, move |n| {
        let (http, url) = (http.clone(), direct_url.clone());
        async move {
            let body = json!({"agent_id": AGENT, "recipient_phone_number": format!("+1333{n:07}")});
            http.post(&url)
                .bearer_auth("bench")
                .json(&body)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        }
    })
    .await;
    anyhow::ensure!(!direct_ms.is_empty(), "no request to the simulator succeeded");
    Ok(direct_ms)
}

/// Call starts through Switchboard at `rate` for `seconds`, spread over `keys`: latencies (ms).
pub async fn switchboard(
    stack: Arc<Stack>,
    keys: Arc<Vec<String>>,
    rate: u32,
    seconds: u64,
) -> anyhow::Result<Vec<f64>> {
    let switchboard_ms = open_loop(rate, seconds, move |n| {
        let (stack, keys) = (stack.clone(), keys.clone());
        async move {
            let key = &keys[n as usize % keys.len()];
            matches!(stack.call(key, &format!("+1222{n:07}")).await, Ok((201, _)))
        }
    })
    .await;
    anyhow::ensure!(!switchboard_ms.is_empty(), "no call start succeeded");
    Ok(switchboard_ms)
}
