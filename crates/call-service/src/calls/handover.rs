//! Freeing a slot and handing it straight to the next queued call of the same user and type, in
//! the caller's transaction. When nobody of that user and type waits, the freed line is announced
//! (`NOTIFY switchboard_dispatch`) so any instance's dispatcher can give it to another user.

use sqlx::PgConnection;

use super::admission::mark_initiating;
use super::model::Call;
use crate::service::ServiceConfig;
use crate::{CallId, UserId};

/// The channel dispatchers listen on.
pub const DISPATCH_CHANNEL: &str = "switchboard_dispatch";

/// Releases the slot of `call` if it holds one. Returns the queued call that now holds the freed
/// slot (`initiating`): the caller starts it at Bolna once its transaction has committed.
pub(crate) async fn release_and_hand_over(
    conn: &mut PgConnection,
    call: CallId,
    reason: &str,
    config: &ServiceConfig,
) -> sqlx::Result<Option<Call>> {
    let Some(released) = concurrency::release_call_slot(conn, call, reason).await? else {
        return Ok(None);
    };
    let next = sqlx::query_scalar!(
        r#"SELECT id AS "id: CallId" FROM calls
           WHERE user_id = $1 AND call_type = $2 AND status = 'queued' AND bolna_execution_id IS NULL
           ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"#,
        released.user_id as UserId,
        released.call_type.as_str()
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(next) = next {
        let answer = concurrency::reserve(
            conn,
            released.user_id,
            released.call_type,
            next,
            config.account_lines,
            config.lease,
        )
        .await
        .map_err(|error| match error {
            concurrency::LedgerError::Database(error) => error,
            other => sqlx::Error::Protocol(other.to_string()),
        })?;
        if answer == concurrency::Reservation::Reserved {
            return mark_initiating(conn, next, true).await.map(Some);
        }
    }
    announce_free_capacity(conn).await?;
    Ok(None)
}

/// Wakes every instance's dispatcher when the transaction commits.
pub(crate) async fn announce_free_capacity(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, '')", DISPATCH_CHANNEL).execute(conn).await?;
    Ok(())
}
