//! Builds the long-lived parts from settings: the Bolna client and the call service.

use std::sync::Arc;
use std::time::Duration;

use bolna_client::{BolnaClient, ClientSettings};
use call_service::clock::Clock;
use call_service::{BatchConfig, CallService, GateConfig, ReconcilerConfig, ServiceConfig};
use secrecy::SecretString;
use sqlx::PgPool;

use crate::settings::Settings;

pub fn bolna_client(settings: &Settings) -> anyhow::Result<BolnaClient> {
    let key = settings.bolna.api_key.clone().unwrap_or_else(|| {
        tracing::warn!("bolna.api_key is not set: Bolna will refuse every request");
        SecretString::from("")
    });
    let mut client = ClientSettings::new(settings.bolna.base_url.clone(), key);
    client.request_timeout = Duration::from_secs(settings.bolna.timeout_seconds);
    client.connect_timeout = Duration::from_secs(settings.bolna.connect_timeout_seconds);
    client.call_connection_reuse = Duration::from_millis(settings.bolna.call_connection_reuse_ms);
    Ok(BolnaClient::new(client)?)
}

pub fn call_service(settings: &Settings, pool: PgPool, clock: Arc<dyn Clock>) -> anyhow::Result<CallService> {
    let config = ServiceConfig {
        account_lines: settings.limits.account_max_concurrent,
        max_calls_per_minute: settings.bolna.max_calls_per_minute,
        rate_window: settings.bolna.rate_window,
        lease: Duration::from_secs(settings.reconciler.lease_seconds),
        calls_per_number_per_day: settings.limits.max_calls_per_number_per_day,
        reconciler: ReconcilerConfig {
            interval: Duration::from_secs(settings.reconciler.interval_seconds),
            initiating_timeout: Duration::from_secs(settings.reconciler.initiating_timeout_seconds),
            not_placed_grace: Duration::from_secs(settings.reconciler.not_placed_grace_seconds),
        },
        gate: GateConfig {
            threshold: settings.bolna.circuit_failure_threshold.max(1),
            cooldown: Duration::from_secs(settings.bolna.circuit_cooldown_seconds.max(1)),
            ..GateConfig::default()
        },
        clock,
        batch: BatchConfig {
            workers: settings.database.batch_workers,
            max_batch: settings.database.batch_max,
        },
        ..ServiceConfig::default()
    };
    let batch_pool = crate::database::lazy_batch_pool(&settings.database)?;
    Ok(CallService::new(pool, batch_pool, bolna_client(settings)?, config))
}
