//! What every slot decision needs of the configuration, and nothing more.

use std::time::Duration;

/// The account's size, Bolna's rate limit, a slot's lease and the per-number cap:
/// `limits.account_max_concurrent` (or Bolna's own lower figure), `bolna.max_calls_per_minute`,
/// `reconciler.lease_seconds` and `limits.max_calls_per_number_per_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPolicy {
    /// Account lines (Bolna's account concurrency, or less).
    pub account_lines: u32,
    /// Calls sent to Bolna per `send_window`, by every instance together (the send tokens).
    pub send_tokens: u32,
    /// How long a send token stays taken: Bolna's rate window plus a margin for the time between
    /// taking it and the request reaching Bolna.
    pub send_window: Duration,
    /// How long a slot is held past its last event before the reconciler asks Bolna.
    pub lease: Duration,
    /// Calls of a user to one number in 24 hours, for users without their own figure; 0 = no cap.
    pub calls_per_number_per_day: u32,
}

impl SlotPolicy {
    pub(crate) fn lines(&self) -> i32 {
        i32::try_from(self.account_lines).unwrap_or(i32::MAX)
    }

    pub(crate) fn tokens(&self) -> i32 {
        i32::try_from(self.send_tokens).unwrap_or(i32::MAX)
    }

    pub(crate) fn send_window_seconds(&self) -> f64 {
        self.send_window.as_secs_f64()
    }

    pub(crate) fn number_cap(&self) -> i32 {
        i32::try_from(self.calls_per_number_per_day).unwrap_or(i32::MAX)
    }

    pub(crate) fn lease_seconds(&self) -> f64 {
        self.lease.as_secs_f64()
    }
}
