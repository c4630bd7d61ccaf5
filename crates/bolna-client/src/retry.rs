//! Bounded retries with exponential backoff and full jitter, honouring `Retry-After`.

use std::time::Duration;

use rand::Rng;

use crate::error::BolnaError;

/// How often and how long to retry.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 4, base_delay: Duration::from_millis(200), max_delay: Duration::from_secs(5) }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 1): `Retry-After` when Bolna
    /// sent one (capped), else a random delay up to `base * 2^(attempt-1)` (capped).
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(retry_after) = retry_after {
            return retry_after.min(self.max_delay);
        }
        let exponential = self.base_delay.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        let ceiling = exponential.min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(millis / 2..=millis.max(1)))
    }
}

/// The call request: retried only when Bolna certainly did not act on it (429, or no connection).
pub(crate) fn start_call_is_retryable(error: &BolnaError) -> bool {
    matches!(error, BolnaError::Connect(_)) || error.is_rate_limited()
}

/// Reads: 429, 5xx and transport failures are retried.
pub(crate) fn read_is_retryable(error: &BolnaError) -> bool {
    match error {
        BolnaError::Connect(_) | BolnaError::Timeout | BolnaError::Transport(_) => true,
        BolnaError::Api { status, .. } => *status == 429 || *status >= 500,
        BolnaError::Decode { .. } | BolnaError::InvalidRequest(_) => false,
    }
}

/// The `Retry-After` header as a delay (seconds form; an HTTP date is ignored).
pub(crate) fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let seconds: f64 = value?.to_str().ok()?.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_stay_bounded_and_honour_retry_after() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for attempt in 1..10 {
            let delay = policy.delay(attempt, None);
            assert!(delay <= Duration::from_secs(1), "attempt {attempt}: {delay:?}");
        }
        assert!(policy.delay(4, None) >= Duration::from_millis(400));
        assert_eq!(policy.delay(1, Some(Duration::from_millis(300))), Duration::from_millis(300));
        assert_eq!(policy.delay(1, Some(Duration::from_secs(60))), Duration::from_secs(1));
    }
}
