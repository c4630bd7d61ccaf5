//! Where settings come from, in order (later wins): `config/base.toml`, `config/<environment>.toml`,
//! `DATABASE_URL`, then `SWITCHBOARD__SECTION__KEY` environment variables. Then the start-up checks:
//! in production a missing secret stops start-up naming its key; a malformed value names its key
//! and the problem.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use config::{Config, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};

use super::{Environment, Settings};

/// Start-up refused, with a message naming the key and the problem.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration key `{key}` is required in production (set {env})")]
    MissingSecret { key: &'static str, env: String },
    #[error("configuration key `{key}` is malformed: {problem}")]
    Malformed { key: String, problem: String },
}

/// The inputs of a load: a config folder (or the defaults built into the binary) and the
/// environment variables. Tests pass their own variables instead of the process's.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub config_dir: Option<PathBuf>,
    pub vars: HashMap<String, String>,
}

const BUILT_IN_BASE: &str = include_str!("../../../../config/base.toml");
const BUILT_IN_LOCAL: &str = include_str!("../../../../config/local.toml");
const BUILT_IN_PRODUCTION: &str = include_str!("../../../../config/production.toml");

impl ConfigSource {
    /// The process environment, with the config folder from `SWITCHBOARD_CONFIG_DIR` or the nearest
    /// `config/base.toml` above the working directory (so `cargo test -p web` finds the root one).
    pub fn from_process() -> Self {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let config_dir = vars
            .get("SWITCHBOARD_CONFIG_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok().and_then(|dir| find_config_dir(&dir)));
        Self { config_dir, vars }
    }
}

fn find_config_dir(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|dir| dir.join("config")).find(|dir| dir.join("base.toml").is_file())
}

impl Settings {
    /// Loads settings from the process environment.
    pub fn load() -> Result<Self, SettingsError> {
        Self::load_from(&ConfigSource::from_process())
    }

