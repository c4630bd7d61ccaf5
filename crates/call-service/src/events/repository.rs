//! Reads of the `events` table. `xid8` travels as text and is parsed to `i64` (transaction IDs
//! stay far below 2^63).

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Position;
use crate::UserId;

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    CallUpdated,
    /// Once per call, when it turns terminal; the call as it was then.
    CallEnded,
    CampaignUpdated,
    /// Once per campaign, when it completes.
    CampaignCompleted,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallUpdated => "call.updated",
            Self::CallEnded => "call.ended",
            Self::CampaignUpdated => "campaign.updated",
            Self::CampaignCompleted => "campaign.completed",
        }
    }

    /// Its subject is a call (its row carries the call's snapshot); otherwise a campaign.
    pub fn is_about_a_call(self) -> bool {
        matches!(self, Self::CallUpdated | Self::CallEnded)
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "call.updated" => Some(Self::CallUpdated),
            "call.ended" => Some(Self::CallEnded),
            "campaign.updated" => Some(Self::CampaignUpdated),
            "campaign.completed" => Some(Self::CampaignCompleted),
            _ => None,
        }
    }
}

/// One stored event: what changed, for whom, and where it sits in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub user_id: UserId,
    pub kind: EventKind,
    pub subject_id: Uuid,
    pub position: Position,
    pub created_at: DateTime<Utc>,
    /// For a call's event: the call right after the change (read only when needed).
    pub payload: Option<serde_json::Value>,
}

struct RawEvent {
    id: i64,
    user_id: Uuid,
    kind: String,
    subject_id: Uuid,
    tx_id: Option<i64>,
    created_at: DateTime<Utc>,
    payload: Option<serde_json::Value>,
}

impl RawEvent {
    fn into_row(self) -> Option<EventRow> {
        Some(EventRow {
            id: self.id,
            user_id: UserId::from(self.user_id),
            kind: EventKind::parse(&self.kind)?,
            subject_id: self.subject_id,
            position: Position { tx_id: self.tx_id?, id: self.id },
            created_at: self.created_at,
            payload: self.payload,
        })
    }
}

fn rows(raw: Vec<RawEvent>) -> Vec<EventRow> {
    raw.into_iter().filter_map(RawEvent::into_row).collect()
}

/// The position of the newest event every reader can see now (`START` when there is none).
pub async fn latest_position(conn: &mut PgConnection) -> sqlx::Result<Position> {
    let row = sqlx::query!(
        r#"SELECT tx_id::text::bigint AS "tx_id!", id FROM events
           WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY tx_id DESC, id DESC LIMIT 1"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map_or(Position::START, |r| Position { tx_id: r.tx_id, id: r.id }))
}

/// Every user's events after `after` that every reader can see, in stream order, without their
/// payloads (see [`load_payloads`]).
pub async fn events_after(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    let raw = sqlx::query_as!(
        RawEvent,
        r#"SELECT id, user_id, kind, subject_id, tx_id::text::bigint AS tx_id, created_at, NULL::jsonb AS payload FROM events
           WHERE (tx_id, id) > ($1::text::xid8, $2)
             AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY tx_id, id LIMIT $3"#,
        after.tx_id.to_string(),
        after.id,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows(raw))
}

/// Fills in the snapshots of the calls' rows that lack one (one query; campaign rows have none).
pub async fn load_payloads(conn: &mut PgConnection, rows: &mut [EventRow]) -> sqlx::Result<()> {
    let ids: Vec<i64> =
        rows.iter().filter(|r| r.kind.is_about_a_call() && r.payload.is_none()).map(|r| r.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let found =
        sqlx::query!("SELECT id, payload FROM events WHERE id = ANY($1) AND payload IS NOT NULL", &ids)
            .fetch_all(conn)
            .await?;
    let mut payloads: std::collections::HashMap<i64, serde_json::Value> =
        found.into_iter().filter_map(|r| Some((r.id, r.payload?))).collect();
    for row in rows.iter_mut() {
        if let Some(payload) = payloads.remove(&row.id) {
            row.payload = Some(payload);
        }
    }
    Ok(())
}

/// One user's events after `after` that every reader can see, in stream order, with payloads
/// (replay).
pub async fn user_events_after(
    conn: &mut PgConnection,
    user: UserId,
    after: Position,
    limit: i64,
) -> sqlx::Result<Vec<EventRow>> {
    let raw = sqlx::query_as!(
        RawEvent,
        r#"SELECT id, user_id, kind, subject_id, tx_id::text::bigint AS tx_id, created_at, payload FROM events
           WHERE user_id = $1 AND (tx_id, id) > ($2::text::xid8, $3)
             AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
           ORDER BY tx_id, id LIMIT $4"#,
        user as UserId,
        after.tx_id.to_string(),
        after.id,
        limit,
    )
    .fetch_all(conn)
    .await?;
    Ok(rows(raw))
}

/// Where the user's event `id` sits; `None` when it is gone (pruned), unknown, or another user's.
pub async fn event_position(
    conn: &mut PgConnection,
    user: UserId,
    id: i64,
) -> sqlx::Result<Option<Position>> {
    let row = sqlx::query!(
        r#"SELECT tx_id::text::bigint AS "tx_id!" FROM events WHERE id = $1 AND user_id = $2"#,
        id,
        user as UserId,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Position { tx_id: r.tx_id, id }))
}

/// Deletes events created before `before` that outbound webhooks have fanned out (the outbox
/// keeps what it has not read, however old); returns how many.
pub async fn prune_events(conn: &mut PgConnection, before: DateTime<Utc>) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        r#"DELETE FROM events
            WHERE created_at < $1
              AND (tx_id, id) <= (SELECT tx_id, event_id FROM webhook_fanout_cursor)"#,
        before
    )
    .execute(conn)
    .await?
    .rows_affected())
}
