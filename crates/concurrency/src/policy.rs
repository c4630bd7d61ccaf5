//! What every slot decision needs of the configuration, and nothing more.

use std::time::Duration;

/// The account's size and a slot's lease: `limits.account_max_concurrent` and
/// `reconciler.lease_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotPolicy {
    /// Account lines (Bolna's account concurrency, or less).
    pub account_lines: u32,
    /// How long a slot is held past its last event before the reconciler asks Bolna.
    pub lease: Duration,
}

impl SlotPolicy {
    pub(crate) fn lines(&self) -> i32 {
        i32::try_from(self.account_lines).unwrap_or(i32::MAX)
    }

    pub(crate) fn lease_seconds(&self) -> f64 {
        self.lease.as_secs_f64()
    }
}