    /// Loads settings from an explicit source (see [`ConfigSource`]).
    pub fn load_from(source: &ConfigSource) -> Result<Self, SettingsError> {
        let environment: Environment = source
            .vars
            .get("SWITCHBOARD_ENVIRONMENT")
            .map(|value| value.parse())
            .transpose()
            .map_err(SettingsError::Invalid)?
            .unwrap_or(Environment::Local);

        let mut builder = Config::builder();
        builder = match &source.config_dir {
            Some(dir) => {
                let base = dir.join("base.toml");
                if !base.is_file() {
                    return Err(SettingsError::Invalid(format!("{} does not exist", base.display())));
                }
                builder
                    .add_source(File::from(base))
                    .add_source(File::from(dir.join(environment.as_str())).required(false))
            }
            None => builder
                .add_source(File::from_str(BUILT_IN_BASE, FileFormat::Toml))
                .add_source(File::from_str(built_in_overlay(environment), FileFormat::Toml)),
        };
        let explicit_database_url = source.vars.contains_key("SWITCHBOARD__DATABASE__URL");
        if let (false, Some(url)) = (explicit_database_url, source.vars.get("DATABASE_URL")) {
            builder = builder.set_override("database.url", url.as_str()).map_err(from_config)?;
        }
        let switchboard_vars: HashMap<String, String> = source
            .vars
            .iter()
            .filter(|(key, _)| key.starts_with("SWITCHBOARD__"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("SWITCHBOARD")
                .prefix_separator("__")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("webhook.allowed_ips")
                .with_list_parse_key("webhook.trusted_proxies")
                .with_list_parse_key("http.cors_allowed_origins")
                .with_list_parse_key("auth.admin_tokens")
                .with_list_parse_key("outbound_webhooks.retry_schedule_seconds")
                .try_parsing(true)
                .source(Some(switchboard_vars)),
        );
        let mut settings: Settings =
            builder.build().and_then(Config::try_deserialize).map_err(from_config)?;
        settings.environment = environment;
        settings.check()?;
        Ok(settings)
    }

    /// The checks that the types alone cannot make.
    fn check(&self) -> Result<(), SettingsError> {
        if self.environment == Environment::Production {
            // auth.admin_tokens stands in for auth.admin_token.
            let admin_token = match &self.auth.admin_token {
                None => self.auth.admin_tokens.first().cloned(),
                some => some.clone(),
            };
            let required: [(&'static str, &Option<SecretString>); 5] = [
                ("database.url", &self.database.url),
                ("bolna.api_key", &self.bolna.api_key),
                ("webhook.token", &self.webhook.token),
                ("auth.admin_token", &admin_token),
                ("outbound_webhooks.secret_key", &self.outbound_webhooks.secret_key),
            ];
            for (key, value) in required {
                if value.as_ref().is_none_or(|secret| secret.expose_secret().trim().is_empty()) {
                    return Err(SettingsError::MissingSecret { key, env: env_name(key) });
                }
            }
        }
        for entry in &self.webhook.allowed_ips {
            parse_allowed_source(entry).map_err(|problem| malformed("webhook.allowed_ips", problem))?;
        }
        for entry in &self.webhook.trusted_proxies {
            parse_ip_range(entry).map_err(|problem| malformed("webhook.trusted_proxies", problem))?;
        }
        if self.auth.admin_tokens.iter().any(|token| token.expose_secret().trim().is_empty()) {
            return Err(malformed("auth.admin_tokens", "must not hold an empty token".into()));
        }
        let rate = &self.http.rate_limit;
        if !(0.0..=1_000_000.0).contains(&rate.requests_per_second) {
            return Err(malformed(
                "http.rate_limit.requests_per_second",
                "must be between 0 (off) and 1000000 requests per second".into(),
            ));
        }
        if rate.requests_per_second > 0.0 && rate.burst == 0 {
            return Err(malformed("http.rate_limit.burst", "must be at least 1 when the limit is on".into()));
        }
        let retention = self.webhook.retention_days;
        if !(retention == 0.0 || (0.0005..=36_500.0).contains(&retention)) {
            return Err(malformed(
                "webhook.retention_days",
                "must be 0 (keep forever) or between 0.0005 (43 seconds) and 36500 days".into(),
            ));
        }
        check_url("bolna.base_url", &self.bolna.base_url, &["http", "https"])?;
        if self.bolna.max_calls_per_minute == 0 {
            return Err(malformed("bolna.max_calls_per_minute", "must be at least 1".into()));
        }
        if let Some(url) = &self.database.url {
            check_url("database.url", url.expose_secret(), &["postgres", "postgresql"]).map_err(|_| {
                malformed("database.url", "expected postgres://user:password@host:port/database".into())
            })?;
        }
        for origin in &self.http.cors_allowed_origins {
            check_url("http.cors_allowed_origins", origin, &["http", "https"])?;
        }
        for (key, value) in [
            ("database.max_connections", u64::from(self.database.max_connections)),
            ("bolna.timeout_seconds", self.bolna.timeout_seconds),
            ("reconciler.interval_seconds", self.reconciler.interval_seconds),
            ("reconciler.lease_seconds", self.reconciler.lease_seconds),
            ("events.heartbeat_seconds", self.events.heartbeat_seconds),
            ("events.client_buffer", self.events.client_buffer as u64),
            ("events.poll_interval_ms", self.events.poll_interval_ms),
            ("events.ticket_ttl_seconds", self.events.ticket_ttl_seconds),
        ] {
            if value == 0 {
                return Err(malformed(key, "must be greater than 0".into()));
            }
        }
        if self.events.retention_seconds < 3600 {
            return Err(malformed(
                "events.retention_seconds",
                "must be at least 3600: clients may replay the last hour".into(),
            ));
        }
        self.check_outbound_webhooks()?;
        if self.server.workers > 1024 {
            return Err(malformed("server.workers", "must be at most 1024 (0: one per CPU core)".into()));
        }
        for (key, value, most) in [
            ("database.batch_workers", self.database.batch_workers, 64),
            ("database.batch_max", self.database.batch_max, 1000),
        ] {
            if value == 0 || value > most {
                return Err(malformed(key, format!("must be between 1 and {most}")));
            }
        }
        if self.bolna.call_connection_reuse_ms > 60_000 {
            return Err(malformed(
                "bolna.call_connection_reuse_ms",
                "must be at most 60000: longer than servers keep idle connections open".into(),
            ));
        }
        if self.database.batch_workers > self.database.max_connections as usize {
            return Err(malformed(
                "database.batch_workers",
                "must not exceed database.max_connections (each batch in flight holds a connection)".into(),
            ));
        }
        if self.database.min_connections > self.database.max_connections {
            return Err(malformed(
                "database.min_connections",
                "must not exceed database.max_connections".into(),
            ));
        }
        Ok(())
    }
}

impl Settings {
    fn check_outbound_webhooks(&self) -> Result<(), SettingsError> {
        let outbound = &self.outbound_webhooks;
        if let Some(key) = &outbound.secret_key {
            crate::outbound::SecretSealer::from_config(key.expose_secret())
                .map_err(|problem| malformed("outbound_webhooks.secret_key", problem))?;
        }
        let schedule = &outbound.retry_schedule_seconds;
        if schedule.is_empty()
            || schedule.len() > 20
            || schedule.iter().any(|s| !(0.0..=604_800.0).contains(s))
        {
            return Err(malformed(
                "outbound_webhooks.retry_schedule_seconds",
                "must list 1 to 20 waits, each between 0 and 604800 seconds".into(),
            ));
        }
        for (key, value, least, most) in [
            ("outbound_webhooks.timeout_seconds", outbound.timeout_seconds, 0.1, 300.0),
            (
                "outbound_webhooks.disable_after_failing_days",
                outbound.disable_after_failing_days,
                0.00001,
                365.0,
            ),
            ("outbound_webhooks.retention_days", outbound.retention_days, 0.0005, 3650.0),
            (
                "outbound_webhooks.max_in_flight_per_endpoint",
                f64::from(outbound.max_in_flight_per_endpoint),
                1.0,
                1000.0,
            ),
            ("outbound_webhooks.max_in_flight", f64::from(outbound.max_in_flight), 1.0, 10_000.0),
            (
                "outbound_webhooks.max_deliveries_per_second",
                f64::from(outbound.max_deliveries_per_second),
                0.0,
                100_000.0,
            ),
            ("outbound_webhooks.poll_interval_ms", outbound.poll_interval_ms as f64, 10.0, 60_000.0),
        ] {
            if !(least..=most).contains(&value) {
                return Err(malformed(key, format!("must be between {least} and {most}")));
            }
        }
        Ok(())
    }
}

fn built_in_overlay(environment: Environment) -> &'static str {
    match environment {
        Environment::Local => BUILT_IN_LOCAL,
        Environment::Production => BUILT_IN_PRODUCTION,
    }
}

/// `webhook.token` → `SWITCHBOARD__WEBHOOK__TOKEN`.
fn env_name(key: &str) -> String {
    let mut name = format!("SWITCHBOARD__{}", key.replace('.', "__").to_ascii_uppercase());
    if key == "database.url" {
        name.push_str(" or DATABASE_URL");
    }
    name
}

fn malformed(key: &str, problem: String) -> SettingsError {
    SettingsError::Malformed { key: key.to_owned(), problem }
}

fn from_config(error: config::ConfigError) -> SettingsError {
    match error {
        config::ConfigError::At { error, origin: _, key: Some(key) } => malformed(&key, error.to_string()),
        other => SettingsError::Invalid(other.to_string()),
    }
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), SettingsError> {
    let (scheme, rest) = value
        .split_once("://")
        .ok_or_else(|| malformed(key, format!("`{}` is not a URL", shorten(value))))?;
    if !schemes.contains(&scheme) {
        return Err(malformed(key, format!("scheme must be one of {}", schemes.join(", "))));
    }
    if rest.is_empty() || rest.starts_with('/') {
        return Err(malformed(key, "the URL has no host".into()));
    }
    Ok(())
}

fn shorten(value: &str) -> String {
    value.chars().take(40).collect()
}

/// An address (`10.0.0.1`) or CIDR range (`10.0.0.0/8`).
/// An entry of `webhook.allowed_ips`: an address, a CIDR range, or the word `bolna` for every
/// address Bolna publishes ([`bolna_client::WEBHOOK_SOURCE_ADDRESSES`]).
pub fn parse_allowed_source(entry: &str) -> Result<Vec<(IpAddr, u8)>, String> {
    if entry.trim().eq_ignore_ascii_case("bolna") {
        return bolna_client::WEBHOOK_SOURCE_ADDRESSES
            .iter()
            .map(|address| parse_ip_range(address))
            .collect();
    }
    parse_ip_range(entry).map(|range| vec![range])
}

pub fn parse_ip_range(entry: &str) -> Result<(IpAddr, u8), String> {
    let (address, prefix) = match entry.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry, None),
    };
    let address: IpAddr =
        address.trim().parse().map_err(|_| format!("`{entry}` is not an IP address or CIDR range"))?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(prefix) => prefix
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|bits| *bits <= max)
            .ok_or_else(|| format!("`{entry}` has an invalid prefix length"))?,
        None => max,
    };
    Ok((address, prefix))
}
