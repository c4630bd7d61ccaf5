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
//!   `telephony_data.duration`) parse too. Example bodies are in `fixtures/`.

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
