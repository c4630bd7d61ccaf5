//! Reserving a slot: the user's per-type limit first (under the user's row lock), then an account
//! line. Either refusal leaves nothing behind.

use std::time::Duration;

use sqlx::PgConnection;

use crate::account_pool::claim_account_line;
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
    // Serialises this user's reservations across all instances until the caller commits.
    let limit = sqlx::query_scalar!(
        r#"SELECT CASE $2::text WHEN 'direct' THEN direct_call_limit ELSE campaign_call_limit END AS "limit!"
           FROM users WHERE id = $1 FOR NO KEY UPDATE"#,
        user as UserId,
        call_type.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(LedgerError::UnknownUser(user))?;

    let (active, already_held) = sqlx::query!(
        r#"SELECT count(*) AS "n!", COALESCE(bool_or(id = $3), false) AS "held!"
           FROM active_calls WHERE user_id = $1 AND call_type = $2"#,
        user as UserId,
        call_type.as_str(),
        call as CallId
    )
    .fetch_one(&mut *conn)
    .await
    .map(|row| (row.n, row.held))?;
    if already_held {
        return Ok(Reservation::Reserved);
    }
    if active >= i64::from(limit) {
        return Ok(Reservation::UserLimitReached { active, limit });
    }
    if claim_account_line(conn, call, account_lines).await?.is_none() {
        return Ok(Reservation::AccountLimitReached);
    }
    sqlx::query!(
        r#"INSERT INTO active_calls (id, user_id, call_type, started_at, lease_expires_at)
           VALUES ($1, $2, $3, now(), now() + make_interval(secs => $4))"#,
        call as CallId,
        user as UserId,
        call_type.as_str(),
        lease.as_secs_f64()
    )
    .execute(&mut *conn)
    .await?;
    Ok(Reservation::Reserved)
}
