//! A circuit breaker in front of Bolna, per instance. After a few consecutive failures that say
//! Bolna is down (connection refused, timeouts, 5xx) it opens: new calls queue instead of failing
//! one by one and hammering Bolna, and the dispatcher pauses. It closes again by itself after a
//! cool-down (doubling while failures go on, up to a ceiling); the next success resets it. A 429
//! opens it for Bolna's `Retry-After` (or a second), so dispatch slows down as asked.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bolna_client::BolnaError;

#[derive(Debug, Clone, Copy)]
pub struct GateConfig {
    /// Consecutive failures that open the gate.
    pub threshold: u32,
    pub cooldown: Duration,
    pub max_cooldown: Duration,
}

impl Default for GateConfig {
    fn default() -> Self {
        Self { threshold: 3, cooldown: Duration::from_secs(2), max_cooldown: Duration::from_secs(30) }
    }
}

#[derive(Debug)]
pub struct BolnaGate {
    config: GateConfig,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    next_cooldown: Option<Duration>,
}

impl BolnaGate {
    pub fn new(config: GateConfig) -> Self {
        Self { config, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether calls are being held back now.
    pub fn is_open(&self) -> bool {
        self.is_open_at(Instant::now())
    }

    fn is_open_at(&self, now: Instant) -> bool {
        self.state().open_until.is_some_and(|until| now < until)
    }

    /// Bolna answered (any 2xx or 4xx other than 429): it is up.
    pub fn record_success(&self) {
        let mut state = self.state();
        if state.consecutive_failures > 0 || state.open_until.is_some() {
            tracing::info!("Bolna answers again: circuit closed");
        }
        *state = State::default();
    }

    /// A failed request; opens the gate when the failures say Bolna is down or busy.
    pub fn record_failure(&self, error: &BolnaError) {
        self.record_failure_at(error, Instant::now());
    }

    fn record_failure_at(&self, error: &BolnaError, now: Instant) {
        let mut state = self.state();
        if let BolnaError::Api { status: 429, retry_after, .. } = error {
            let pause = retry_after.unwrap_or(Duration::from_secs(1)).min(self.config.max_cooldown);
            state.open_until = Some(now + pause);
            tracing::warn!(pause_ms = pause.as_millis() as u64, "Bolna rate-limits us: dispatch paused");
            return;
        }
        let down = match error {
            BolnaError::Connect(_) | BolnaError::Timeout | BolnaError::Transport(_) => true,
            BolnaError::Api { status, .. } => *status >= 500,
            BolnaError::Decode { .. } | BolnaError::InvalidRequest(_) => false,
        };
        if !down {
            return;
        }
        state.consecutive_failures += 1;
        if state.consecutive_failures >= self.config.threshold {
            let cooldown = state.next_cooldown.unwrap_or(self.config.cooldown);
            state.open_until = Some(now + cooldown);
            state.next_cooldown = Some((cooldown * 2).min(self.config.max_cooldown));
            tracing::warn!(failures = state.consecutive_failures, cooldown_ms = cooldown.as_millis() as u64, error = %error,
                "Bolna looks down: circuit open, new calls queue");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bolna_client::ApiErrorBody;

    fn server_error() -> BolnaError {
        BolnaError::Api { status: 502, body: ApiErrorBody::default(), retry_after: None }
    }

    // Time is passed in: no sleeps, so a busy machine cannot make these flaky.
    #[test]
    fn opens_after_the_threshold_and_closes_after_the_cooldown_or_a_success() {
        let gate = BolnaGate::new(GateConfig {
            threshold: 2,
            cooldown: Duration::from_millis(30),
            max_cooldown: Duration::from_secs(1),
        });
        let start = Instant::now();
        gate.record_failure_at(&server_error(), start);
        assert!(!gate.is_open_at(start));
        gate.record_failure_at(&server_error(), start);
        assert!(gate.is_open_at(start + Duration::from_millis(29)));
        let later = start + Duration::from_millis(40);
        assert!(!gate.is_open_at(later), "closes by itself");
        gate.record_failure_at(&server_error(), later);
        assert!(gate.is_open_at(later), "one more failure reopens it at once");
        assert!(gate.is_open_at(later + Duration::from_millis(59)), "for a doubled cool-down");
        assert!(!gate.is_open_at(later + Duration::from_millis(61)));
        gate.record_success();
        assert!(!gate.is_open_at(later));
    }

    #[test]
    fn client_errors_do_not_count_and_429_pauses_for_retry_after() {
        let gate = BolnaGate::new(GateConfig::default());
        let start = Instant::now();
        for _ in 0..10 {
            let refused = BolnaError::Api { status: 400, body: ApiErrorBody::default(), retry_after: None };
            gate.record_failure_at(&refused, start);
        }
        assert!(!gate.is_open_at(start));
        let limited = BolnaError::Api {
            status: 429,
            body: ApiErrorBody::default(),
            retry_after: Some(Duration::from_millis(20)),
        };
        gate.record_failure_at(&limited, start);
        assert!(gate.is_open_at(start + Duration::from_millis(19)));
        assert!(!gate.is_open_at(start + Duration::from_millis(20)));
    }
}
