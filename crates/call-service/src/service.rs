//! `CallService`: the handle the web layer and the background tasks share (cheap to clone).

use std::sync::Arc;
use std::time::Duration;

use bolna_client::BolnaClient;
use sqlx::PgPool;
use tokio_util::task::TaskTracker;

/// The knobs of the call lifecycle.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// `limits.account_max_concurrent`: the account's lines.
    pub account_lines: u32,
    /// `reconciler.lease_seconds`: a slot's lease past its last event.
    pub lease: Duration,
    /// How often each dispatcher looks at the queue without being notified.
    pub dispatch_tick: Duration,
    /// Queue heads looked at per dispatcher pass.
    pub dispatch_batch: i64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            account_lines: 10,
            lease: Duration::from_secs(900),
            dispatch_tick: Duration::from_millis(500),
            dispatch_batch: 100,
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
}

impl CallService {
    pub fn new(pool: PgPool, bolna: BolnaClient, config: ServiceConfig) -> Self {
        Self { inner: Arc::new(Inner { pool, bolna, config, tasks: TaskTracker::new() }) }
    }

    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    pub fn config(&self) -> &ServiceConfig {
        &self.inner.config
    }

    pub fn bolna(&self) -> &BolnaClient {
        &self.inner.bolna
    }

    /// Sizes the account line pool from the configuration (at start-up).
    pub async fn prepare(&self) -> sqlx::Result<()> {
        let mut conn = self.inner.pool.acquire().await?;
        concurrency::sync_account_pool(&mut conn, self.inner.config.account_lines).await
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
