//! The slot ledger: who may call now.
//!
//! A call holds one of its user's slots of its type (`direct` or `campaign`) and one of the
//! account's lines from admission until its line is free. The ledger lives in PostgreSQL so any
//! number of server instances share it:
//! - `active_calls`: one row per held slot (id = the call's id). A user's reservations are
//!   serialised by a row lock on the user (`FOR NO KEY UPDATE`, which does not block the foreign
//!   keys of concurrent inserts), so the count checked is the count committed: no over-admission
//!   on any number of instances.
//! - `account_slots`: a pool of rows, one per account line, claimed with `FOR UPDATE SKIP LOCKED`,
//!   so different users' admissions never wait on one hot counter.
//!
//! Every function takes the caller's connection, so it runs inside the caller's transaction.
//! **Lock order** (callers must keep it, or concurrent transactions deadlock): a call's `calls` row
//! first, then its `active_calls` row, then the user's row (taken by [`reserve`]); account lines
//! are only ever claimed with `SKIP LOCKED` and freed by the transaction that holds the call.
//! Releases are idempotent (`DELETE … RETURNING`) and log what they released. The ledger reads the
//! limit columns of `users` but never writes that table. It knows nothing about HTTP or Bolna.

mod account_pool;
mod error;
mod ids;
mod leases;
mod release;
mod reserve;
mod text_type;
mod usage;

pub use account_pool::{free_account_lines, sync_account_pool};
pub use error::LedgerError;
pub use ids::{CallId, CallType, UnknownCallType, UserId};
pub use leases::{expired_leases, extend_lease, update_active_call_with_execution_id, ActiveCall};
pub use release::{release_call_slot, release_call_slot_by_execution_id, ReleasedSlot};
pub use reserve::{reserve, Reservation};
pub use usage::{list_active_calls, usage_of, ActiveCallRow, Usage};
