//! How a simulator run behaves: timing, outcomes, the account limit, where webhooks go.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A simulator run's settings. All durations are "Bolna time", divided by `speed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimConfig {
    /// The bearer key callers must present; `None` accepts any key.
    pub api_key: Option<String>,
    /// Bolna's account concurrency: calls above it wait in `queued`, FIFO.
    pub account_concurrency: u32,
    /// 1.0 = realistic timing; 1000.0 turns seconds into milliseconds (tests).
    pub speed: f64,
    pub timings: Timings,
    pub outcomes: OutcomeMix,
    /// Keep answered calls `in-progress` until released through `/_sim/hangup` (load runs).
    pub hold_calls: bool,
    /// Where status changes are posted, and the header that goes with them.
    pub webhook: Option<WebhookTarget>,
    /// Deliveries per webhook (first included) before it is given up, like Bolna's retries.
    pub webhook_max_attempts: u32,
    /// The wallet `GET /user/me` reports.
    pub wallet: f64,
    /// The transcript a completed call carries (any text: a test may put a NUL character in it).
    #[serde(default = "default_transcript")]
    pub transcript: String,
}

fn default_transcript() -> String {
    "assistant: Hello, this is a simulated call.\nuser: Thanks, goodbye.".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookTarget {
    pub url: String,
    /// e.g. `("X-Webhook-Token", "secret")`.
    pub header: Option<(String, String)>,
}

/// Realistic Bolna timings in milliseconds (before `speed`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timings {
    pub queued_to_initiated_ms: u64,
    pub initiated_to_ringing_ms: u64,
    pub ringing_ms: u64,
    pub conversation_ms: u64,
    pub post_processing_ms: u64,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            queued_to_initiated_ms: 1_000,
            initiated_to_ringing_ms: 2_000,
            ringing_ms: 8_000,
            conversation_ms: 60_000,
            post_processing_ms: 20_000,
        }
    }
}

/// Relative weights of how calls end.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutcomeMix {
    pub completed: u32,
    pub no_answer: u32,
    pub busy: u32,
    pub failed: u32,
    pub balance_low: u32,
}

impl Default for OutcomeMix {
    fn default() -> Self {
        Self { completed: 80, no_answer: 10, busy: 5, failed: 5, balance_low: 0 }
    }
}

impl OutcomeMix {
    /// Every call completes.
    pub fn always_completed() -> Self {
        Self { completed: 1, no_answer: 0, busy: 0, failed: 0, balance_low: 0 }
    }
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            api_key: None,
            account_concurrency: 10,
            speed: 1.0,
            timings: Timings::default(),
            outcomes: OutcomeMix::default(),
            hold_calls: false,
            webhook: None,
            webhook_max_attempts: 8,
            wallet: 100.0,
            transcript: default_transcript(),
        }
    }
}

impl SimConfig {
    /// A realistic duration scaled by `speed`.
    pub fn scaled(&self, millis: u64) -> Duration {
        let speed = if self.speed.is_finite() && self.speed > 0.0 { self.speed } else { 1.0 };
        Duration::from_secs_f64(millis as f64 / 1000.0 / speed)
    }
}
