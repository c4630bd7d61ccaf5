//! The sender: claims due deliveries (at most `max_in_flight` on this instance, at most
//! `max_in_flight_per_endpoint` per endpoint), sends each on its own task, and hands the outcome to
//! the recorder, which writes the attempts that finished meanwhile in one transaction (group
//! commit; one attempt is a batch of one). A delivery's permit is given back once its attempt is
//! recorded. A hanging endpoint ties up only its own share; the rest go on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use call_service::audit::record_audit;
use call_service::outbound_webhooks::{
    claim_due_deliveries, delivery_stats, prune_webhook_messages, record_attempts, AttemptOutcome,
    ClaimedDelivery, DeliveryStatus, EndpointVerdict, FinishedAttempt,
};
use call_service::CancellationToken;
use chrono::Utc;
use rand::Rng;
use serde_json::json;
use tokio::sync::{mpsc, Notify, OwnedSemaphorePermit, Semaphore};

use super::destination::check_literal;
use super::signature::sign;
use super::OutboundContext;
use crate::state::AppState;

/// Bytes of an answer read (the rest is dropped); the log keeps the first [`EXCERPT_BYTES`].
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const EXCERPT_BYTES: usize = 1024;
/// How often the backlog gauges are refreshed and old messages pruned.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);
/// After an attempt is recorded, how long to let others finish before claiming again: one claim
/// for several freed places instead of one each.
const CLAIM_GATHER: Duration = Duration::from_millis(5);
/// Free places that make a claim worth it between polls.
const CLAIM_AT_LEAST: usize = 8;
/// Most attempts one recording transaction carries.
const RECORD_BATCH: usize = 256;

/// An attempt made, waiting to be recorded, with the permit it holds until then.
type Finished = (FinishedAttempt, OwnedSemaphorePermit);

/// Runs until `shutdown`; deliveries in flight then finish within the attempt timeout and are
/// recorded.
pub async fn run_sender(state: AppState, shutdown: CancellationToken) {
    let settings = state.settings.outbound_webhooks.clone();
    let permits = Arc::new(Semaphore::new(settings.max_in_flight as usize));
    let recorded = Arc::new(Notify::new());
    let (finished, to_record) = mpsc::unbounded_channel::<Finished>();
    let recorder = tokio::spawn(run_recorder(state.clone(), to_record, recorded.clone()));
    let mut poll = tokio::time::interval(settings.poll_interval());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_upkeep = Instant::now() - UPKEEP_EVERY;
    let mut pace = Pace::new(settings.max_deliveries_per_second, settings.poll_interval());
    loop {
        // On the poll's tick any free place is worth a claim; after attempts are recorded, only
        // enough of them (a paced sender would otherwise claim one delivery at a time).
        let least = tokio::select! {
            () = shutdown.cancelled() => break,
            _ = poll.tick() => 1,
            () = recorded.notified() => {
                tokio::time::sleep(CLAIM_GATHER).await;
                CLAIM_AT_LEAST
            }
        };
        if last_upkeep.elapsed() >= UPKEEP_EVERY {
            last_upkeep = Instant::now();
            upkeep(&state).await;
        }
        loop {
            let free = permits.available_permits().min(pace.available());
            if free < least.min(settings.max_in_flight as usize).max(1) {
                break;
            }
            let claimed = match claim(&state, free as i64).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(error = %error, "outbound webhooks: claiming deliveries failed");
                    break;
                }
            };
            let full = claimed.len() == free;
            pace.take(claimed.len());
            for delivery in claimed {
                let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                let (state, finished) = (state.clone(), finished.clone());
                tokio::spawn(async move {
                    let attempt = attempt(&state, delivery).await;
                    // The recorder stops only after every sender is gone: this cannot fail.
                    let _ = finished.send((attempt, permit));
                });
            }
            if !full {
                break;
            }
        }
    }
    // Attempts in flight finish and are recorded (their claims would otherwise wait out the lease).
    drop(finished);
    let _ = tokio::time::timeout(settings.timeout() + Duration::from_secs(2), recorder).await;
}

