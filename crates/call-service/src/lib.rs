//! The call lifecycle: who the users are, admission, dispatch, webhook processing, reconciliation
//! and campaigns. SQL lives next to the code that owns each table.

pub mod users;

pub use concurrency::{CallId, CallType, UserId};
