//! `CallService`: the handle the web layer and the background tasks share (cheap to clone).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bolna_client::{BolnaClient, BolnaError};
use concurrency::SlotPolicy;
use sqlx::PgPool;
use tokio_util::task::TaskTracker;

use crate::batch::{BatchConfig, Batcher};
use crate::bolna_gate::{BolnaGate, GateConfig};
use crate::calls::admission::{admit_batch, AdmissionRequest};
use crate::calls::record::{record_batch, RecordRequest};
use crate::calls::{Admitted, Call};
use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::webhooks::batched::{apply_live_batch, LiveOutcome, LiveWebhook};

/// The knobs of the call lifecycle.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `limits.account_max_concurrent`: the account's lines (lowered to Bolna's own figure when
    /// `GET /user/me` reports less; see `account`).
    pub account_lines: u32,
    /// `bolna.max_calls_per_minute`: `POST /call` per `rate_window`, all instances together.
    pub max_calls_per_minute: u32,
    /// Bolna's rate window: a minute. Tests shorten it to run a minute of traffic in seconds.
    pub rate_window: Duration,
    /// `reconciler.lease_seconds`: a slot's lease past its last event.
    pub lease: Duration,
    /// `limits.max_calls_per_number_per_day`: calls of a user to one number in 24 hours, for users
    /// without their own figure; 0 = no cap.
    pub calls_per_number_per_day: u32,
    /// How often each dispatcher looks at the queue without being notified.
    pub dispatch_tick: Duration,
    /// Queue heads looked at per dispatcher pass.
    pub dispatch_batch: i64,
    pub reconciler: ReconcilerConfig,
    pub gate: GateConfig,
    /// Time for the campaign scheduler (windows, pacing, retry delays); injectable for tests.
    pub clock: Arc<dyn Clock>,
    /// `database.batch_workers` and `database.batch_max`: group commit of admissions and of
    /// Bolna's answers (see `batch`).
    pub batch: BatchConfig,
}

/// When the reconciler looks, and how long it waits before deciding.
#[derive(Debug, Clone, Copy)]
pub struct ReconcilerConfig {
    /// `reconciler.interval_seconds`.
    pub interval: Duration,
    /// `reconciler.initiating_timeout_seconds`: an `initiating` call older than this is looked up.
    pub initiating_timeout: Duration,
    /// `reconciler.not_placed_grace_seconds`: how long Bolna may not know a call before it is
    /// `failed` ("not placed").
    pub not_placed_grace: Duration,
}

impl Default for ReconcilerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(15),
            initiating_timeout: Duration::from_secs(60),
            not_placed_grace: Duration::from_secs(120),
        }
    }
}

/// A send token is held this much longer than Bolna's window: the request reaches Bolna a little
/// after its token was taken, and a later one could otherwise land inside the same window.
pub const SEND_MARGIN: Duration = Duration::from_secs(1);

impl ServiceConfig {
    /// What the slot ledger needs of the configuration, with `account_lines` as the lines.
    pub fn slot_policy(&self, account_lines: u32) -> SlotPolicy {
        SlotPolicy {
            account_lines,
            send_tokens: self.max_calls_per_minute.max(1),
            send_window: self.rate_window + SEND_MARGIN,
            lease: self.lease,
            calls_per_number_per_day: self.calls_per_number_per_day,
        }
    }
}

/// The account's lines in use now: the configured figure, or Bolna's own when that is lower. Shared
/// by the service and its admission batches.
#[derive(Debug)]
pub(crate) struct AccountLines(AtomicU32);

impl AccountLines {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, lines: u32) {
        self.0.store(lines, Ordering::Relaxed);
    }
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            account_lines: 10,
            max_calls_per_minute: 500,
            rate_window: Duration::from_secs(60),
            lease: Duration::from_secs(900),
            calls_per_number_per_day: 0,
            dispatch_tick: Duration::from_millis(500),
            dispatch_batch: 100,
            reconciler: ReconcilerConfig::default(),
            gate: GateConfig::default(),
            clock: Arc::new(SystemClock),
            batch: BatchConfig::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CallService {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub pool: PgPool,
    pub bolna: BolnaClient,
    pub config: ServiceConfig,
    /// Requests to Bolna started in the background (so shutdown can wait for them).
    pub tasks: TaskTracker,
    /// The runtime they run on: the one the service was built on, not the HTTP worker's that
    /// happened to start them (actix's worker runtimes end, cancelling their tasks, at shutdown).
    pub runtime: tokio::runtime::Handle,
    pub metrics: Metrics,
    pub gate: BolnaGate,
    pub account_lines: Arc<AccountLines>,
    /// What `GET /user/me` last said of Bolna's account concurrency.
    pub bolna_account: std::sync::Mutex<Option<crate::account::BolnaAccount>>,
    /// Admissions, gathered into batches (one statement each).
    pub admissions: Batcher<AdmissionRequest, Admitted>,
    /// Bolna's acceptances to record, gathered into batches.
    pub records: Batcher<RecordRequest, Call>,
    /// Webhooks with live statuses, gathered into batches.
    pub webhooks: Batcher<LiveWebhook, LiveOutcome>,
}

