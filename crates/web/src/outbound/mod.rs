//! Outbound webhooks: events pushed to each user's own endpoints, signed by the Standard Webhooks
//! specification, retried for about a day.
//!
//! Two tasks per instance. The fan-out ([`fanout`]) follows the `events` outbox from a durable
//! cursor and writes a message per event and a delivery per subscribed endpoint, in one
//! transaction with the cursor's move. The sender ([`sender`]) claims due deliveries with
//! `SKIP LOCKED` and a lease, sends them, and records each attempt. The rows are
//! `call_service::outbound_webhooks`'s.

mod destination;
mod fanout;
mod metrics;
mod secrets;
mod sender;
mod signature;

pub use destination::{check_destination, DestinationError, DestinationPolicy};
pub use fanout::{message_body, run_fanout};
pub use metrics::OutboundMetrics;
pub use secrets::{EndpointSecret, SecretSealer};
pub use sender::run_sender;
pub use signature::sign;

use secrecy::ExposeSecret;

use crate::settings::OutboundWebhookSettings;

/// What the routes and the tasks share: the sealing key, the destination policy, the HTTP client
/// and the metrics.
#[derive(Debug, Clone)]
pub struct OutboundContext {
    /// `None` when `outbound_webhooks.secret_key` is not set (only possible outside production):
    /// endpoints cannot be created then.
    pub sealer: Option<SecretSealer>,
    pub policy: DestinationPolicy,
    pub client: reqwest::Client,
    pub metrics: OutboundMetrics,
}

impl OutboundContext {
    /// From the settings (already checked at load).
    pub fn new(settings: &OutboundWebhookSettings, registry: &prometheus::Registry) -> anyhow::Result<Self> {
        let sealer = match &settings.secret_key {
            Some(key) => Some(SecretSealer::from_config(key.expose_secret()).map_err(anyhow::Error::msg)?),
            None => None,
        };
        let policy = DestinationPolicy {
            allow_http: settings.allow_http,
            allow_private: settings.allow_private_destinations,
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout())
            .connect_timeout(settings.timeout().min(std::time::Duration::from_secs(5)))
            .dns_resolver(std::sync::Arc::new(destination::PublicOnlyResolver {
                allow_private: policy.allow_private,
            }))
            .pool_max_idle_per_host(settings.max_in_flight_per_endpoint as usize)
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { sealer, policy, client, metrics: OutboundMetrics::register(registry) })
    }
}
