//! Outbound webhooks' metrics, registered in the service's registry.

use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct OutboundMetrics {
    /// Attempts by outcome: `succeeded`, `retrying` (failed, another attempt is due), `failed`
    /// (the schedule is used up) and `gone` (410: the endpoint is disabled).
    pub attempts: IntCounterVec,
    /// Seconds per attempt, request sent to answer read (or failure).
    pub attempt_seconds: Histogram,
    /// Deliveries waiting or in flight.
    pub backlog: IntGauge,
    /// Age of the oldest delivery waiting, per endpoint with a backlog.
    pub oldest_pending_seconds: prometheus::GaugeVec,
    /// Endpoints disabled by the sender, by reason (`gone`, `failing`).
    pub endpoints_disabled: IntCounterVec,
    /// Messages written by the fan-out (one per event and user with a subscribed endpoint).
    pub messages: prometheus::IntCounter,
}

impl OutboundMetrics {
    /// Built from constant definitions at start-up; registered in `registry`.
    #[allow(clippy::expect_used)]
    pub fn register(registry: &Registry) -> Self {
        const DEFINITION: &str = "metric definitions are constant and valid";
        let metrics = Self {
            attempts: IntCounterVec::new(
                Opts::new("outbound_webhook_attempts_total", "Outbound webhook attempts by outcome"),
                &["outcome"],
            )
            .expect(DEFINITION),
            attempt_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "outbound_webhook_attempt_seconds",
                    "Seconds per outbound webhook attempt",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]),
            )
            .expect(DEFINITION),
            backlog: IntGauge::new(
                "outbound_webhook_backlog",
                "Outbound webhook deliveries waiting or in flight",
            )
            .expect(DEFINITION),
            oldest_pending_seconds: prometheus::GaugeVec::new(
                Opts::new(
                    "outbound_webhook_oldest_pending_seconds",
                    "Age of the oldest outbound webhook delivery waiting, per endpoint",
                ),
                &["endpoint_id"],
            )
            .expect(DEFINITION),
            endpoints_disabled: IntCounterVec::new(
                Opts::new(
                    "outbound_webhook_endpoints_disabled_total",
                    "Endpoints disabled by the sender, by reason",
                ),
                &["reason"],
            )
            .expect(DEFINITION),
            messages: prometheus::IntCounter::new(
                "outbound_webhook_messages_total",
                "Outbound webhook messages written by the fan-out",
            )
            .expect(DEFINITION),
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.attempts.clone()),
            Box::new(metrics.attempt_seconds.clone()),
            Box::new(metrics.backlog.clone()),
            Box::new(metrics.oldest_pending_seconds.clone()),
            Box::new(metrics.endpoints_disabled.clone()),
            Box::new(metrics.messages.clone()),
        ];
        for collector in collectors {
            if let Err(error) = registry.register(collector) {
                tracing::error!(error = %error, "registering a metric failed");
            }
        }
        metrics
    }
}
