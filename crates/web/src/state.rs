//! What every request handler can reach.

use std::sync::Arc;

use call_service::users::KeyCache;
use call_service::CallService;
use sqlx::PgPool;

use crate::events::EventHub;
use crate::outbound::OutboundContext;
use crate::request_limit::RequestLimiter;
use crate::settings::Settings;
use crate::webhook_guard::WebhookGuard;

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub calls: CallService,
    pub webhook_guard: WebhookGuard,
    pub events: EventHub,
    /// API keys seen recently (`auth.key_cache_seconds`).
    pub keys: Arc<KeyCache>,
    /// Requests per API key (`http.rate_limit`); `None` when off.
    pub request_limit: Option<Arc<RequestLimiter>>,
    /// Outbound webhooks' key, policy, client and metrics.
    pub outbound: OutboundContext,
}
