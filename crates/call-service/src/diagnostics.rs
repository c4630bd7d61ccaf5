//! The numbers operators used to get by running SQL by hand, and the gauges `/metrics` reports.

use serde::Serialize;

use crate::error::CallError;
use crate::service::CallService;

/// Health numbers of the slot ledger and the call pipeline. The first two should be 0.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Diagnostics {
    /// Slots held for more than an hour.
    pub slots_held_over_an_hour: i64,
    /// Slots without an execution ID for more than 10 seconds (should be 0).
    pub slots_missing_execution_id: i64,
    /// Calls not terminal whose last change is older than `stale_after_seconds`.
    pub calls_non_terminal_too_long: i64,
    pub stale_after_seconds: i64,
    /// Webhook events stored but not applied (pending or unmatched).
    pub unapplied_webhook_events: i64,
    pub oldest_unapplied_webhook_age_seconds: Option<f64>,
    /// Receipt to application, over the last hour's applied events.
    pub webhook_apply_lag_p99_seconds: Option<f64>,
    pub calls_waiting_for_reconciliation: i64,
    pub queued_calls: i64,
    pub oldest_queued_age_seconds: Option<f64>,
    pub account_lines_in_use: i64,
    /// The lines used now: `account_lines_configured`, or Bolna's figure when lower.
    pub account_lines: i64,
    /// `limits.account_max_concurrent`.
    pub account_lines_configured: i64,
    /// Bolna's `concurrency.max` from `GET /user/me` (`None` until it has answered).
    pub bolna_account_concurrency_max: Option<i64>,
    /// When `GET /user/me` last answered.
    pub bolna_account_checked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// `bolna.max_calls_per_minute`, and the send tokens free now.
    pub bolna_max_calls_per_minute: i64,
    pub bolna_rate_remaining: i64,
    pub scheduled_calls: i64,
    pub bolna_circuit_open: bool,
    /// Outbound webhook deliveries waiting or in flight, the oldest one's age, and the endpoints
    /// the sender disabled (410 or failing for days).
    pub outbound_webhook_backlog: i64,
    pub oldest_outbound_webhook_age_seconds: Option<f64>,
    pub webhook_endpoints_disabled_by_failures: i64,
}

