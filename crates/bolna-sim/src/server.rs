//! Starting a simulator: in-process (tests, `switchboard dev`, the benchmark) or from the binary.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};

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
    host: String,
    port: u16,
    state: Arc<SimState>,
    handle: Arc<Mutex<Option<ServerHandle>>>,
}

impl Simulator {
    /// Binds `address` (e.g. `127.0.0.1:0`) and serves on the current Tokio runtime.
    pub fn start(config: SimConfig, address: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(address).with_context(|| format!("binding {address}"))?;
        let local = listener.local_addr()?;
        let state = Arc::new(SimState::new(config));
        let handle = serve(listener, state.clone())?;
        Ok(Self {
            host: local.ip().to_string(),
            port: local.port(),
            state,
            handle: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Bolna goes away: the port stops listening, so connections are refused. Executions keep
    /// running (their webhooks still go out).
    pub async fn go_down(&self) {
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            handle.stop(false).await;
        }
    }

    /// Bolna comes back on the same port, with the same executions.
    pub fn come_back(&self) -> anyhow::Result<()> {
        let address = format!("{}:{}", self.host, self.port);
        let listener = TcpListener::bind(&address).with_context(|| format!("binding {address} again"))?;
        let handle = serve(listener, self.state.clone())?;
        *self.handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(())
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

    /// Stops serving without waiting (for `Drop` impls); executions in memory stay.
    pub fn stop_now(&self) {
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            // The stop command is sent when `stop` is called; the returned future only waits.
            drop(handle.stop(false));
        }
    }

    pub async fn stop(&self) {
        let handle = self.handle.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(handle) = handle {
            handle.stop(true).await;
        }
    }
}

fn serve(listener: TcpListener, state: Arc<SimState>) -> anyhow::Result<ServerHandle> {
    let data = web::Data::new(state);
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
    Ok(handle)
}
