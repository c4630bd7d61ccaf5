//! A typed async client for [Bolna](https://bolna.ai)'s REST API, and the models of its webhook
//! bodies.
//!
//! Facts from Bolna's public documentation that shape this crate:
//! - every request carries `Authorization: Bearer <key>`; 401 and 403 both mean the key was
//!   rejected; errors are `{"error": code, "message": ...}` or `{"detail": ...}`;
//! - `POST /call` has no idempotency key, so a request whose outcome is unknown (timeout after
//!   sending, 5xx) must never be sent again: [`BolnaError::start_outcome`] tells the caller which
//!   case it is in, and [`BolnaClient::start_call`] retries only 429s and connection failures;
//! - executions (webhook bodies) are lenient: only `id` and `status` are required, unknown keys
//!   are ignored, and older shapes (integer `id`, `conversation_time`, numeric
//!   `telephony_data.duration`) parse too. Example bodies are in `fixtures/`;
//! - limits: `POST /call` is rate-limited per organisation (500 requests a minute by default, then
//!   `429`); an account has a concurrency (trial accounts 2, paid ones from 10; `GET /user/me` →
//!   `concurrency.max`), and calls above it wait in Bolna's own queue (`queued`), not refused;
//! - an agent's calling guardrails (`call_start_hour`/`call_end_hour`, in the recipient's time zone,
//!   found from the number) turn a call outside them into `rescheduled`, dialled by Bolna when the
//!   hours begin, unless the request sets `bypass_call_guardrails`;
//! - `POST /call` accepts `scheduled_at`: at least 2 minutes ahead, rounded up to 10 minutes, with a
//!   numeric offset (a `Z` suffix is refused);
//! - `POST /call/{id}/stop` works only while a call waits (queued or scheduled);
//! - webhooks are not signed; Bolna publishes the addresses it sends them from
//!   ([`WEBHOOK_SOURCE_ADDRESSES`]; its documentation lists them on two pages, not identically).

mod client;
mod error;
pub mod models;
mod retry;

pub use client::{
    BolnaClient, ClientSettings, DEFAULT_CALL_CONNECTION_REUSE, MAX_LISTING_WINDOW, MAX_PAGE_SIZE,
};
pub use error::{BolnaError, StartOutcome};
pub use models::*;
pub use retry::RetryPolicy;

/// The addresses Bolna posts webhooks from, as its documentation publishes them (two of its pages
/// list them, not identically; this is their union). `webhook.allowed_ips` names them with the word
/// `bolna`. Bolna signs no webhook, so this list and a shared secret are what identify it.
pub const WEBHOOK_SOURCE_ADDRESSES: [&str; 3] = ["13.203.39.153", "13.126.9.249", "13.202.133.53"];
