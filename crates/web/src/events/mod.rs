//! `GET /v1/events`: each instance reads the `events` table in stream order ([`hub`]), renders
//! each event once ([`render`]) and fans it out to that user's open streams ([`stream`]) through
//! bounded buffers; a reconnect replays from the database.

pub mod frame;
pub mod hub;
pub mod render;
pub mod stream;

pub use hub::{run_hub, EventHub};
