//! Bolna's webhooks: store first, then apply. The common path is one transaction (store + apply +
//! commit); when applying fails the event is still stored, as `pending`, for the reconciler.
//! Nothing Bolna sends is lost, and applying the same body twice has the effect of applying it once.

pub(crate) mod batched;
mod decision;
mod locked;
mod retention;
mod store;
mod writer;

use batched::{LiveOutcome, LiveWebhook};
pub(crate) use locked::{apply_execution, Applied};
pub use retention::{delete_processed_bodies, RETENTION_BATCH};
pub(crate) use store::set_outcome as set_event_outcome;
pub use store::{EventOutcome, ReceivedEvent};

use bolna_client::Execution;
use serde_json::Value;

use crate::error::CallError;
use crate::json_text::remove_nul_characters;
use crate::service::CallService;
use crate::CallId;
use store::insert_event;

/// How many batches a live webhook tries before it takes the row lock: a call's webhooks rarely
/// come more than three at once.
const BATCH_TRIES: usize = 3;

/// What happened to a received webhook.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookReceipt {
    /// Stored and processed (or stored as pending when processing failed).
    Stored { event_id: i64, outcome: EventOutcome, call_id: Option<CallId> },
    /// Not a webhook body: stored as rejected.
    Rejected { event_id: i64, reason: String },
    /// A webhook whose identifying field (`id`, `status`) holds a NUL character or is too long:
    /// stored as rejected (changing it could name another execution).
    RejectedField { event_id: i64, field: &'static str, reason: String },
}

impl CallService {
    /// Stores and applies one webhook body as received, detached from the caller (see
    /// [`CallService::detached`]): applying it may hand a freed slot to a queued call, which must
    /// then be started.
    pub async fn receive_webhook(
        &self,
        raw: &[u8],
        source_ip: Option<&str>,
    ) -> Result<WebhookReceipt, CallError> {
        let service = self.clone();
        let raw = raw.to_vec();
        let source_ip = source_ip.map(str::to_owned);
        self.detached(async move { service.process_webhook(&raw, source_ip.as_deref()).await }).await
    }

    #[tracing::instrument(name = "Receive a Bolna webhook", skip_all)]
    async fn process_webhook(
        &self,
        raw: &[u8],
        source_ip: Option<&str>,
    ) -> Result<WebhookReceipt, CallError> {
        let mut value: Value = match serde_json::from_slice(raw) {
            Ok(value) => value,
            Err(error) => {
                let reason = format!("malformed JSON: {error}");
                let event_id = self.reject(raw, None, source_ip, &reason).await?;
                return Ok(WebhookReceipt::Rejected { event_id, reason });
            }
        };
        // JSON allows U+0000 inside strings (a transcript may carry one); PostgreSQL's text and
        // jsonb do not. The bytes are stored as received; what is applied and queried has none —
        // except in the fields that name the execution and its status, where it is refused.
        let identifying = ["id", "status"].into_iter().find_map(|field| {
            let text = value.get(field).and_then(Value::as_str)?;
            identifying_field_problem(text).map(|problem| (field, problem))
        });
        remove_nul_characters(&mut value);
        if let Some((field, problem)) = identifying {
            let reason = format!("`{field}` {problem}");
            let event_id = self.reject(raw, Some(&value), source_ip, &reason).await?;
            return Ok(WebhookReceipt::RejectedField { event_id, field, reason });
        }
        let execution: Execution = match serde_json::from_value(value.clone()) {
            Ok(execution) => execution,
            Err(error) => {
                let reason = format!("not an execution: {error}");
                let event_id = self.reject(raw, Some(&value), source_ip, &reason).await?;
                return Ok(WebhookReceipt::Rejected { event_id, reason });
            }
        };
        let event = ReceivedEvent {
            execution_id: Some(&execution.id),
            status: Some(execution.status.as_str()),
            body: Some(&value),
            received: raw,
            source_ip,
        };
        match self.store_and_apply(&event, &execution).await {
            Ok(receipt) => Ok(receipt),
            Err(error) => {
                tracing::error!(error = %error, execution_id = %execution.id, "applying a webhook failed; stored as pending");
                let mut conn = self.pool().acquire().await?;
                let detail = format!("processing failed: {error}");
                let event_id = insert_event(&mut conn, &event, EventOutcome::Pending, Some(&detail)).await?;
                Ok(WebhookReceipt::Stored { event_id, outcome: EventOutcome::Pending, call_id: None })
            }
        }
    }

