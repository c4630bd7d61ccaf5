//! Typed configuration. Layering and start-up checks live in [`load`]; this module only says what
//! the keys are. Every secret is a [`SecretString`]: its `Debug` prints `[REDACTED]`, and it is
//! exposed only where it is used.

mod load;

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use load::{parse_allowed_source, parse_ip_range, ConfigSource, SettingsError};

/// `local` (readable logs, development secrets allowed) or `production` (JSON logs, every secret
/// required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Production,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Local => "local",
            Environment::Production => "production",
        }
    }
}

impl std::str::FromStr for Environment {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.to_ascii_lowercase().as_str() {
            "local" => Ok(Environment::Local),
            "production" => Ok(Environment::Production),
            other => Err(format!("SWITCHBOARD_ENVIRONMENT is `{other}`; use `local` or `production`")),
        }
    }
}

/// All of Switchboard's settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    #[serde(skip, default = "default_environment")]
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub bolna: BolnaSettings,
    pub webhook: WebhookSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub reconciler: ReconcilerSettings,
    pub http: HttpSettings,
    pub events: EventSettings,
    pub outbound_webhooks: OutboundWebhookSettings,
}

fn default_environment() -> Environment {
    Environment::Local
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub max_body_bytes: usize,
    pub shutdown_timeout_seconds: u64,
    /// HTTP worker threads; 0 = one per CPU core. Several instances on one host share its cores.
    #[serde(default)]
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// Also read from `DATABASE_URL` when `SWITCHBOARD__DATABASE__URL` is not set.
    pub url: Option<SecretString>,
    pub max_connections: u32,
    pub min_connections: u32,
    pub acquire_timeout_seconds: u64,
    /// A pooled connection idle at least this long is pinged before use (0: before every use).
    /// Busy connections are not: a ping is a round trip, and on the hot paths it doubled their
    /// count (issue 8).
    pub ping_idle_after_seconds: u64,
    pub run_migrations: bool,
    /// Statements for batched admissions (and for recording Bolna's answers) in flight at once;
    /// each holds one pooled connection while it runs.
    #[serde(default = "default_batch_workers")]
    pub batch_workers: usize,
    /// Most calls one batched statement carries; 1 turns batching off.
    #[serde(default = "default_batch_max")]
    pub batch_max: usize,
    /// The batched statements run on connections that plan them once (generic plans) instead of
    /// on every execution; see `database::lazy_batch_pool`.
    #[serde(default = "default_batch_generic_plans")]
    pub batch_generic_plans: bool,
}

fn default_batch_generic_plans() -> bool {
    true
}

fn default_batch_workers() -> usize {
    1
}

fn default_batch_max() -> usize {
    64
}

