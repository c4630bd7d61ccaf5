//! The sender: claims due deliveries (at most `max_in_flight` on this instance, at most
//! `max_in_flight_per_endpoint` per endpoint), sends each on its own task, and records the
//! attempt. A hanging endpoint ties up only its own share; the rest go on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use call_service::audit::record_audit;
use call_service::outbound_webhooks::{
    claim_due_deliveries, delivery_stats, prune_webhook_messages, record_attempt, AttemptOutcome,
    ClaimedDelivery, DeliveryStatus, EndpointVerdict,
};
use call_service::CancellationToken;
use chrono::Utc;
use rand::Rng;
use serde_json::json;
use tokio::sync::Semaphore;

use super::destination::check_literal;
use super::signature::sign;
use super::OutboundContext;
use crate::state::AppState;

/// Bytes of an answer read (the rest is dropped); the log keeps the first [`EXCERPT_BYTES`].
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const EXCERPT_BYTES: usize = 1024;
/// How often the backlog gauges are refreshed and old messages pruned.
const UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// Runs until `shutdown`; deliveries in flight then finish within the attempt timeout.
pub async fn run_sender(state: AppState, shutdown: CancellationToken) {
    let settings = state.settings.outbound_webhooks.clone();
    let permits = Arc::new(Semaphore::new(settings.max_in_flight as usize));
    let finished = Arc::new(tokio::sync::Notify::new());
    let mut poll = tokio::time::interval(settings.poll_interval());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_upkeep = Instant::now() - UPKEEP_EVERY;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = poll.tick() => {}
            () = finished.notified() => {}
        }
        if last_upkeep.elapsed() >= UPKEEP_EVERY {
            last_upkeep = Instant::now();
            upkeep(&state).await;
        }
        loop {
            let free = permits.available_permits();
            if free == 0 {
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
            for delivery in claimed {
                let Ok(permit) = permits.clone().try_acquire_owned() else { break };
                let state = state.clone();
                let finished = finished.clone();
                tokio::spawn(async move {
                    attempt(&state, delivery).await;
                    drop(permit);
                    finished.notify_one();
                });
            }
            if !full {
                break;
            }
        }
    }
    // Let attempts in flight finish (their claims would otherwise wait out the lease).
    let all = settings.max_in_flight;
    let _ =
        tokio::time::timeout(settings.timeout() + Duration::from_secs(1), permits.acquire_many(all)).await;
}

async fn claim(state: &AppState, free: i64) -> sqlx::Result<Vec<ClaimedDelivery>> {
    let settings = &state.settings.outbound_webhooks;
    let mut conn = state.pool.acquire().await?;
    claim_due_deliveries(&mut conn, i64::from(settings.max_in_flight_per_endpoint), free, settings.lease())
        .await
}

/// Sends one delivery and records how it went.
async fn attempt(state: &AppState, delivery: ClaimedDelivery) {
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
    if let Err(error) = record(state, &delivery, &recorded, verdict).await {
        // The claim's lease runs out and the delivery is sent again: at least once.
        tracing::warn!(error = %error, delivery = delivery.id, "outbound webhooks: recording an attempt failed");
    }
}

async fn record(
    state: &AppState,
    delivery: &ClaimedDelivery,
    outcome: &AttemptOutcome,
    verdict: EndpointVerdict,
) -> sqlx::Result<()> {
    let mut tx = state.pool.begin().await?;
    if let Some(reason) = record_attempt(&mut tx, delivery, outcome, verdict).await? {
        let details = json!({"endpoint_id": delivery.endpoint_id, "reason": reason, "url": delivery.url});
        record_audit(&mut tx, "outbound_webhooks", "webhook_endpoint_disabled", None, details).await?;
        state.outbound.metrics.endpoints_disabled.with_label_values(&[reason]).inc();
        tracing::warn!(endpoint = %delivery.endpoint_id, reason, "outbound webhooks: endpoint disabled");
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
