//! Reads of `calls` for the API: one call, and a user's calls newest first with a cursor.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::Call;
use super::status::CallStatus;
use crate::{select_call, CallId, CallType, UserId};

/// A user's call (`None` for another user's call, so it reads as 404).
pub async fn get_call(conn: &mut PgConnection, user: UserId, id: CallId) -> sqlx::Result<Option<Call>> {
    select_call!("WHERE id = $1 AND user_id = $2", id as CallId, user as UserId).fetch_optional(conn).await
}

/// Any call, for internal use.
pub async fn get_call_by_id(conn: &mut PgConnection, id: CallId) -> sqlx::Result<Option<Call>> {
    select_call!("WHERE id = $1", id as CallId).fetch_optional(conn).await
}

/// Where a page of calls starts: after the call with this creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallCursor {
    pub created_at: DateTime<Utc>,
    pub id: CallId,
}

impl CallCursor {
    /// Opaque text for clients: `<microseconds>.<uuid>`.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.created_at.timestamp_micros(), self.id)
    }

    /// Only what [`Self::encode`] writes: up to 18 digits, a dot, a lowercase hyphenated uuid
    /// (the API describes exactly this pattern).
    pub fn decode(text: &str) -> Option<Self> {
        let (micros, id) = text.split_once('.')?;
        let digits = !micros.is_empty() && micros.len() <= 18 && micros.bytes().all(|b| b.is_ascii_digit());
        let id: Uuid = id.parse().ok().filter(|u: &Uuid| u.hyphenated().to_string() == id)?;
        if !digits {
            return None;
        }
        let created_at = DateTime::from_timestamp_micros(micros.parse().ok()?)?;
        Some(Self { created_at, id: id.into() })
    }
}

/// Filters of the call list.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    pub status: Option<CallStatus>,
    pub call_type: Option<CallType>,
    pub campaign_id: Option<Uuid>,
}

/// A page of a user's calls, newest first; fetches `limit + 1` to know whether more follow.
pub async fn list_calls(
    conn: &mut PgConnection,
    user: UserId,
    filter: &CallFilter,
    after: Option<CallCursor>,
    limit: i64,
) -> sqlx::Result<(Vec<Call>, Option<CallCursor>)> {
    let mut calls = select_call!(
        "WHERE user_id = $1
           AND ($2::text IS NULL OR status = $2)
           AND ($3::text IS NULL OR call_type = $3)
           AND ($4::uuid IS NULL OR campaign_id = $4)
           AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
         ORDER BY created_at DESC, id DESC
         LIMIT $7",
        user as UserId,
        filter.status.map(CallStatus::as_str),
        filter.call_type.map(CallType::as_str),
        filter.campaign_id,
        after.map(|c| c.created_at),
        after.map(|c| c.id.as_uuid()),
        limit + 1,
    )
    .fetch_all(conn)
    .await?;
    let next = if calls.len() as i64 > limit {
        calls.truncate(limit as usize);
        calls.last().map(|c| CallCursor { created_at: c.created_at, id: c.id })
    } else {
        None
    };
    Ok((calls, next))
}

/// The calls with these ids (any user's), for rendering events.
pub async fn get_calls_by_ids(conn: &mut PgConnection, ids: &[Uuid]) -> sqlx::Result<Vec<Call>> {
    select_call!("WHERE id = ANY($1)", ids).fetch_all(conn).await
}
