//! The call lifecycle: who the users are, admission, the hand-off to Bolna, webhook processing,
//! the dispatcher of queued calls, and (later) reconciliation and campaigns. SQL lives next to the
//! code that owns each table; every use case is one transaction, committed before Bolna is called.

// Lets `select_call!` name this crate's types by path from inside the crate too.
extern crate self as call_service;

pub mod calls;
mod dispatch;
mod error;
pub mod phone;
mod service;
pub mod users;
pub mod webhooks;

pub use concurrency::{CallId, CallType, UserId};
pub use error::CallError;
pub use phone::PhoneNumber;
pub use service::{CallService, ServiceConfig};
pub use tokio_util::sync::CancellationToken;
