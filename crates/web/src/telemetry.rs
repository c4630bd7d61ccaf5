//! Logging: JSON lines in production, readable lines locally, silent in tests unless `TEST_LOG`
//! is set. The filter comes from `RUST_LOG` (default `info`).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, EnvFilter};

use crate::settings::{Environment, Settings};

/// Installs the global subscriber once. Later calls (tests spawning many apps) do nothing.
pub fn init(environment: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match environment {
        Environment::Production => {
            registry.with(fmt::layer().json().flatten_event(true).with_current_span(false)).try_init()
        }
        Environment::Local => registry.with(fmt::layer().with_target(false)).try_init(),
    };
}

/// Logs what the process runs with, secrets shown as `[REDACTED]` by their `Debug`.
pub fn log_settings(settings: &Settings) {
    tracing::info!(
        environment = settings.environment.as_str(),
        server = ?settings.server,
        database = ?settings.database,
        bolna = ?settings.bolna,
        webhook = ?settings.webhook,
        auth = ?settings.auth,
        limits = ?settings.limits,
        reconciler = ?settings.reconciler,
        outbound_webhooks = ?settings.outbound_webhooks,
        "settings loaded"
    );
}
