//! Fault injection. Per run: probabilities and an outage window. Per request: one-shot faults for
//! the next call requests, or for every call to a given recipient.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What happens to one `POST /call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallFault {
    /// Refused with 429 (nothing started), optionally with `Retry-After` seconds.
    RateLimited { retry_after_seconds: Option<f64> },
    /// Refused with this 5xx before anything was started.
    ServerError { status: u16 },
    /// Accepted (the call runs), but answered with this 5xx: the caller cannot know.
    AcceptThenError { status: u16 },
    /// Accepted, and the answer is held back this long (past the caller's timeout).
    AcceptThenDelay { delay_ms: u64 },
    /// Answered normally after this much latency.
    Latency { delay_ms: u64 },
    /// Forced outcome of this call (e.g. `no-answer`), instead of the random mix.
    Outcome { status: String },
    /// Completed, but answered by a voice mail box (`answered_by_voice_mail`, a quarter of the
    /// usual conversation).
    Voicemail,
}

/// Probabilities (0.0..=1.0) applied to every webhook, plus an outage of the receiving end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WebhookFaults {
    pub duplicate_probability: f64,
    /// Deliver a status change before the previous one.
    pub out_of_order_probability: f64,
    pub drop_probability: f64,
    /// Added latency before each delivery, in milliseconds.
    pub delay_ms: u64,
}

/// Faults applied to `POST /call` by chance, per run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CallFaultRates {
    pub rate_limited_probability: f64,
    pub server_error_probability: f64,
    pub accept_then_error_probability: f64,
    pub latency_ms: u64,
}

/// The live fault settings of a simulator (changed at run time through `/_sim/faults`).
#[derive(Debug, Default)]
pub struct FaultState {
    pub next_calls: VecDeque<CallFault>,
    pub by_recipient: HashMap<String, CallFault>,
    pub call_rates: CallFaultRates,
    pub webhooks: WebhookFaults,
    /// While set and in the future, webhook deliveries fail as if the receiver were down; they
    /// are retried afterwards.
    pub webhook_outage_until: Option<Instant>,
    /// While set, every `POST /call` gets 503 and nothing starts (Bolna down).
    pub api_down: bool,
}

impl FaultState {
    /// The fault for this call request, consuming a one-shot fault if any.
    pub fn take_call_fault(&mut self, recipient: &str) -> Option<CallFault> {
        if let Some(fault) = self.by_recipient.get(recipient) {
            return Some(fault.clone());
        }
        if let Some(fault) = self.next_calls.pop_front() {
            return Some(fault);
        }
        let rates = &self.call_rates;
        if chance(rates.rate_limited_probability) {
            return Some(CallFault::RateLimited { retry_after_seconds: None });
        }
        if chance(rates.server_error_probability) {
            return Some(CallFault::ServerError { status: 500 });
        }
        if chance(rates.accept_then_error_probability) {
            return Some(CallFault::AcceptThenError { status: 502 });
        }
        (rates.latency_ms > 0).then_some(CallFault::Latency { delay_ms: rates.latency_ms })
    }

    pub fn webhook_outage(&self) -> bool {
        self.webhook_outage_until.is_some_and(|until| Instant::now() < until)
    }
}

/// True with probability `p`.
pub fn chance(p: f64) -> bool {
    p > 0.0 && rand::random::<f64>() < p
}
