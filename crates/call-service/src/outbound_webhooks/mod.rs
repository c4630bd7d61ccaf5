//! Outbound webhooks' tables: each user's endpoints, the messages fanned out of the `events`
//! outbox, one delivery per message and endpoint, and each delivery's attempts. The HTTP side
//! (signing, sending, the destination check) is the web crate's `outbound` module; this module
//! only reads and writes the rows.

mod deliveries;
mod endpoints;
mod fanout;

pub use deliveries::{
    claim_due_deliveries, delivery_log, delivery_stats, prune_webhook_messages, record_attempts,
    replay_since, retry_delivery, AttemptOutcome, AttemptRecord, ClaimedDelivery, DeliveryRecord,
    DeliveryStats, DeliveryStatus, DisabledEndpoint, EndpointVerdict, FinishedAttempt, RetryOutcome,
};
pub use endpoints::{
    create_endpoint, delete_endpoint, endpoints_of_users, get_endpoint, list_endpoints,
    rotate_endpoint_secret, update_endpoint, EndpointChange, EndpointRecord, EndpointTarget, NewEndpoint,
    MAX_ENDPOINTS_PER_USER,
};
pub use fanout::{
    enqueue_messages, lock_fanout_cursor, move_fanout_cursor, reserve_sequences, EnqueuedDelivery,
    OutgoingMessage,
};

/// What an endpoint can subscribe to, as named in `webhook_endpoints.events` and in each body's
/// `type`. `ping` is sent only by `POST /v1/webhook-endpoints/{id}/test`.
pub const EVENT_TYPES: [&str; 4] = ["call.updated", "call.ended", "campaign.updated", "campaign.completed"];

/// The body's `type` of a test delivery.
pub const PING: &str = "ping";
