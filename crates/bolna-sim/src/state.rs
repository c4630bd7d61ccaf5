//! The simulator's shared state: executions, the account's lines, faults and statistics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bolna_client::Execution;
use tokio::sync::{mpsc, Notify};

use crate::config::SimConfig;
use crate::faults::FaultState;
use crate::lines::Lines;
use crate::stats::Stats;

/// One execution as the simulator runs it.
#[derive(Debug)]
pub struct SimExecution {
    /// The body Bolna would send now.
    pub body: Execution,
    pub agent_id: String,
    pub recipient: String,
    /// Set by `POST /call/{id}/stop` while queued.
    pub stop_requested: bool,
    /// Its place in the line queue.
    pub ticket: u64,
    /// Wakes the lifecycle task (stop while queued, hang-up of a held call).
    pub wake: Arc<Notify>,
    /// Ordered webhook deliveries of this execution.
    pub deliveries: mpsc::UnboundedSender<Execution>,
}

#[derive(Debug)]
pub struct SimState {
    pub config: RwLock<SimConfig>,
    pub executions: Mutex<HashMap<String, SimExecution>>,
    /// The account's lines, handed out first come first served, as Bolna queues above its limit.
    pub lines: Lines,
    pub faults: Mutex<FaultState>,
    pub stats: Mutex<Stats>,
    /// When the `POST /call` requests of the current rate window arrived.
    pub recent_requests: Mutex<std::collections::VecDeque<std::time::Instant>>,
    pub http: reqwest::Client,
}

impl SimState {
    pub fn new(config: SimConfig) -> Self {
        let lines = Lines::new(config.account_concurrency);
        Self {
            config: RwLock::new(config),
            executions: Mutex::new(HashMap::new()),
            lines,
            faults: Mutex::new(FaultState::default()),
            stats: Mutex::new(Stats::default()),
            recent_requests: Mutex::new(std::collections::VecDeque::new()),
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
        }
    }

    pub fn config(&self) -> SimConfig {
        self.config.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    pub fn executions(&self) -> MutexGuard<'_, HashMap<String, SimExecution>> {
        self.executions.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn faults(&self) -> MutexGuard<'_, FaultState> {
        self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a `POST /call` against the rate limit: `Err(retry after)` when it is over.
    pub fn take_rate(&self, limit: crate::config::RateLimit) -> Result<(), std::time::Duration> {
        let now = std::time::Instant::now();
        let window = std::time::Duration::from_millis(limit.window_ms);
        let mut recent = self.recent_requests.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while recent.front().is_some_and(|at| now.duration_since(*at) >= window) {
            recent.pop_front();
        }
        if recent.len() >= limit.calls as usize {
            let oldest = recent.front().copied().unwrap_or(now);
            return Err(window.saturating_sub(now.duration_since(oldest)));
        }
        recent.push_back(now);
        Ok(())
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
