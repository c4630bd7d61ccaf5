//! Browser tickets: `EventSource` cannot send `Authorization`, so a client trades its API key for
//! a short-lived, single-use ticket to put in the stream's URL. Only a SHA-256 of a ticket is
//! stored; redeeming marks it used in the same statement, so two instances cannot both accept it.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::users::{random_secret, secret_is_plausible, ApiKeyHash};
use crate::UserId;

const PREFIX: &str = "sbt_";
const RANDOM_LEN: usize = 40;

/// A ticket just issued: its text exists only in this answer.
#[derive(Debug, Clone)]
pub struct IssuedTicket {
    pub ticket: String,
    pub expires_at: DateTime<Utc>,
}

/// SHA-256 of a ticket, as for API keys.
fn hash(ticket: &str) -> [u8; 32] {
    ApiKeyHash::of(ticket).0
}

fn plausible(ticket: &str) -> bool {
    secret_is_plausible(ticket, PREFIX, RANDOM_LEN)
}

/// Issues a ticket for `user`, valid until `expires_at`.
pub async fn issue_ticket(
    conn: &mut PgConnection,
    user: UserId,
    expires_at: DateTime<Utc>,
) -> sqlx::Result<IssuedTicket> {
    let ticket = random_secret(PREFIX, RANDOM_LEN);
    sqlx::query!(
        "INSERT INTO event_tickets (ticket_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        &hash(&ticket)[..],
        user as UserId,
        expires_at,
    )
    .execute(conn)
    .await?;
    Ok(IssuedTicket { ticket, expires_at })
}

/// The ticket's user, if the ticket exists, is unused and has not expired at `now`; it is used up.
pub async fn redeem_ticket(
    conn: &mut PgConnection,
    presented: &str,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<UserId>> {
    if !plausible(presented) {
        return Ok(None);
    }
    let row = sqlx::query!(
        r#"UPDATE event_tickets SET used_at = $2
           WHERE ticket_hash = $1 AND used_at IS NULL AND expires_at > $2
           RETURNING user_id AS "user_id: UserId""#,
        &hash(presented)[..],
        now,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.user_id))
}

/// Deletes tickets that expired before `before`.
pub async fn prune_tickets(conn: &mut PgConnection, before: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!("DELETE FROM event_tickets WHERE expires_at < $1", before)
        .execute(conn)
        .await?
        .rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ticket_shaped_text_is_plausible() {
        assert!(plausible(&format!("sbt_{}", "a".repeat(40))));
        assert!(!plausible(&format!("sb_{}", "a".repeat(41))));
        assert!(!plausible("sbt_short"));
        assert!(!plausible(&format!("sbt_{}!", "a".repeat(39))));
    }
}
