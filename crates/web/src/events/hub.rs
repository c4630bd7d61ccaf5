//! One per instance: follows the `events` table in stream order and hands each new event to the
//! open streams of its user, through a bounded buffer per stream. A stream whose buffer is full
//! is cut off (it then sends `reset` and closes), so a slow client costs at most its buffer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use call_service::events::{events_after, latest_position, prune_events, prune_tickets, Position};
use call_service::{CancellationToken, UserId};
use tokio::sync::{mpsc, watch};

use super::frame::Frame;
use super::render::render;
use crate::state::AppState;

/// Rows read per look at the table.
const BATCH: i64 = 1_000;
/// How often old events and tickets are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The fan-out point shared by the instance's streams (cheap to clone).
#[derive(Debug, Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    subscribers: Mutex<HashMap<UserId, Vec<Subscriber>>>,
    /// `true` once the hub knows where the table ends (streams wait for it, so none misses an event
    /// committed while the instance was starting).
    ready: watch::Sender<bool>,
    buffer: usize,
    /// Cancelled when the server shuts down: open streams end so shutdown need not wait for them.
    closing: CancellationToken,
}

#[derive(Debug)]
struct Subscriber {
    sender: mpsc::Sender<Arc<Frame>>,
    overflowed: Arc<AtomicBool>,
}

/// A stream's end of the hub: events for one user, in stream order.
#[derive(Debug)]
pub struct Subscription {
    pub receiver: mpsc::Receiver<Arc<Frame>>,
    /// Set when the hub cut the stream off because its buffer was full.
    pub overflowed: Arc<AtomicBool>,
}

impl EventHub {
    /// `buffer`: events held per stream before it is cut off.
    pub fn new(buffer: usize) -> Self {
        let (ready, _) = watch::channel(false);
        Self {
            inner: Arc::new(Inner {
                subscribers: Mutex::new(HashMap::new()),
                ready,
                buffer: buffer.max(1),
                closing: CancellationToken::new(),
            }),
        }
    }

    fn subscribers(&self) -> MutexGuard<'_, HashMap<UserId, Vec<Subscriber>>> {
        // A panic while holding the lock cannot leave the map inconsistent: keep serving.
        self.inner.subscribers.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a stream for `user`; every event the hub hands out from now on reaches it.
    /// Waits (up to `wait`) until the hub has found where the table ends; `None` if it has not.
    pub async fn subscribe(&self, user: UserId, wait: Duration) -> Option<Subscription> {
        let mut ready = self.inner.ready.subscribe();
        if tokio::time::timeout(wait, ready.wait_for(|ready| *ready)).await.ok()?.is_err() {
            return None;
        }
        let (sender, receiver) = mpsc::channel(self.inner.buffer);
        let overflowed = Arc::new(AtomicBool::new(false));
        self.subscribers()
            .entry(user)
            .or_default()
            .push(Subscriber { sender, overflowed: overflowed.clone() });
        Some(Subscription { receiver, overflowed })
    }

    /// Open streams on this instance.
    pub fn streams(&self) -> usize {
        self.subscribers().values().map(Vec::len).sum()
    }

    /// Cancelled at shutdown.
    pub fn closing(&self) -> &CancellationToken {
        &self.inner.closing
    }

    /// Ends every open stream (shutdown).
    pub fn close(&self) {
        self.inner.closing.cancel();
    }

    fn listening(&self, user: UserId) -> bool {
        self.subscribers().contains_key(&user)
    }

    /// Hands frames to their users' streams; drops streams that went away or fell behind.
    fn deliver(&self, frames: Vec<(UserId, Arc<Frame>)>) {
        let mut subscribers = self.subscribers();
        for (user, frame) in frames {
            let Some(streams) = subscribers.get_mut(&user) else { continue };
            streams.retain(|stream| match stream.sender.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    stream.overflowed.store(true, Ordering::SeqCst);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        }
        subscribers.retain(|_, streams| {
            streams.retain(|stream| !stream.sender.is_closed());
            !streams.is_empty()
        });
    }
}

/// Follows the table until `shutdown`: every `events.poll_interval_ms`, reads what became visible
/// since the last look (in stream order), renders the events of users with open streams and hands
/// them out. Deletes events past `events.retention_seconds` and expired tickets once a minute.
pub async fn run_hub(state: AppState, shutdown: CancellationToken) {
    let hub = state.events.clone();
    let settings = state.settings.events.clone();
    let mut cursor = loop {
        match start_position(&state).await {
            Ok(position) => break position,
            Err(error) => tracing::warn!(error = %error, "event hub cannot read the events table yet"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    hub.inner.ready.send_replace(true);
    let mut poll = tokio::time::interval(settings.poll_interval());
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = poll.tick() => {}
        }
        loop {
            match step(&state, &hub, cursor).await {
                Ok((next, full)) => {
                    cursor = next;
                    if !full {
                        break;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %error, "event hub could not read new events");
                    break;
                }
            }
        }
        state.calls.metrics().event_streams.set(hub.streams() as i64);
        if last_prune.elapsed() >= PRUNE_EVERY {
            last_prune = tokio::time::Instant::now();
            prune(&state, settings.retention()).await;
        }
    }
    hub.close();
}

async fn start_position(state: &AppState) -> sqlx::Result<Position> {
    let mut conn = state.pool.acquire().await?;
    latest_position(&mut conn).await
}

/// One batch: returns the new cursor and whether the batch was full (more may be waiting).
async fn step(state: &AppState, hub: &EventHub, cursor: Position) -> anyhow::Result<(Position, bool)> {
    let rows = {
        let mut conn = state.pool.acquire().await?;
        events_after(&mut conn, cursor, BATCH).await?
    };
    let Some(last) = rows.last() else { return Ok((cursor, false)) };
    let next = last.position;
    let full = rows.len() as i64 == BATCH;
    let mut wanted: Vec<_> = rows.into_iter().filter(|row| hub.listening(row.user_id)).collect();
    if !wanted.is_empty() {
        let frames = render(state, &mut wanted).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let owners: HashMap<Position, UserId> = wanted.iter().map(|r| (r.position, r.user_id)).collect();
        let frames = frames
            .into_iter()
            .filter_map(|frame| owners.get(&frame.position).map(|user| (*user, frame)))
            .collect();
        hub.deliver(frames);
    }
    Ok((next, full))
}

async fn prune(state: &AppState, retention: Duration) {
    let now = chrono::Utc::now();
    let Ok(retention) = chrono::Duration::from_std(retention) else { return };
    let result = async {
        let mut conn = state.pool.acquire().await?;
        let events = prune_events(&mut conn, now - retention).await?;
        let tickets = prune_tickets(&mut conn, now - chrono::Duration::hours(1)).await?;
        Ok::<_, sqlx::Error>((events, tickets))
    }
    .await;
    match result {
        Ok((events, tickets)) if events + tickets > 0 => {
            tracing::debug!(events, tickets, "pruned old events and tickets")
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %error, "pruning old events failed"),
    }
}
