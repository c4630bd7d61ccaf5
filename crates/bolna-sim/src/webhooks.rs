//! Posting status changes to the configured webhook URL, one execution's changes in order, with
//! Bolna-like retries on a non-2xx answer or no answer, and the webhook faults (duplicates,
//! out-of-order, drops, an outage of the receiver).

use std::sync::Arc;
use std::time::Duration;

use bolna_client::Execution;
use chrono::Utc;
use tokio::sync::mpsc;

use crate::faults::chance;
use crate::state::SimState;
use crate::stats::WebhookRecord;

/// Delivers one execution's webhooks until its channel closes.
pub async fn deliver_in_order(state: Arc<SimState>, mut receiver: mpsc::UnboundedReceiver<Execution>) {
    let mut held_back: Option<Execution> = None;
    while let Some(body) = receiver.recv().await {
        let faults = state.faults().webhooks.clone();
        if faults.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
        }
        if chance(faults.drop_probability) {
            state.stats().webhooks_dropped += 1;
            continue;
        }
        // Out of order: keep this one back and send it after the next one.
        if held_back.is_none() && !body.status.is_terminal() && chance(faults.out_of_order_probability) {
            held_back = Some(body);
            continue;
        }
        deliver(&state, &body).await;
        if chance(faults.duplicate_probability) {
            deliver(&state, &body).await;
        }
        if let Some(late) = held_back.take() {
            deliver(&state, &late).await;
        }
        if body.status.is_terminal() {
            break;
        }
    }
    if let Some(late) = held_back {
        deliver(&state, &late).await;
    }
}

/// One webhook, retried with backoff until a 2xx or the attempts run out.
async fn deliver(state: &SimState, body: &Execution) {
    let config = state.config();
    let Some(target) = config.webhook.clone() else { return };
    for attempt in 1..=config.webhook_max_attempts.max(1) {
        let sent = std::time::Instant::now();
        let (answer, error) = if state.faults().webhook_outage() {
            (None, Some("receiver down (simulated outage)".to_owned()))
        } else {
            let mut request = state.http.post(&target.url).json(body);
            if let Some((name, value)) = &target.header {
                request = request.header(name.as_str(), value.as_str());
            }
            match request.send().await {
                Ok(response) => (Some(response.status().as_u16()), None),
                Err(error) => (None, Some(error.to_string())),
            }
        };
        let delivered = answer.is_some_and(|status| (200..300).contains(&status));
        state.stats().record_webhook(WebhookRecord {
            execution_id: body.id.clone(),
            status: body.status.as_str().to_owned(),
            attempt,
            answer,
            error,
            at: Utc::now(),
            latency_ms: sent.elapsed().as_secs_f64() * 1000.0,
        });
        if delivered {
            return;
        }
        let backoff =
            Duration::from_millis(50u64.saturating_mul(1 << attempt.min(7))).min(Duration::from_secs(5));
        tokio::time::sleep(backoff).await;
    }
    state.stats().webhooks_given_up += 1;
}
