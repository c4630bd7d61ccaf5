//! Prometheus metrics the call lifecycle records as it goes (Bolna requests, webhooks, the
//! reconciler, the circuit breaker), plus gauges the web layer fills from the database at scrape
//! time. One registry per service: no global state.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

const DEFINITION: &str = "metric definitions are constant and valid";

#[derive(Debug, Clone)]
pub struct Metrics {
    pub registry: Registry,
    /// Seconds per Bolna request, by operation and outcome (`ok`, or an error kind).
    pub bolna_requests: HistogramVec,
    /// Webhook events by Bolna status and what processing made of them.
    pub webhook_events: IntCounterVec,
    /// Seconds from Bolna's `updated_at` on an event to its application here.
    pub webhook_lag: Histogram,
    /// Reconciler actions by kind.
    pub reconciler_actions: IntCounterVec,
    /// Admissions by call type and result (`started`, `queued`, `replayed`).
    pub admissions: IntCounterVec,
    /// 1 while the Bolna circuit breaker holds calls back.
    pub bolna_circuit_open: IntGauge,
    /// Requests per batched statement, by kind (`admit`, `record`, `webhook`): see `batch`.
    pub batch_size: HistogramVec,
    /// Seconds per batched statement (with its commit), by kind.
    pub batch_seconds: HistogramVec,
    /// Seconds per campaign scheduler pass (reading the due campaigns and visiting each).
    pub scheduler_pass_seconds: Histogram,
    /// Campaigns the scheduler visited (it visits only campaigns due now).
    pub campaign_visits: prometheus::IntCounter,
    /// Campaign zones moved to their next calling period (their period closed).
    pub zones_rearmed: prometheus::IntCounter,
    pub contacts_deferred_by_number_cap: prometheus::IntCounter,
    pub campaigns_paused_by_budget: prometheus::IntCounter,
    // Filled at scrape time from the database.
    pub slots_in_use: IntGaugeVec,
    pub slot_limits: IntGaugeVec,
    pub account_lines_in_use: IntGauge,
    pub account_lines: IntGauge,
    pub account_lines_configured: IntGauge,
    pub bolna_account_concurrency: IntGauge,
    pub rate_remaining: IntGauge,
    pub rate_limit: IntGauge,
    pub rate_limit_waits: prometheus::IntCounter,
    pub scheduled_calls: IntGauge,
    pub queue_depth: IntGaugeVec,
    pub oldest_queued_seconds: prometheus::GaugeVec,
    pub unapplied_webhook_events: IntGauge,
    /// Processed webhook bodies deleted by retention (`webhook.retention_days`).
    pub webhook_bodies_deleted: prometheus::IntCounter,
    /// API requests refused with 429 by `http.rate_limit`.
    pub requests_rate_limited: prometheus::IntCounter,
    /// Open `GET /v1/events` streams on this instance.
    pub event_streams: IntGauge,
    /// Events written to streams.
    pub events_sent: prometheus::IntCounter,
    /// `reset` events sent, by reason (`client_too_slow`, `events_expired`).
    pub event_resets: IntCounterVec,
}