/// `outbound_webhooks.max_deliveries_per_second`: a token bucket holding one poll interval's worth,
/// so a draining backlog leaves the database and the cores to call handling. 0: no limit.
struct Pace {
    rate: f64,
    burst: f64,
    tokens: f64,
    filled_at: Instant,
}

impl Pace {
    fn new(rate: u32, interval: Duration) -> Self {
        let rate = f64::from(rate);
        let burst = (rate * interval.as_secs_f64()).max(1.0);
        Self { rate, burst, tokens: burst, filled_at: Instant::now() }
    }

    /// Deliveries that may start now.
    fn available(&mut self) -> usize {
        if self.rate == 0.0 {
            return usize::MAX;
        }
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.filled_at).as_secs_f64() * self.rate).min(self.burst);
        self.filled_at = now;
        self.tokens as usize
    }

    fn take(&mut self, started: usize) {
        self.tokens -= started as f64;
    }
}

/// Writes finished attempts, as many as have finished at once, then gives their permits back.
async fn run_recorder(
    state: AppState,
    mut to_record: mpsc::UnboundedReceiver<Finished>,
    recorded: Arc<Notify>,
) {
    while let Some(first) = to_record.recv().await {
        let mut batch = vec![first];
        while batch.len() < RECORD_BATCH {
            match to_record.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let (attempts, permits): (Vec<FinishedAttempt>, Vec<OwnedSemaphorePermit>) =
            batch.into_iter().unzip();
        if let Err(error) = record(&state, &attempts).await {
            // Their claims' leases run out and they are sent again: at least once.
            tracing::warn!(error = %error, attempts = attempts.len(), "outbound webhooks: recording attempts failed");
        }
        drop(permits);
        recorded.notify_one();
    }
}

async fn claim(state: &AppState, free: i64) -> sqlx::Result<Vec<ClaimedDelivery>> {
    let settings = &state.settings.outbound_webhooks;
    let mut conn = state.pool.acquire().await?;
    claim_due_deliveries(&mut conn, i64::from(settings.max_in_flight_per_endpoint), free, settings.lease())
        .await
}

/// Sends one delivery; says how it went.
async fn attempt(state: &AppState, delivery: ClaimedDelivery) -> FinishedAttempt {
    let settings = &state.settings.outbound_webhooks;
    let started_at = Utc::now();
    let clock = Instant::now();
    let result = send(&state.outbound, &delivery, started_at.timestamp()).await;
    let elapsed = clock.elapsed();
    state.outbound.metrics.attempt_seconds.observe(elapsed.as_secs_f64());
    let (status_code, error, excerpt) = match &result {
        Ok((code, excerpt)) => (Some(i32::from(*code)), None, Some(excerpt.clone())),
        Err(error) => (None, Some(error.clone()), None),
    };
    let code = status_code.unwrap_or(0);
    let schedule = &settings.retry_schedule_seconds;
    let (next, next_attempt_at, verdict, outcome) = if (200..300).contains(&code) {
        (DeliveryStatus::Succeeded, Utc::now(), EndpointVerdict::Healthy, "succeeded")
    } else if code == 410 {
        (DeliveryStatus::Failed, Utc::now(), EndpointVerdict::Gone, "gone")
    } else {
        let failing = EndpointVerdict::Failing { disable_after: settings.disable_after() };
        match schedule.get(delivery.schedule_step.max(0) as usize) {
            Some(wait) => {
                let jittered = wait * rand::thread_rng().gen_range(1.0..1.1);
                let at = Utc::now() + chrono::Duration::milliseconds((jittered * 1000.0) as i64);
                (DeliveryStatus::Pending, at, failing, "retrying")
            }
            None => (DeliveryStatus::Failed, Utc::now(), failing, "failed"),
        }
    };
    let error = error
        .or_else(|| (!(200..300).contains(&code)).then(|| format!("the endpoint answered {code}, not 2xx")));
    let recorded = AttemptOutcome {
        started_at,
        status_code,
        latency_ms: elapsed.as_millis().min(i32::MAX as u128) as i32,
        error,
        response_excerpt: excerpt,
        next,
        next_attempt_at,
    };
    state.outbound.metrics.attempts.with_label_values(&[outcome]).inc();
    FinishedAttempt { delivery, outcome: recorded, verdict }
}

async fn record(state: &AppState, attempts: &[FinishedAttempt]) -> sqlx::Result<()> {
    let mut tx = state.pool.begin().await?;
    for disabled in record_attempts(&mut tx, attempts).await? {
        let details =
            json!({"endpoint_id": disabled.endpoint_id, "reason": disabled.reason, "url": disabled.url});
        record_audit(&mut tx, "outbound_webhooks", "webhook_endpoint_disabled", None, details).await?;
        state.outbound.metrics.endpoints_disabled.with_label_values(&[disabled.reason]).inc();
        tracing::warn!(endpoint = %disabled.endpoint_id, reason = disabled.reason, "outbound webhooks: endpoint disabled");
    }
    tx.commit().await
}

/// The request: status code and the answer's first bytes, or what went wrong.
async fn send(
    outbound: &OutboundContext,
    delivery: &ClaimedDelivery,
    timestamp: i64,
) -> Result<(u16, String), String> {
    let url =
        reqwest::Url::parse(&delivery.url).map_err(|_| "the endpoint's URL does not parse".to_owned())?;
    if url.scheme() == "http" && !outbound.policy.allow_http {
        return Err("http:// is refused (outbound_webhooks.allow_http)".to_owned());
    }
    check_literal(&url, outbound.policy).map_err(|e| e.to_string())?;
    let sealer = outbound.sealer.as_ref().ok_or("outbound_webhooks.secret_key is not configured")?;
    let secret =
        sealer.open(&delivery.secret).ok_or("the endpoint's secret does not open with the configured key")?;
    let previous = delivery
        .previous_secret
        .as_ref()
        .filter(|_| delivery.previous_secret_expires_at.is_some_and(|until| until > Utc::now()))
        .and_then(|sealed| sealer.open(sealed));
    let id = format!("msg_{}", delivery.message_id);
    let keys = std::iter::once(secret.key()).chain(previous.as_ref().map(|p| p.key()));
    let signature = sign(&id, timestamp, &delivery.body, keys);
    let response = outbound
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.body.clone())
        .send()
        .await
        .map_err(describe)?;
    let status = response.status().as_u16();
    let excerpt = read_excerpt(response).await;
    Ok((status, excerpt))
}