impl CallService {
    /// Must be called on the runtime that outlives the HTTP server (the process's main runtime).
    /// `batch_pool` carries the batched statements (admissions, Bolna's answers, live webhooks):
    /// the same database, on connections that may be set up for them (the web layer's plan once,
    /// see its `database::lazy_batch_pool`); `pool` carries everything else.
    pub fn new(pool: PgPool, batch_pool: PgPool, bolna: BolnaClient, config: ServiceConfig) -> Self {
        let gate = BolnaGate::new(config.gate);
        let runtime = tokio::runtime::Handle::current();
        let metrics = Metrics::new();
        let account_lines = Arc::new(AccountLines(AtomicU32::new(config.account_lines)));
        let admissions = {
            let (pool, config, lines) = (batch_pool.clone(), config.clone(), account_lines.clone());
            Batcher::start(
                "admit",
                config.batch,
                &runtime,
                metrics.batch_observer("admit"),
                move |requests| {
                    let pool = pool.clone();
                    let policy = config.slot_policy(lines.get());
                    async move { admit_batch(&pool, policy, requests).await }
                },
            )
        };
        let records = {
            let pool = batch_pool.clone();
            Batcher::start(
                "record",
                config.batch,
                &runtime,
                metrics.batch_observer("record"),
                move |requests| {
                    let pool = pool.clone();
                    async move { record_batch(&pool, requests).await }
                },
            )
        };
        let webhooks = {
            let (pool, lease) = (batch_pool, config.lease);
            Batcher::start(
                "webhook",
                config.batch,
                &runtime,
                metrics.batch_observer("webhook"),
                move |requests| {
                    let pool = pool.clone();
                    async move { apply_live_batch(&pool, lease, requests).await }
                },
            )
        };
        Self {
            inner: Arc::new(Inner {
                pool,
                bolna,
                config,
                tasks: TaskTracker::new(),
                runtime,
                metrics,
                gate,
                account_lines,
                bolna_account: std::sync::Mutex::new(None),
                admissions,
                records,
                webhooks,
            }),
        }
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    /// The account's lines, Bolna's rate limit and a slot's lease, for the slot ledger.
    pub(crate) fn slot_policy(&self) -> SlotPolicy {
        self.inner.config.slot_policy(self.inner.account_lines.get())
    }

    /// Now, by the service's clock (the campaign scheduler's windows and retries use it).
    pub(crate) fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.inner.config.clock.now()
    }

    pub fn bolna(&self) -> &BolnaClient {
        &self.inner.bolna
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Whether the circuit breaker holds calls back from Bolna now.
    pub fn bolna_is_held_back(&self) -> bool {
        let open = self.inner.gate.is_open();
        self.inner.metrics.bolna_circuit_open.set(i64::from(open));
        open
    }

    /// Runs one Bolna request, timing it and telling the circuit breaker how it went.
    pub(crate) async fn bolna_request<T>(
        &self,
        operation: &str,
        request: impl std::future::Future<Output = Result<T, BolnaError>>,
    ) -> Result<T, BolnaError> {
        let started = std::time::Instant::now();
        let result = request.await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(error) => error.kind(),
        };
        self.inner
            .metrics
            .bolna_requests
            .with_label_values(&[operation, outcome])
            .observe(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => self.inner.gate.record_success(),
            Err(error)
                if error.is_rate_limited()
                    || error.start_outcome() == bolna_client::StartOutcome::Unknown
                    || matches!(error, BolnaError::Connect(_)) =>
            {
                self.inner.gate.record_failure(error)
            }
            // Any other 4xx: Bolna is up and answering.
            Err(BolnaError::Api { .. }) => self.inner.gate.record_success(),
            Err(_) => {}
        }
        result
    }

    /// Sizes the account line pool and the send token pool (at start-up, and when Bolna's account
    /// concurrency changes the lines).
    pub async fn prepare(&self) -> sqlx::Result<()> {
        let mut conn = self.inner.pool.acquire().await?;
        let policy = self.slot_policy();
        concurrency::sync_account_pool(&mut conn, policy.account_lines).await?;
        concurrency::sync_send_tokens(&mut conn, policy.send_tokens).await
    }

    /// Runs a use case as a tracked task on the main runtime and waits for its result. A use case
    /// that commits and then must act on what it committed (send the call to Bolna, start the next
    /// queued call) cannot be cut between the two when its caller is dropped — actix drops a
    /// handler whose client went away, or whose connection is closed at shutdown — and shutdown
    /// waits for it.
    pub(crate) async fn detached<T, F>(&self, work: F) -> Result<T, crate::CallError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, crate::CallError>> + Send + 'static,
    {
        let work = async move {
            let result = work.await;
            if let Err(error) = &result {
                tracing::warn!(error = %error, "a detached use case failed");
            }
            result
        };
        self.inner.tasks.spawn_on(work, &self.inner.runtime).await.map_err(|error| {
            crate::CallError::Unexpected(anyhow::anyhow!("a detached task failed: {error}"))
        })?
    }

    /// Background Bolna requests still running.
    pub fn in_flight(&self) -> usize {
        self.inner.tasks.len()
    }

    /// Stops taking background work and waits (up to `timeout`) for what is in flight.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.inner.tasks.close();
        tokio::time::timeout(timeout, self.inner.tasks.wait()).await.is_ok()
    }
}
