//! Starting a simulator: in-process (tests, `switchboard dev`, the benchmark) or from the binary.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::config::{SimConfig, WebhookTarget};
use crate::control::FaultUpdate;
use crate::state::SimState;
use crate::stats::Stats;

/// A running simulator.
#[derive(Debug, Clone)]
pub struct Simulator {
    port: u16,
    state: Arc<SimState>,
    handle: ServerHandle,
}

impl Simulator {
    /// Binds `address` (e.g. `127.0.0.1:0`) and serves on the current Tokio runtime.
    pub fn start(config: SimConfig, address: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address).with_context(|| format!("binding {address}"))?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(SimState::new(config));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .configure(crate::api::routes)
                .configure(crate::control::routes)
        })
        .workers(2)
        .disable_signals()
        .listen(listener)?
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Ok(Self { port, state, handle })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`: what Switchboard's `bolna.base_url` should be.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Points webhooks somewhere (e.g. once the receiving server's port is known).
    pub fn set_webhook(&self, target: WebhookTarget) {
        self.state.config.write().unwrap_or_else(|poisoned| poisoned.into_inner()).webhook = Some(target);
    }

    /// Changes the run's configuration (e.g. `hold_calls`); calls already running keep theirs.
    pub fn configure(&self, change: impl FnOnce(&mut SimConfig)) {
        change(&mut self.state.config.write().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    pub fn set_faults(&self, update: FaultUpdate) {
        update.apply(&self.state);
    }

    pub fn stats(&self) -> Stats {
        self.state.stats().clone()
    }

    /// When the first call to `recipient` was accepted (cheap; for latency measurements).
    pub fn first_accepted_at(&self, recipient: &str) -> Option<chrono::DateTime<chrono::Utc>> {
        self.state.stats().first_accepted_at.get(recipient).copied()
    }

    /// Hangs up every held call.
    pub fn hang_up_all(&self) -> usize {
        let ids: Vec<String> = self.state.executions().keys().cloned().collect();
        ids.iter().filter(|id| crate::lifecycle::hang_up(&self.state, id)).count()
    }

    /// The current body of one execution (what `GET /executions/{id}` answers).
    pub fn execution(&self, id: &str) -> Option<bolna_client::Execution> {
        self.state.executions().get(id).map(|e| e.body.clone())
    }

    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}
