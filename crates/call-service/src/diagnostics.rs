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
    pub account_lines: i64,
    pub bolna_circuit_open: bool,
}

impl CallService {
    pub async fn diagnostics(&self, stale_after_seconds: i64) -> Result<Diagnostics, CallError> {
        let row = sqlx::query!(
            r#"SELECT
                 (SELECT count(*) FROM active_calls WHERE started_at < now() - interval '1 hour') AS "held_long!",
                 (SELECT count(*) FROM active_calls
                   WHERE bolna_execution_id IS NULL AND started_at < now() - interval '10 seconds') AS "missing_id!",
                 (SELECT count(*) FROM calls
                   WHERE status NOT IN ('completed','no-answer','busy','failed','canceled','stopped','error','balance-low')
                     AND updated_at < now() - make_interval(secs => $1::float8)) AS "stale!",
                 (SELECT count(*) FROM webhook_events WHERE outcome IN ('pending','unmatched')) AS "unapplied!",
                 (SELECT EXTRACT(EPOCH FROM now() - min(received_at))::float8 FROM webhook_events
                   WHERE outcome IN ('pending','unmatched')) AS "oldest_unapplied",
                 (SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM processed_at - received_at))::float8
                    FROM webhook_events WHERE processed_at IS NOT NULL AND received_at > now() - interval '1 hour') AS "lag_p99",
                 (SELECT count(*) FROM calls WHERE reconcile_reason IS NOT NULL) AS "reconciling!",
                 (SELECT count(*) FROM calls WHERE status = 'queued' AND bolna_execution_id IS NULL) AS "queued!",
                 (SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 FROM calls
                   WHERE status = 'queued' AND bolna_execution_id IS NULL) AS "oldest_queued",
                 (SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL) AS "lines_in_use!""#,
            stale_after_seconds as f64
        )
        .fetch_one(self.pool())
        .await?;
        Ok(Diagnostics {
            slots_held_over_an_hour: row.held_long,
            slots_missing_execution_id: row.missing_id,
            calls_non_terminal_too_long: row.stale,
            stale_after_seconds,
            unapplied_webhook_events: row.unapplied,
            oldest_unapplied_webhook_age_seconds: row.oldest_unapplied,
            webhook_apply_lag_p99_seconds: row.lag_p99,
            calls_waiting_for_reconciliation: row.reconciling,
            queued_calls: row.queued,
            oldest_queued_age_seconds: row.oldest_queued,
            account_lines_in_use: row.lines_in_use,
            account_lines: i64::from(self.config().account_lines),
            bolna_circuit_open: self.bolna_is_held_back(),
        })
    }

    /// Sets the database-backed gauges, then returns the text exposition of every metric.
    pub async fn render_metrics(&self) -> Result<String, CallError> {
        let metrics = self.metrics();
        let slots = sqlx::query!(
            r#"SELECT t.call_type AS "call_type!",
                      (SELECT count(*) FROM active_calls a WHERE a.call_type = t.call_type) AS "in_use!",
                      (SELECT count(*) FROM calls c WHERE c.call_type = t.call_type AND c.status = 'queued'
                          AND c.bolna_execution_id IS NULL) AS "queued!",
                      (SELECT EXTRACT(EPOCH FROM now() - min(c.created_at))::float8 FROM calls c
                        WHERE c.call_type = t.call_type AND c.status = 'queued' AND c.bolna_execution_id IS NULL) AS "oldest",
                      (SELECT COALESCE(sum(CASE t.call_type WHEN 'direct' THEN u.direct_call_limit ELSE u.campaign_call_limit END), 0)
                         FROM users u)::bigint AS "limits!"
               FROM (VALUES ('direct'), ('campaign')) AS t(call_type)"#
        )
        .fetch_all(self.pool())
        .await?;
        for row in slots {
            let label = [row.call_type.as_str()];
            metrics.slots_in_use.with_label_values(&label).set(row.in_use);
            metrics.slot_limits.with_label_values(&label).set(row.limits);
            metrics.queue_depth.with_label_values(&label).set(row.queued);
            metrics.oldest_queued_seconds.with_label_values(&label).set(row.oldest.unwrap_or(0.0));
        }
        let (lines_in_use, unapplied) = sqlx::query!(
            r#"SELECT (SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL) AS "lines!",
                      (SELECT count(*) FROM webhook_events WHERE outcome IN ('pending','unmatched')) AS "unapplied!""#
        )
        .fetch_one(self.pool())
        .await
        .map(|r| (r.lines, r.unapplied))?;
        metrics.account_lines_in_use.set(lines_in_use);
        metrics.account_lines.set(i64::from(self.config().account_lines));
        metrics.unapplied_webhook_events.set(unapplied);
        self.bolna_is_held_back();
        Ok(metrics.encode())
    }
}
