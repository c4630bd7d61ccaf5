//! The call lifecycle: who the users are, admission, the hand-off to Bolna, webhook processing,
//! the dispatcher of queued calls, and (later) reconciliation and campaigns. SQL lives next to the
//! code that owns each table; every use case is one transaction, committed before Bolna is called.

// Lets `select_call!` name this crate's types by path from inside the crate too.
extern crate self as call_service;

pub mod account;
pub mod audit;
mod batch;
mod bolna_gate;
pub mod calls;
pub mod campaigns;
pub mod clock;
mod diagnostics;
mod dispatch;
mod error;
pub mod events;
pub mod json_text;
pub mod metrics;
pub mod outbound_webhooks;
pub mod phone;
mod reconcile;
pub mod results;
mod service;
pub mod users;
pub mod webhooks;

pub use batch::BatchConfig;
pub use bolna_gate::GateConfig;
pub use concurrency::{CallId, CallType, UserId};
pub use diagnostics::Diagnostics;
pub use dispatch::DispatchPass;
pub use error::CallError;
pub use phone::PhoneNumber;
pub use reconcile::PassReport;
pub use service::{CallService, ReconcilerConfig, ServiceConfig};
pub use tokio_util::sync::CancellationToken;

/// The call lifecycle's SQL functions and triggers as defined today (`sql/calls.sql`; the slot
/// ledger's are `concurrency::LEDGER_SQL`). Migrations apply them; a test checks that the migrated
/// database matches this text.
pub const CALLS_SQL: &str = include_str!("../sql/calls.sql");
