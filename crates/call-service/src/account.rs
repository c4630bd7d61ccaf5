//! Bolna's own account concurrency, read from `GET /user/me` at start-up and every few minutes.
//! Calls above Bolna's `concurrency.max` do not fail there: they wait in Bolna's queue, holding a
//! user's slot here while nobody is dialled. So when `limits.account_max_concurrent` is above
//! Bolna's figure, the lower one is used (the account line pool shrinks to it), the mismatch is
//! logged, and diagnostics and metrics show both.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::error::CallError;
use crate::service::CallService;

/// How often Bolna's account is read again.
pub const ACCOUNT_CHECK_INTERVAL: Duration = Duration::from_secs(300);

/// What `GET /user/me` said last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BolnaAccount {
    /// Bolna's `concurrency.max` (`None`: not reported).
    pub concurrency_max: Option<u32>,
    pub checked_at: DateTime<Utc>,
}

/// The lines to use: the configured figure, or Bolna's when lower. A reported 0 is taken as no
/// figure at all (a fault of the report, not an account that may never call).
pub fn lines_to_use(configured: u32, bolna_max: Option<u32>) -> u32 {
    match bolna_max {
        Some(max) if max > 0 => configured.min(max),
        _ => configured,
    }
}

impl CallService {
    /// Reads Bolna's account concurrency and applies it to the account lines.
    pub async fn check_bolna_account(&self) -> Result<BolnaAccount, CallError> {
        let me = self
            .bolna_request("user_me", self.bolna().user_me())
            .await
            .map_err(|error| CallError::BolnaUnavailable(error.to_string()))?;
        let account = BolnaAccount { concurrency_max: me.concurrency.map(|c| c.max), checked_at: Utc::now() };
        let configured = self.config().account_lines;
        let lines = lines_to_use(configured, account.concurrency_max);
        if lines < configured {
            tracing::warn!(
                configured,
                bolna_max = lines,
                "limits.account_max_concurrent is above Bolna's account concurrency: using Bolna's figure"
            );
        }
        *self.inner.bolna_account.lock().unwrap_or_else(|p| p.into_inner()) = Some(account);
        self.metrics().bolna_account_concurrency.set(i64::from(account.concurrency_max.unwrap_or(0)));
        if lines != self.inner.account_lines.get() {
            self.inner.account_lines.set(lines);
            self.prepare().await?;
            tracing::info!(lines, "account lines resized");
        }
        Ok(account)
    }

    /// What `GET /user/me` said last, if it has answered.
    pub fn bolna_account(&self) -> Option<BolnaAccount> {
        *self.inner.bolna_account.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads Bolna's account now and then every [`ACCOUNT_CHECK_INTERVAL`] until `shutdown`.
    pub async fn run_account_checks(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.check_bolna_account().await {
                tracing::warn!(error = %error, "reading Bolna's account concurrency failed; the configured lines stay");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(ACCOUNT_CHECK_INTERVAL) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::lines_to_use;

    #[test]
    fn the_lower_figure_wins_and_a_missing_or_zero_report_changes_nothing() {
        assert_eq!(lines_to_use(10, Some(2)), 2);
        assert_eq!(lines_to_use(10, Some(50)), 10);
        assert_eq!(lines_to_use(10, None), 10);
        assert_eq!(lines_to_use(10, Some(0)), 10);
    }
}
