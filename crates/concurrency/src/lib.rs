//! The slot ledger: who may call now.
//!
//! A call holds one of its user's slots of its type (`direct` or `campaign`) from admission until
//! the line is free. The ledger lives in PostgreSQL (`active_calls`) so that any number of server
//! instances share it. This crate knows nothing about HTTP or Bolna.

mod ids;

pub use ids::{CallId, CallType, UnknownCallType, UserId};