/// The answer's first bytes as text, reading at most [`MAX_RESPONSE_BYTES`].
async fn read_excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let mut text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_BYTES)]).into_owned();
    text.retain(|c| c != '\0');
    while text.len() > EXCERPT_BYTES {
        text.pop();
    }
    text
}

/// A failed request in a few words, with its cause (a refused destination names the address).
fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_redirect() {
        "redirected (redirects are not followed)"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {cause}")
    }
}

/// Refreshes the backlog gauges and deletes messages past retention.
async fn upkeep(state: &AppState) {
    let metrics = &state.outbound.metrics;
    let retention = state.settings.outbound_webhooks.retention();
    let result = async {
        let mut conn = state.pool.acquire().await?;
        let stats = delivery_stats(&mut conn).await?;
        metrics.backlog.set(stats.iter().map(|s| s.backlog).sum());
        metrics.oldest_pending_seconds.reset();
        for endpoint in &stats {
            metrics
                .oldest_pending_seconds
                .with_label_values(&[&endpoint.endpoint_id.to_string()])
                .set(endpoint.oldest_seconds);
        }
        if let Ok(retention) = chrono::Duration::from_std(retention) {
            let before = Utc::now() - retention;
            while prune_webhook_messages(&mut conn, before).await? == 1000 {}
        }
        Ok::<_, sqlx::Error>(())
    }
    .await;
    if let Err(error) = result {
        tracing::warn!(error = %error, "outbound webhooks: upkeep failed");
    }
}