impl CallService {
    pub async fn diagnostics(&self, stale_after_seconds: i64) -> Result<Diagnostics, CallError> {
        let mut conn = self.pool().acquire().await?;
        let ledger = concurrency::ledger_health(&mut conn).await?;
        let row = sqlx::query!(
            r#"SELECT
                 (SELECT count(*) FROM calls
                   WHERE NOT call_status_is_terminal(status)
                     AND updated_at < now() - make_interval(secs => $1::float8)) AS "stale!",
                 (SELECT count(*) FROM webhook_events WHERE outcome IN ('pending','unmatched')) AS "unapplied!",
                 (SELECT EXTRACT(EPOCH FROM now() - min(received_at))::float8 FROM webhook_events
                   WHERE outcome IN ('pending','unmatched')) AS "oldest_unapplied",
                 (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM processed_at - received_at))::float8
                    FROM webhook_events WHERE processed_at IS NOT NULL AND received_at > now() - interval '1 hour') AS "lag_p99",
                 (SELECT count(*) FROM calls WHERE reconcile_reason IS NOT NULL) AS "reconciling!",
                 (SELECT count(*) FROM slot_queue) AS "queued!",
                 (SELECT EXTRACT(EPOCH FROM now() - min(due_at))::float8 FROM slot_queue) AS "oldest_queued",
                 (SELECT count(*) FROM calls WHERE status = 'scheduled') AS "scheduled!",
                 (SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'sending')) AS "outbound_backlog!",
                 (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM webhook_deliveries
                   WHERE status IN ('pending', 'sending')) AS "oldest_outbound",
                 (SELECT count(*) FROM webhook_endpoints WHERE disabled_reason IN ('gone', 'failing')) AS "endpoints_disabled!""#,
            stale_after_seconds as f64
        )
        .fetch_one(&mut *conn)
        .await?;
        let policy = self.slot_policy();
        let tokens = concurrency::send_tokens(&mut conn, &policy).await?;
        let account = self.bolna_account();
        Ok(Diagnostics {
            slots_held_over_an_hour: ledger.held_over_an_hour,
            slots_missing_execution_id: ledger.missing_execution_id,
            calls_non_terminal_too_long: row.stale,
            stale_after_seconds,
            unapplied_webhook_events: row.unapplied,
            oldest_unapplied_webhook_age_seconds: row.oldest_unapplied,
            webhook_apply_lag_p99_seconds: row.lag_p99,
            calls_waiting_for_reconciliation: row.reconciling,
            queued_calls: row.queued,
            oldest_queued_age_seconds: row.oldest_queued,
            account_lines_in_use: ledger.lines_in_use,
            account_lines: i64::from(policy.account_lines),
            account_lines_configured: i64::from(self.config().account_lines),
            bolna_account_concurrency_max: account.and_then(|a| a.concurrency_max).map(i64::from),
            bolna_account_checked_at: account.map(|a| a.checked_at),
            bolna_max_calls_per_minute: i64::from(policy.send_tokens),
            bolna_rate_remaining: tokens.free,
            scheduled_calls: row.scheduled,
            bolna_circuit_open: self.bolna_is_held_back(),
            outbound_webhook_backlog: row.outbound_backlog,
            oldest_outbound_webhook_age_seconds: row.oldest_outbound,
            webhook_endpoints_disabled_by_failures: row.endpoints_disabled,
        })
    }

    /// Sets the database-backed gauges, then returns the text exposition of every metric.
    pub async fn render_metrics(&self) -> Result<String, CallError> {
        let metrics = self.metrics();
        let mut conn = self.pool().acquire().await?;
        let in_use = concurrency::usage_of_everyone(&mut conn).await?;
        let ledger = concurrency::ledger_health(&mut conn).await?;
        let queues = sqlx::query!(
            r#"SELECT t.call_type AS "call_type!: crate::CallType",
                      (SELECT count(*) FROM slot_queue q WHERE q.call_type = t.call_type) AS "queued!",
                      (SELECT EXTRACT(EPOCH FROM now() - min(q.due_at))::float8 FROM slot_queue q
                        WHERE q.call_type = t.call_type) AS "oldest",
                      (SELECT COALESCE(sum(CASE t.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END), 0)
                         FROM users u)::bigint AS "limits!"
               FROM (VALUES ('direct'), ('campaign')) AS t(call_type)"#
        )
        .fetch_all(&mut *conn)
        .await?;
        for row in queues {
            let label = [row.call_type.as_str()];
            metrics.slots_in_use.with_label_values(&label).set(in_use.of(row.call_type));
            metrics.slot_limits.with_label_values(&label).set(row.limits);
            metrics.queue_depth.with_label_values(&label).set(row.queued);
            metrics.oldest_queued_seconds.with_label_values(&label).set(row.oldest.unwrap_or(0.0));
        }
        let counts = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM webhook_events WHERE outcome IN ('pending','unmatched')) AS "unapplied!",
                      (SELECT count(*) FROM calls WHERE status = 'scheduled') AS "scheduled!""#
        )
        .fetch_one(&mut *conn)
        .await?;
        metrics.account_lines_in_use.set(ledger.lines_in_use);
        let policy = self.slot_policy();
        let tokens = concurrency::send_tokens(&mut conn, &policy).await?;
        metrics.account_lines.set(i64::from(policy.account_lines));
        metrics.account_lines_configured.set(i64::from(self.config().account_lines));
        metrics.rate_limit.set(i64::from(policy.send_tokens));
        metrics.rate_remaining.set(tokens.free);
        metrics.scheduled_calls.set(counts.scheduled);
        metrics.unapplied_webhook_events.set(counts.unapplied);
        self.bolna_is_held_back();
        Ok(metrics.encode())
    }
}
