//! The fan-out: follows the `events` outbox from its durable cursor and turns each event that one
//! of its user's endpoints subscribes to into a message (the body every endpoint is sent, with the
//! user's next sequence number) and one delivery per such endpoint that is enabled. A disabled
//! endpoint gets no delivery, but the message is kept: a replay after it is enabled again sends
//! what it missed. The cursor's row lock lets one instance do it at a time; the messages and the
//! cursor's move commit together.

use std::collections::HashMap;

use call_service::events::{events_after, EventRow};
use call_service::outbound_webhooks::{
    endpoints_of_users, enqueue_messages, lock_fanout_cursor, move_fanout_cursor, reserve_sequences,
    OutgoingMessage,
};
use call_service::{CancellationToken, UserId};
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

use crate::events::render::render_subjects;
use crate::state::AppState;

/// Events read per transaction.
const BATCH: i64 = 500;

/// Runs until `shutdown`, every `outbound_webhooks.poll_interval_ms` (at once again while batches
/// come full).
pub async fn run_fanout(state: AppState, shutdown: CancellationToken) {
    let mut poll = tokio::time::interval(state.settings.outbound_webhooks.poll_interval());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = poll.tick() => {}
        }
        loop {
            match fan_out_batch(&state).await {
                Ok(true) if !shutdown.is_cancelled() => continue,
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(error = %error, "outbound webhooks: fanning out events failed");
                    break;
                }
            }
        }
    }
}

/// The body sent: the specification's `type`, `timestamp` and `data`, with the event's ID and the
/// user's sequence number beside them. `data` is the subject as the API returns it.
pub fn message_body(
    kind: &str,
    at: DateTime<Utc>,
    event_id: Option<i64>,
    sequence: i64,
    data: &str,
) -> String {
    let kind = serde_json::Value::from(kind);
    let at = serde_json::Value::from(at.to_rfc3339_opts(SecondsFormat::Millis, true));
    let event_id = event_id.map_or(serde_json::Value::Null, serde_json::Value::from);
    format!(r#"{{"type":{kind},"timestamp":{at},"event_id":{event_id},"sequence":{sequence},"data":{data}}}"#)
}

/// One batch; `true` when it was full (more may be waiting).
async fn fan_out_batch(state: &AppState) -> anyhow::Result<bool> {
    let mut tx = state.pool.begin().await?;
    let Some(cursor) = lock_fanout_cursor(&mut tx).await? else { return Ok(false) };
    let rows = events_after(&mut tx, cursor, BATCH).await?;
    let Some(last) = rows.last().map(|row| row.position) else { return Ok(false) };
    let full = rows.len() as i64 == BATCH;

    let mut users: Vec<Uuid> = rows.iter().map(|row| row.user_id.into()).collect();
    users.sort_unstable();
    users.dedup();
    let endpoints = endpoints_of_users(&mut tx, &users).await?;
    let subscribed = |row: &EventRow| {
        endpoints
            .iter()
            .filter(|e| e.user_id == row.user_id && e.events.iter().any(|kind| kind == row.kind.as_str()))
            .collect::<Vec<_>>()
    };
    let targets = |row: &EventRow| -> Vec<Uuid> {
        subscribed(row).into_iter().filter(|e| !e.disabled).map(|e| e.id).collect()
    };
    let mut wanted: Vec<EventRow> = rows.into_iter().filter(|row| !subscribed(row).is_empty()).collect();
    if !wanted.is_empty() {
        let subjects = render_subjects(state, &mut wanted).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let rendered: Vec<(&EventRow, String)> =
            wanted.iter().zip(subjects).filter_map(|(row, subject)| Some((row, subject?))).collect();
        let mut counts: HashMap<UserId, i64> = HashMap::new();
        for (row, _) in &rendered {
            *counts.entry(row.user_id).or_default() += 1;
        }
        let mut next: HashMap<UserId, i64> = HashMap::new();
        for (user, count) in counts {
            next.insert(user, reserve_sequences(&mut tx, user, count).await?);
        }
        let messages: Vec<OutgoingMessage> = rendered
            .into_iter()
            .filter_map(|(row, subject)| {
                let slot = next.get_mut(&row.user_id)?;
                let sequence = *slot;
                *slot += 1;
                Some(OutgoingMessage {
                    user_id: row.user_id,
                    event_id: Some(row.id),
                    event_type: row.kind.as_str().to_owned(),
                    sequence,
                    body: message_body(row.kind.as_str(), row.created_at, Some(row.id), sequence, &subject),
                    created_at: row.created_at,
                    endpoints: targets(row),
                })
            })
            .collect();
        enqueue_messages(&mut tx, &messages).await?;
        state.outbound.metrics.messages.inc_by(messages.len() as u64);
    }
    move_fanout_cursor(&mut tx, last).await?;
    tx.commit().await?;
    Ok(full)
}
