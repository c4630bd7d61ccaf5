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
    /// Bolna's rate limit on `POST /call`: above it, `429` with `Retry-After`. `None`: no limit.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// The agent's calling guardrails: a call outside them (in the recipient's time zone) becomes
    /// `rescheduled` and waits there for the next start hour. `None`: no guardrails.
    #[serde(default)]
    pub guardrails: Option<CallingHours>,
}

/// At most `calls` requests in any `window_ms` (real milliseconds: not scaled by `speed`, so a test
/// can shrink Bolna's minute on its own).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RateLimit {
    pub calls: u32,
    pub window_ms: u64,
}

impl RateLimit {
    /// Bolna's: `calls` per minute.
    pub fn per_minute(calls: u32) -> Self {
        Self { calls, window_ms: 60_000 }
    }
}

/// Bolna's `call_start_hour`/`call_end_hour`: calls may start from the start hour until the end
/// hour, in the recipient's local time (see [`recipient_utc_offset_minutes`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct CallingHours {
    pub start_hour: u32,
    pub end_hour: u32,
}

impl CallingHours {
    /// How long until the window opens for `recipient` at `now` (zero: open now).
    pub fn wait(&self, recipient: &str, now: chrono::DateTime<chrono::Utc>) -> Duration {
        use chrono::Timelike;
        let offset = chrono::TimeDelta::minutes(recipient_utc_offset_minutes(recipient));
        let local = now + offset;
        let minute_of_day = i64::from(local.hour() * 60 + local.minute());
        let (start, end) = (i64::from(self.start_hour) * 60, i64::from(self.end_hour) * 60);
        if (start..end).contains(&minute_of_day) {
            return Duration::ZERO;
        }
        let minutes = (start - minute_of_day).rem_euclid(24 * 60);
        Duration::from_secs((minutes * 60) as u64)
            .saturating_sub(Duration::from_secs(u64::from(local.second())))
    }
}

/// Bolna finds the recipient's time zone from the number; the simulator knows a few country codes
/// (fixed offsets, no daylight saving): India, the US East coast for +1, the UK, Colombia,
/// Singapore; anything else is UTC.
pub fn recipient_utc_offset_minutes(recipient: &str) -> i64 {
    const ZONES: [(&str, i64); 5] = [("+91", 330), ("+1", -300), ("+44", 0), ("+57", -300), ("+65", 480)];
    ZONES.iter().find(|(code, _)| recipient.starts_with(code)).map_or(0, |(_, offset)| *offset)
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
            rate_limit: None,
            guardrails: None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn calling_hours_are_the_recipients_local_hours() {
        let hours = CallingHours { start_hour: 9, end_hour: 17 };
        // 04:00 UTC is 09:30 in India: open. 03:00 UTC is 08:30: opens in 30 minutes.
        assert_eq!(hours.wait("+919812345678", at("2026-12-03T04:00:00Z")), Duration::ZERO);
        assert_eq!(hours.wait("+919812345678", at("2026-12-03T03:00:00Z")), Duration::from_secs(1800));
        // 23:00 UTC is 18:00 in New York: closed until 09:00, 15 hours later.
        assert_eq!(hours.wait("+15550001111", at("2026-12-03T23:00:00Z")), Duration::from_secs(15 * 3600));
        // 17:00 local is already closed (the end hour is exclusive).
        assert_eq!(hours.wait("+447700900000", at("2026-12-03T17:00:00Z")), Duration::from_secs(16 * 3600));
    }
}