impl DatabaseSettings {
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.acquire_timeout_seconds)
    }

    pub fn ping_idle_after(&self) -> Duration {
        Duration::from_secs(self.ping_idle_after_seconds)
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BolnaSettings {
    pub base_url: String,
    pub api_key: Option<SecretString>,
    pub timeout_seconds: u64,
    pub connect_timeout_seconds: u64,
    pub circuit_failure_threshold: u32,
    pub circuit_cooldown_seconds: u64,
    /// `POST /call` reuses a kept-alive connection only if it has been idle less than this many
    /// milliseconds; 0 (the default) opens a new connection for every call. Keep it below Bolna's
    /// keep-alive timeout: a call sent on a connection the server has just closed has an unknown
    /// outcome (see `bolna_client::DEFAULT_CALL_CONNECTION_REUSE`).
    #[serde(default = "default_call_connection_reuse_ms")]
    pub call_connection_reuse_ms: u64,
    /// `POST /call` per minute that every instance together may send (Bolna's rate limit per
    /// organisation is 500).
    #[serde(default = "default_max_calls_per_minute")]
    pub max_calls_per_minute: u32,
    /// The rate limit's window: a minute. Not a configuration key: tests shorten it to run a
    /// minute of traffic in seconds.
    #[serde(skip, default = "one_minute")]
    pub rate_window: Duration,
}

fn default_max_calls_per_minute() -> u32 {
    500
}

fn one_minute() -> Duration {
    Duration::from_secs(60)
}

fn default_call_connection_reuse_ms() -> u64 {
    bolna_client::DEFAULT_CALL_CONNECTION_REUSE.as_millis() as u64
}

#[derive(Debug, Clone, Deserialize)]
pub struct WebhookSettings {
    pub token: Option<SecretString>,
    /// Addresses or CIDR ranges allowed to post webhooks; empty allows any.
    pub allowed_ips: Vec<String>,
    /// Proxies whose `X-Forwarded-For` is trusted to name the client.
    pub trusted_proxies: Vec<String>,
    /// Processed webhook bodies older than this many days are deleted (fractions allowed; 0 keeps
    /// them forever). Bodies still waiting to be applied are never deleted.
    #[serde(default = "default_webhook_retention_days")]
    pub retention_days: f64,
}

fn default_webhook_retention_days() -> f64 {
    30.0
}

impl WebhookSettings {
    /// How long processed bodies are kept; `None`: forever.
    pub fn retention(&self) -> Option<Duration> {
        (self.retention_days > 0.0).then(|| Duration::from_secs_f64(self.retention_days * 86_400.0))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub admin_token: Option<SecretString>,
    /// More admin tokens, each as good as `admin_token`: add the new token here, move operators to
    /// it, then remove the old one — a rotation without downtime.
    #[serde(default)]
    pub admin_tokens: Vec<SecretString>,
    /// How long a valid API key is remembered (no database look-up), in seconds; 0 = look up every
    /// request. A key revoked in the database keeps working at most this long.
    #[serde(default = "default_key_cache_seconds")]
    pub key_cache_seconds: u64,
}

fn default_key_cache_seconds() -> u64 {
    30
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub default_direct_call_limit: u32,
    pub default_campaign_call_limit: u32,
    pub account_max_concurrent: u32,
    /// Calls of a user to one number (direct and every campaign) in a rolling 24 hours; 0 = no
    /// cap. A user's own figure (`PATCH /v1/admin/users/{id}`) overrides it.
    #[serde(default)]
    pub max_calls_per_number_per_day: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ReconcilerSettings {
    pub interval_seconds: u64,
    pub initiating_timeout_seconds: u64,
    pub lease_seconds: u64,
    pub not_placed_grace_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpSettings {
    pub cors_allowed_origins: Vec<String>,
    #[serde(default)]
    pub rate_limit: RequestRateLimit,
}

/// Requests per API key (a token bucket per key, on each instance). Off when
/// `requests_per_second` is 0.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestRateLimit {
    /// Sustained requests per second per key.
    #[serde(default)]
    pub requests_per_second: f64,
    /// Requests a key may send at once after being idle (the bucket's size); at least 1.
    #[serde(default)]
    pub burst: u32,
}

/// The live event stream (`GET /v1/events`).
#[derive(Debug, Clone, Deserialize)]
pub struct EventSettings {
    /// Seconds between heartbeat comments on an idle stream.
    pub heartbeat_seconds: u64,
    /// Events are kept at least this long for `Last-Event-ID` replay; older → a `reset` event.
    pub retention_seconds: u64,
    /// Events buffered per connected client; a client this far behind gets `reset` and is closed.
    pub client_buffer: usize,
    /// How often each instance reads new events from the database, in milliseconds.
    pub poll_interval_ms: u64,
    /// How long a browser ticket (`POST /v1/events/tickets`) stays valid, in seconds.
    pub ticket_ttl_seconds: u64,
}

impl EventSettings {
    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_seconds)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_seconds)
    }
}

/// Outbound webhooks: deliveries of events to each user's own endpoints.
#[derive(Debug, Clone, Deserialize)]
pub struct OutboundWebhookSettings {
    /// Base64 of 32 random bytes: seals endpoint secrets at rest. Required in production.
    pub secret_key: Option<SecretString>,
    /// Accept `http://` endpoints (otherwise only `https://`).
    pub allow_http: bool,
    /// Accept endpoints whose address is loopback, private, link-local or otherwise not public.
    pub allow_private_destinations: bool,
    /// Seconds before each attempt, the first counted from the event: its length is the attempts
    /// made before a delivery fails. Each wait is stretched by up to 10% at random (jitter).
    pub retry_schedule_seconds: Vec<f64>,
    /// One attempt's limit, connecting to reading the answer.
    pub timeout_seconds: f64,
    /// Deliveries in flight per endpoint (across instances, up to one more per instance in a race).
    pub max_in_flight_per_endpoint: u32,
    /// Deliveries in flight per instance.
    pub max_in_flight: u32,
    /// Deliveries one instance starts per second at most (0: no limit): a backlog drains at this
    /// pace, leaving the database and the cores to call handling.
    pub max_deliveries_per_second: u32,
    /// An endpoint that failed every attempt for this many days is disabled.
    pub disable_after_failing_days: f64,
    /// Seconds a rotated-out secret keeps signing beside the new one.
    pub secret_rotation_overlap_seconds: u64,
    /// Messages, deliveries and attempts older than this many days are deleted.
    pub retention_days: f64,
    /// How often each instance looks for new events and due deliveries, in milliseconds.
    pub poll_interval_ms: u64,
}

impl OutboundWebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_seconds)
    }

    /// How long a claimed delivery is held: past any attempt's end (the timeout bounds the whole
    /// request), so two instances never send one delivery at once.
    pub fn lease(&self) -> Duration {
        self.timeout() + Duration::from_secs(5)
    }

    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub fn disable_after(&self) -> Duration {
        Duration::from_secs_f64(self.disable_after_failing_days * 86_400.0)
    }

    pub fn retention(&self) -> Duration {
        Duration::from_secs_f64(self.retention_days * 86_400.0)
    }

    pub fn rotation_overlap(&self) -> Duration {
        Duration::from_secs(self.secret_rotation_overlap_seconds)
    }
}
