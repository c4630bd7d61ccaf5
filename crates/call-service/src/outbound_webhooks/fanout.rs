//! The fan-out's writes: where it has read the `events` outbox to, each user's sequence numbers,
//! and the messages and deliveries it makes of the events. All in the caller's transaction, so a
//! batch of events is fanned out exactly once whatever crashes.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::events::Position;
use crate::UserId;

/// A message to write: one body, sent to each of `endpoints`.
#[derive(Debug, Clone)]
pub struct OutgoingMessage {
    pub user_id: UserId,
    /// The event it was made of; `None` for a ping.
    pub event_id: Option<i64>,
    pub event_type: String,
    pub sequence: i64,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub endpoints: Vec<Uuid>,
}

/// Takes the fan-out's cursor for this transaction; `None` while another instance holds it (that
/// instance is fanning out: one at a time keeps each event's messages single).
pub async fn lock_fanout_cursor(conn: &mut PgConnection) -> sqlx::Result<Option<Position>> {
    let row = sqlx::query!(
        r#"SELECT tx_id::text::bigint AS "tx_id!", event_id FROM webhook_fanout_cursor FOR UPDATE SKIP LOCKED"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| Position { tx_id: r.tx_id, id: r.event_id }))
}

/// Moves the cursor past the events just fanned out.
pub async fn move_fanout_cursor(conn: &mut PgConnection, to: Position) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE webhook_fanout_cursor SET tx_id = $1::text::xid8, event_id = $2",
        to.tx_id.to_string(),
        to.id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Reserves `count` of the user's next sequence numbers; returns the first. The row lock orders
/// concurrent reservations (the fan-out and a ping).
pub async fn reserve_sequences(conn: &mut PgConnection, user: UserId, count: i64) -> sqlx::Result<i64> {
    let last = sqlx::query_scalar!(
        r#"INSERT INTO webhook_sequences AS s (user_id, last) VALUES ($1, $2)
           ON CONFLICT (user_id) DO UPDATE SET last = s.last + EXCLUDED.last
           RETURNING last"#,
        user as UserId,
        count,
    )
    .fetch_one(conn)
    .await?;
    Ok(last - count + 1)
}

/// A delivery just written.
#[derive(Debug, Clone, Copy)]
pub struct EnqueuedDelivery {
    pub id: i64,
    pub endpoint_id: Uuid,
    pub message_id: i64,
}

/// Writes messages and their deliveries, due at once, in one statement (a ping is a batch of one).
/// A message is known by its user and sequence number, which are unique by construction.
pub async fn enqueue_messages(
    conn: &mut PgConnection,
    messages: &[OutgoingMessage],
) -> sqlx::Result<Vec<EnqueuedDelivery>> {
    if messages.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<Uuid> = messages.iter().map(|m| m.user_id.into()).collect();
    let event_ids: Vec<Option<i64>> = messages.iter().map(|m| m.event_id).collect();
    let types: Vec<String> = messages.iter().map(|m| m.event_type.clone()).collect();
    let sequences: Vec<i64> = messages.iter().map(|m| m.sequence).collect();
    let bodies: Vec<String> = messages.iter().map(|m| m.body.clone()).collect();
    let times: Vec<DateTime<Utc>> = messages.iter().map(|m| m.created_at).collect();
    let (mut target_users, mut target_sequences, mut target_endpoints) = (Vec::new(), Vec::new(), Vec::new());
    for message in messages {
        for endpoint in &message.endpoints {
            target_users.push(Uuid::from(message.user_id));
            target_sequences.push(message.sequence);
            target_endpoints.push(*endpoint);
        }
    }
    sqlx::query_as!(
        EnqueuedDelivery,
        r#"WITH messages AS (
               INSERT INTO webhook_messages (user_id, event_id, event_type, sequence, body, created_at)
               SELECT * FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::int8[], $5::text[], $6::timestamptz[])
               RETURNING id, user_id, sequence)
           INSERT INTO webhook_deliveries (endpoint_id, message_id)
           SELECT t.endpoint_id, m.id
             FROM unnest($7::uuid[], $8::int8[], $9::uuid[]) AS t (user_id, sequence, endpoint_id)
             JOIN messages m ON m.user_id = t.user_id AND m.sequence = t.sequence
           RETURNING id, endpoint_id, message_id"#,
        &users,
        &event_ids as &[Option<i64>],
        &types,
        &sequences,
        &bodies,
        &times,
        &target_users,
        &target_sequences,
        &target_endpoints,
    )
    .fetch_all(conn)
    .await
}
