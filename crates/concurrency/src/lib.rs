//! The slot ledger: who may call now. Every read and write of `active_calls` and `account_slots`,
//! and every slot rule, lives in this crate; its SQL functions are defined in `sql/ledger.sql`.
//!
//! A call holds one of its user's slots of its type (`direct` or `campaign`) and one of the
//! account's lines from admission until its line is free. Calls over a limit wait in the queue
//! (`queued`, no execution ID) and start in FIFO order per user and type. The ledger lives in
//! PostgreSQL so any number of server instances share it:
//! - `active_calls`: one row per held slot (id = the call's id). A user's reservations are
//!   serialised by a row lock on the user (`FOR NO KEY UPDATE`), so the count checked is the count
//!   committed: no over-admission on any number of instances.
//! - `account_slots`: a pool of rows, one per account line, claimed with `FOR UPDATE SKIP LOCKED`,
//!   so different users' admissions never wait on one hot counter;
//! - `bolna_send_tokens`: Bolna's rate limit, a pool of rows of the same kind, one per `POST /call`
//!   allowed in Bolna's window: a call takes a token with its slot (see [`sync_send_tokens`]).
//!
//! A `scheduled` call holds nothing: [`enqueue_due_scheduled_calls`] puts it in the queue at its
//! time, placed by that time.
//!
//! The call's life, as far as the ledger is concerned:
//! - [`admit_calls`]: new calls take a slot or queue (a batch; one call is a batch of one), or are
//!   refused over their user's per-number cap ([`number_cap_frees_at`] tells until when) or when
//!   their user's or campaign's budget is spent ([`spent_budget`]; a queued call then stays queued);
//! - [`update_active_call_with_execution_id`]: Bolna's execution ID goes on the slot (the batched
//!   form is the SQL function `attach_execution_ids`, called by the statement that records
//!   Bolna's answers);
//! - leases are renewed by live webhooks (`renew_leases`) and [`expired_leases`] are checked;
//! - [`release_call_slot`] / [`release_call_slot_by_execution_id`] free a slot exactly once, and
//!   [`release_and_hand_over`] gives it to the head of the same queue ([`start_queue_head`], which
//!   the dispatcher also uses on [`startable_queues`]).
//!
//! Every function takes the caller's connection, so it runs inside the caller's transaction.
//! **Lock order** (callers must keep it, or concurrent transactions deadlock): a call's `calls` row
//! first, then its `active_calls` row, then the user's row; queued calls and account lines are
//! only locked with `SKIP LOCKED`. The ledger reads the limit columns of `users` and the queue
//! columns of `calls`, moves a call out of the queue (`queued` → `initiating`) and inserts admitted
//! calls; it knows nothing about HTTP or Bolna.

mod account_pool;
mod admission;
mod budget;
mod definitions;
mod error;
mod ids;
mod leases;
mod number_cap;
mod policy;
mod queue;
mod release;
mod reserve;
mod send_tokens;
mod text_type;
mod usage;

pub use account_pool::sync_account_pool;
pub use admission::{admit_calls, CallToAdmit};
pub use budget::{spent_budget, SpentBudget};
pub use definitions::{LEDGER_SQL, LEDGER_TABLES};
pub use error::LedgerError;
pub use ids::{CallId, CallType, UnknownCallType, UserId};
pub use leases::{expired_leases, update_active_call_with_execution_id, ActiveCall};
pub use number_cap::number_cap_frees_at;
pub use policy::SlotPolicy;
pub use queue::{
    announce_free_capacity, enqueue_due_scheduled_calls, release_and_hand_over, start_queue_head,
    startable_queues, HandOver, QueueStart, ScheduledCalls, StartableQueue, DISPATCH_CHANNEL,
    STARTABLE_QUEUES_SQL,
};
pub use release::{release_call_slot, release_call_slot_by_execution_id, ReleasedSlot};
pub use reserve::{reserve, Reservation};
pub use send_tokens::{send_tokens, sync_send_tokens, SendTokens};
pub use usage::{
    ledger_health, list_held_slots, slot_of, usage_of, usage_of_everyone, ActiveCallRow, LedgerHealth, Usage,
};