impl Metrics {
    /// Built once at start-up from constant definitions, which cannot fail.
    #[allow(clippy::expect_used)]
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("switchboard".into()), None).unwrap_or_default();
        let latency_buckets = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
        let metrics = Self {
            bolna_requests: HistogramVec::new(
                HistogramOpts::new("bolna_request_seconds", "Bolna API requests by operation and outcome")
                    .buckets(latency_buckets.clone()),
                &["operation", "outcome"],
            )
            .expect(DEFINITION),
            webhook_events: IntCounterVec::new(
                Opts::new("webhook_events_total", "Webhook events by status and outcome"),
                &["status", "outcome"],
            )
            .expect(DEFINITION),
            webhook_lag: Histogram::with_opts(
                HistogramOpts::new("webhook_lag_seconds", "Bolna's updated_at to applied here")
                    .buckets(latency_buckets),
            )
            .expect(DEFINITION),
            reconciler_actions: IntCounterVec::new(
                Opts::new("reconciler_actions_total", "Reconciler actions by kind"),
                &["kind"],
            )
            .expect(DEFINITION),
            admissions: IntCounterVec::new(
                Opts::new("admissions_total", "Call admissions by call type and result"),
                &["call_type", "result"],
            )
            .expect(DEFINITION),
            batch_size: HistogramVec::new(
                HistogramOpts::new("db_batch_size", "Requests per batched database statement, by kind")
                    .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0]),
                &["kind"],
            )
            .expect(DEFINITION),
            batch_seconds: HistogramVec::new(
                HistogramOpts::new("db_batch_seconds", "Seconds per batched database statement, by kind")
                    .buckets(vec![0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0]),
                &["kind"],
            )
            .expect(DEFINITION),
            scheduler_pass_seconds: Histogram::with_opts(
                HistogramOpts::new("campaign_scheduler_pass_seconds", "Seconds per campaign scheduler pass")
                    .buckets(vec![
                        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                    ]),
            )
            .expect(DEFINITION),
            campaign_visits: prometheus::IntCounter::new(
                "campaign_visits_total",
                "Campaigns the scheduler visited (only those due now)",
            )
            .expect(DEFINITION),
            zones_rearmed: prometheus::IntCounter::new(
                "campaign_zones_rearmed_total",
                "Campaign zones moved to their next calling period",
            )
            .expect(DEFINITION),
            contacts_deferred_by_number_cap: prometheus::IntCounter::new(
                "campaign_contacts_deferred_by_number_cap_total",
                "Campaign contacts put off because their number was at its user's per-number cap",
            )
            .expect(DEFINITION),
            campaigns_paused_by_budget: prometheus::IntCounter::new(
                "campaigns_paused_by_budget_total",
                "Campaigns paused because their budget or their user's monthly budget was spent",
            )
            .expect(DEFINITION),
            bolna_circuit_open: IntGauge::new("bolna_circuit_open", "1 while calls are held back from Bolna")
                .expect(DEFINITION),
            slots_in_use: IntGaugeVec::new(
                Opts::new("slots_in_use", "Held slots by call type"),
                &["call_type"],
            )
            .expect(DEFINITION),
            slot_limits: IntGaugeVec::new(
                Opts::new("slot_limits", "Sum of users' limits by call type"),
                &["call_type"],
            )
            .expect(DEFINITION),
            account_lines_in_use: IntGauge::new(
                "account_lines_in_use",
                "Account lines held (Bolna concurrency)",
            )
            .expect(DEFINITION),
            account_lines: IntGauge::new(
                "account_lines",
                "Account lines in use now: limits.account_max_concurrent, or Bolna's concurrency.max when lower",
            )
            .expect(DEFINITION),
            account_lines_configured: IntGauge::new(
                "account_lines_configured",
                "Account lines configured (limits.account_max_concurrent)",
            )
            .expect(DEFINITION),
            bolna_account_concurrency: IntGauge::new(
                "bolna_account_concurrency_max",
                "Bolna's account concurrency from GET /user/me (0: not read yet)",
            )
            .expect(DEFINITION),
            rate_remaining: IntGauge::new(
                "bolna_rate_remaining",
                "Send tokens free now: POST /call Switchboard may still send in Bolna's rate window",
            )
            .expect(DEFINITION),
            rate_limit: IntGauge::new(
                "bolna_rate_limit_per_minute",
                "Send tokens per rate window (bolna.max_calls_per_minute)",
            )
            .expect(DEFINITION),
            rate_limit_waits: prometheus::IntCounter::new(
                "bolna_rate_limit_waits_total",
                "Times a queued call could not start because Bolna's rate limit was used up",
            )
            .expect(DEFINITION),
            scheduled_calls: IntGauge::new("scheduled_calls", "Calls waiting for their scheduled time")
                .expect(DEFINITION),
            queue_depth: IntGaugeVec::new(
                Opts::new("queue_depth", "Calls waiting for a slot by call type"),
                &["call_type"],
            )
            .expect(DEFINITION),
            oldest_queued_seconds: prometheus::GaugeVec::new(
                Opts::new("oldest_queued_seconds", "Age of the oldest call waiting for a slot"),
                &["call_type"],
            )
            .expect(DEFINITION),
            unapplied_webhook_events: IntGauge::new(
                "unapplied_webhook_events",
                "Stored events not (yet) applied",
            )
            .expect(DEFINITION),
            webhook_bodies_deleted: prometheus::IntCounter::new(
                "webhook_bodies_deleted_total",
                "Processed webhook bodies deleted past webhook.retention_days",
            )
            .expect(DEFINITION),
            requests_rate_limited: prometheus::IntCounter::new(
                "requests_rate_limited_total",
                "API requests refused with 429 by http.rate_limit",
            )
            .expect(DEFINITION),
            event_streams: IntGauge::new("event_streams", "Open event streams on this instance")
                .expect(DEFINITION),
            events_sent: prometheus::IntCounter::new("events_sent_total", "Events written to streams")
                .expect(DEFINITION),
            event_resets: IntCounterVec::new(
                Opts::new("event_resets_total", "Reset events sent to streams, by reason"),
                &["reason"],
            )
            .expect(DEFINITION),
            registry,
        };
        metrics.register_all();
        metrics
    }

    fn register_all(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.bolna_requests.clone()),
            Box::new(self.webhook_events.clone()),
            Box::new(self.webhook_lag.clone()),
            Box::new(self.reconciler_actions.clone()),
            Box::new(self.admissions.clone()),
            Box::new(self.batch_size.clone()),
            Box::new(self.batch_seconds.clone()),
            Box::new(self.scheduler_pass_seconds.clone()),
            Box::new(self.campaign_visits.clone()),
            Box::new(self.zones_rearmed.clone()),
            Box::new(self.contacts_deferred_by_number_cap.clone()),
            Box::new(self.campaigns_paused_by_budget.clone()),
            Box::new(self.bolna_circuit_open.clone()),
            Box::new(self.slots_in_use.clone()),
            Box::new(self.slot_limits.clone()),
            Box::new(self.account_lines_in_use.clone()),
            Box::new(self.account_lines.clone()),
            Box::new(self.account_lines_configured.clone()),
            Box::new(self.bolna_account_concurrency.clone()),
            Box::new(self.rate_remaining.clone()),
            Box::new(self.rate_limit.clone()),
            Box::new(self.rate_limit_waits.clone()),
            Box::new(self.scheduled_calls.clone()),
            Box::new(self.queue_depth.clone()),
            Box::new(self.oldest_queued_seconds.clone()),
            Box::new(self.unapplied_webhook_events.clone()),
            Box::new(self.webhook_bodies_deleted.clone()),
            Box::new(self.requests_rate_limited.clone()),
            Box::new(self.event_streams.clone()),
            Box::new(self.events_sent.clone()),
            Box::new(self.event_resets.clone()),
        ];
        for collector in collectors {
            if let Err(error) = self.registry.register(collector) {
                tracing::error!(error = %error, "registering a metric failed");
            }
        }
    }

    /// What a batcher of `kind` reports after each batch: its size and how long it ran.
    pub(crate) fn batch_observer(
        &self,
        kind: &str,
    ) -> impl Fn(usize, std::time::Duration) + Send + Sync + 'static {
        let (sizes, seconds) =
            (self.batch_size.with_label_values(&[kind]), self.batch_seconds.with_label_values(&[kind]));
        move |size, took| {
            sizes.observe(size as f64);
            seconds.observe(took.as_secs_f64());
        }
    }

    /// Counts one reconciler action.
    pub fn reconciled(&self, kind: &str) {
        self.reconciler_actions.with_label_values(&[kind]).inc();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(error) = prometheus::TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::error!(error = %error, "encoding metrics failed");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
