//! A Bolna look-alike HTTP server, so Switchboard can be developed, tested and load-tested without
//! a Bolna account or a phone bill.
//!
//! It speaks the API `bolna-client` speaks, runs every accepted call through a realistic status
//! lifecycle (timing scaled by a speed factor), posts each status change to a webhook URL with a
//! configured header, queues calls above the account's concurrency the way Bolna does (FIFO in
//! `queued`, never refused), enforces a per-minute rate limit on `POST /call` with `429` and an
//! agent's calling guardrails with `rescheduled`, as Bolna does, injects faults on demand, and records what a test needs to check:
//! live-call high-water marks per account and agent, executions per recipient (double dials),
//! and every webhook sent with its answer.

mod api;
pub mod config;
mod control;
pub mod faults;
mod lifecycle;
mod lines;
mod server;
mod state;
pub mod stats;
mod webhooks;

pub use config::{CallingHours, OutcomeMix, RateLimit, SimConfig, Timings, WebhookTarget};
pub use control::FaultUpdate;
pub use faults::{CallFault, CallFaultRates, WebhookFaults};
pub use server::Simulator;
pub use stats::{Stats, WebhookRecord};
