//! Ending a call that will not go on, and handing its slot on — the one path for Bolna's refusal,
//! the user's cancel, an operator's force-release and the reconciler (a freed line from a webhook
//! takes the second half, [`release_slot`]).
//!
//! In the caller's transaction: write the ending, settle a campaign contact, free the slot and
//! give it to the head of the same user's queue of the same type. The caller commits, then starts
//! the call that took the slot ([`crate::CallService::start_after_commit`]).

use chrono::{DateTime, Utc};
use concurrency::SlotPolicy;
use sqlx::PgConnection;

use super::model::Call;
use super::repository::get_call_by_id;
use super::store;
use crate::CallId;

/// How Switchboard ends a call.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ending<'a> {
    /// `failed`, with why (unless it already ended).
    Failed(&'a str),
    /// `canceled`: Bolna stopped it at the user's request while it still waited there.
    StoppedAtBolna,
    /// `stopped`: Bolna deferred it to its agent's calling hours (`rescheduled`), and Switchboard
    /// stopped it there (see [`crate::CallService::take_back_if_rescheduled`]).
    OutsideCallingHours,
}

/// Why a call Bolna rescheduled ends `stopped`.
pub const OUTSIDE_CALLING_HOURS: &str = "outside the agent's calling hours: Bolna rescheduled the call, and Switchboard \
     stopped it there so that it is never dialled outside the user's slots (schedule it again with scheduled_at)";

impl Ending<'_> {
    fn reason(&self) -> &str {
        match self {
            Ending::Failed(reason) => reason,
            Ending::StoppedAtBolna => "canceled by the user (stopped at Bolna)",
            Ending::OutsideCallingHours => OUTSIDE_CALLING_HOURS,
        }
    }
}

/// Ends call `id` (see the module docs). Returns the queued call that took its slot.
pub(crate) async fn end_call(
    conn: &mut PgConnection,
    id: CallId,
    ending: Ending<'_>,
    slots: &SlotPolicy,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Call>> {
    match ending {
        Ending::Failed(reason) => store::mark_failed(conn, id, reason).await?,
        Ending::StoppedAtBolna => store::mark_stopped_at_bolna(conn, id, "canceled", ending.reason()).await?,
        Ending::OutsideCallingHours => {
            store::mark_stopped_at_bolna(conn, id, "stopped", ending.reason()).await?
        }
    }
    crate::campaigns::settle::settle_contact(conn, id, now).await?;
    release_slot(conn, id, ending.reason(), slots).await
}

/// Frees the slot of `id`, if it holds one, and hands it to the head of the same user's queue of
/// the same type (`concurrency::release_and_hand_over`). Returns that call, now `initiating`.
pub(crate) async fn release_slot(
    conn: &mut PgConnection,
    id: CallId,
    reason: &str,
    slots: &SlotPolicy,
) -> sqlx::Result<Option<Call>> {
    let handed = concurrency::release_and_hand_over(conn, id, reason, slots).await?;
    match handed.next {
        Some(next) => get_call_by_id(conn, next).await,
        None => Ok(None),
    }
}
