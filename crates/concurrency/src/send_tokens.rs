//! Bolna's rate limit as a pool of send tokens in `bolna_send_tokens`, shared by every instance:
//! one row per `POST /call` Bolna allows in its window. A call takes a token with its slot (rule 5
//! in `sql/ledger.sql`) and the token is free again a window later, so Switchboard never sends more
//! than the pool's size in any window, however many instances run. Rows rather than one counter,
//! for the reason the account lines are rows: claims with `SKIP LOCKED` never queue behind each
//! other, where a single bucket row would serialise every admission of every user.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::policy::SlotPolicy;

/// Makes the pool exactly `size` tokens: adds missing rows, removes rows above `size`.
#[tracing::instrument(name = "Size the send token pool", skip(conn))]
pub async fn sync_send_tokens(conn: &mut PgConnection, size: u32) -> sqlx::Result<()> {
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    sqlx::query!(
        "INSERT INTO bolna_send_tokens (token_no) SELECT generate_series(1, $1) ON CONFLICT (token_no) DO NOTHING",
        size
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("DELETE FROM bolna_send_tokens WHERE token_no > $1", size).execute(&mut *conn).await?;
    Ok(())
}

/// The send tokens now: how many are free, and when the next taken one frees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTokens {
    pub free: i64,
    /// `None` when none is taken.
    pub next_free_at: Option<DateTime<Utc>>,
}

pub async fn send_tokens(conn: &mut PgConnection, policy: &SlotPolicy) -> sqlx::Result<SendTokens> {
    let row = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE taken_at <= now() - make_interval(secs => $2)) AS "free!",
                  min(taken_at) FILTER (WHERE taken_at > now() - make_interval(secs => $2))
                    + make_interval(secs => $2) AS next_free_at
           FROM bolna_send_tokens WHERE token_no <= $1"#,
        policy.tokens(),
        policy.send_window_seconds()
    )
    .fetch_one(conn)
    .await?;
    Ok(SendTokens { free: row.free, next_free_at: row.next_free_at })
}
