//! Reserving a slot: the user's per-type limit first (under the user's row lock), then an account
//! line. Either refusal leaves nothing behind. The steps run in PostgreSQL, in the functions
//! `check_call_slot` / `take_call_slot` / `reserve_call_slot` (migration
//! `20261125000005_one_round_trip_admission.sql`), so a reservation costs one round trip.
//! Admission (`admit_calls`, migration `20261130000006_batched_admission.sql`) applies the same
//! rules to a batch of new calls: user locks, then per-type counts, then account lines.

use std::time::Duration;

use sqlx::PgConnection;

use crate::error::LedgerError;
use crate::ids::{CallId, CallType, UserId};

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The call holds a slot and a line now.
    Reserved,
    /// All of the user's slots of this type are taken.
    UserLimitReached { active: i64, limit: i32 },
    /// Every account line is taken.
    AccountLimitReached,
}

/// Reserves a slot of `call_type` for `call` of `user`, inside the caller's transaction.
/// `account_lines` is `limits.account_max_concurrent`; the lease runs `lease` from now.
#[tracing::instrument(name = "Reserve a call slot", skip_all, fields(user_id = %user, call_type = %call_type, call_id = %call))]
pub async fn reserve(
    conn: &mut PgConnection,
    user: UserId,
    call_type: CallType,
    call: CallId,
    account_lines: u32,
    lease: Duration,
) -> Result<Reservation, LedgerError> {
    // One round trip: `reserve_call_slot` (migration 5) locks the user's row, counts the slots
    // held after the lock is granted, claims a line with SKIP LOCKED and inserts the slot.
    let answer = sqlx::query!(
        r#"SELECT outcome AS "outcome!", active, call_limit
           FROM reserve_call_slot($1, $2, $3, $4, $5)"#,
        user as UserId,
        call_type.as_str(),
        call as CallId,
        i32::try_from(account_lines).unwrap_or(i32::MAX),
        lease.as_secs_f64()
    )
    .fetch_one(&mut *conn)
    .await?;
    match answer.outcome.as_str() {
        "reserved" => Ok(Reservation::Reserved),
        "user_limit" => Ok(Reservation::UserLimitReached {
            active: answer.active.unwrap_or_default(),
            limit: answer.call_limit.unwrap_or_default(),
        }),
        "account_limit" => Ok(Reservation::AccountLimitReached),
        _ => Err(LedgerError::UnknownUser(user)),
    }
}