    /// A live status for a known call goes the lock-free way, gathered with others into one batch
    /// (see [`crate::batch`]); a second one for a call already in the batch goes again with the
    /// next batch (up to [`BATCH_TRIES`] times); everything else — a freed line, an unknown or not
    /// yet recorded execution, a lost race — in one transaction under the call's row lock. Either
    /// way the event is stored with its outcome in the same commit as its effect.
    async fn store_and_apply(
        &self,
        event: &ReceivedEvent<'_>,
        execution: &Execution,
    ) -> Result<WebhookReceipt, CallError> {
        let applied = match self.apply_batched(event, execution).await? {
            Some(applied) => applied,
            None => {
                let mut tx = self.pool().begin().await?;
                let applied =
                    apply_execution(&mut tx, execution, &self.slot_policy(), self.now(), Some(event)).await?;
                tx.commit().await?;
                applied
            }
        };
        let event_id = applied.event_id.ok_or_else(|| anyhow::anyhow!("the webhook event was not stored"))?;
        self.metrics()
            .webhook_events
            .with_label_values(&[execution.status.as_str(), applied.outcome.as_str()])
            .inc();
        if let Some(updated) = execution.updated_at {
            let lag = (chrono::Utc::now() - updated).num_milliseconds().max(0) as f64 / 1000.0;
            self.metrics().webhook_lag.observe(lag);
        }
        tracing::info!(
            event_id,
            execution_id = %execution.id,
            status = %execution.status,
            outcome = applied.outcome.as_str(),
            call_id = applied.call.map(|c| c.to_string()).unwrap_or_default(),
            "webhook processed"
        );
        self.start_after_commit(applied.next);
        if let (EventOutcome::Applied, Some(call)) = (applied.outcome, applied.call) {
            self.take_back_if_rescheduled(call, execution);
        }
        Ok(WebhookReceipt::Stored { event_id, outcome: applied.outcome, call_id: applied.call })
    }

    /// A live status through the batches (see [`Self::store_and_apply`]); `None` when it must
    /// take the row lock.
    async fn apply_batched(
        &self,
        event: &ReceivedEvent<'_>,
        execution: &Execution,
    ) -> Result<Option<Applied>, CallError> {
        let (true, Some(body)) = (LiveWebhook::applies_to(execution), event.body) else { return Ok(None) };
        for _ in 0..BATCH_TRIES {
            let webhook = LiveWebhook {
                execution: execution.clone(),
                body: body.clone(),
                received: event.received.to_vec(),
                source_ip: event.source_ip.map(str::to_owned),
            };
            match self.inner.webhooks.submit(webhook).await {
                Ok(LiveOutcome::Done(applied)) => return Ok(Some(*applied)),
                Ok(LiveOutcome::SameCallInBatch) => continue,
                Ok(LiveOutcome::Locked) => return Ok(None),
                Err(error) => {
                    tracing::warn!(error = %error, execution_id = %execution.id, "the batched write failed; taking the row lock");
                    return Ok(None);
                }
            }
        }
        Ok(None)
    }

    /// Stores a body that is not a webhook as rejected; its event id.
    async fn reject(
        &self,
        received: &[u8],
        body: Option<&Value>,
        source_ip: Option<&str>,
        reason: &str,
    ) -> Result<i64, CallError> {
        let event = ReceivedEvent { execution_id: None, status: None, body, received, source_ip };
        let mut conn = self.pool().acquire().await?;
        let event_id = insert_event(&mut conn, &event, EventOutcome::Rejected, Some(reason)).await?;
        self.metrics().webhook_events.with_label_values(&["unknown", "rejected"]).inc();
        tracing::warn!(event_id, reason, "webhook rejected");
        Ok(event_id)
    }
}

/// The longest execution ID or status stored (Bolna's are a UUID and a short word; an index entry
/// cannot hold an arbitrarily long one).
const MAX_IDENTIFYING_CHARS: usize = 255;

/// Why an execution's `id` or `status` cannot be stored as it is, if it cannot.
fn identifying_field_problem(text: &str) -> Option<String> {
    if text.contains('\0') {
        Some("contains a NUL character".into())
    } else if text.chars().count() > MAX_IDENTIFYING_CHARS {
        Some(format!("is longer than {MAX_IDENTIFYING_CHARS} characters"))
    } else {
        None
    }
}
