//! Reserving a slot for an existing call: the user's per-type limit first (under the user's row
//! lock), then the budgets, then a send token (Bolna's rate limit), then an account line. Either refusal leaves nothing behind. One round trip: the SQL
//! function `reserve_call_slot` (`sql/ledger.sql`), built from the same rules as admission.

use sqlx::PgConnection;

use crate::error::LedgerError;
use crate::ids::{CallId, CallType, UserId};
use crate::policy::SlotPolicy;

/// The answer to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The call holds a slot and a line now.
    Reserved,
    /// All of the user's slots of this type are taken.
    UserLimitReached { active: i64, limit: i32 },
    /// The user's monthly budget or the call's campaign's budget is spent.
    BudgetExhausted,
    /// Bolna's rate limit: every send token was taken within the window.
    RateLimitReached,
    /// Every account line is taken.
    AccountLimitReached,
}

/// Reserves a slot of `call_type` for `call` of `user`, inside the caller's transaction.
#[tracing::instrument(name = "Reserve a call slot", skip_all, fields(user_id = %user, call_type = %call_type, call_id = %call))]
pub async fn reserve(
    conn: &mut PgConnection,
    user: UserId,
    call_type: CallType,
    call: CallId,
    policy: &SlotPolicy,
) -> Result<Reservation, LedgerError> {
    let answer = sqlx::query!(
        r#"SELECT outcome AS "outcome!", active, call_limit
           FROM reserve_call_slot($1, $2, $3, $4, $5, $6, $7)"#,
        user as UserId,
        call_type.as_str(),
        call as CallId,
        policy.lines(),
        policy.tokens(),
        policy.send_window_seconds(),
        policy.lease_seconds()
    )
    .fetch_one(&mut *conn)
    .await?;
    match answer.outcome.as_str() {
        "reserved" => Ok(Reservation::Reserved),
        "user_limit" => Ok(Reservation::UserLimitReached {
            active: answer.active.unwrap_or_default(),
            limit: answer.call_limit.unwrap_or_default(),
        }),
        "budget_exhausted" => Ok(Reservation::BudgetExhausted),
        "rate_limit" => Ok(Reservation::RateLimitReached),
        "account_limit" => Ok(Reservation::AccountLimitReached),
        _ => Err(LedgerError::UnknownUser(user)),
    }
}
