//! One client's stream: an opening comment, then (on reconnect) the missed events read from the
//! database a page at a time, then the hub's live events, with heartbeats while idle. Events are
//! never sent twice or out of order: anything at or before the last sent position is skipped.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use actix_web::web::Bytes;
use call_service::events::{user_events_after, Position};
use call_service::UserId;
use futures::Stream;
use tokio::time::{Interval, MissedTickBehavior};

use super::frame::{self, Frame};
use super::hub::Subscription;
use super::render::render;
use crate::state::AppState;

/// Events replayed per database read.
const REPLAY_PAGE: i64 = 200;

/// Where a new stream begins.
#[derive(Debug, Clone, Copy)]
pub enum Start {
    /// Live events only.
    Live,
    /// After this position (the client's `Last-Event-ID`).
    After(Position),
    /// The client's `Last-Event-ID` is gone: one `reset`, then live events.
    Expired,
}

struct StreamState {
    state: AppState,
    user: UserId,
    subscription: Subscription,
    /// Still to replay from the database, after this position.
    replay_after: Option<Position>,
    pending: VecDeque<Bytes>,
    /// The last event sent (or replayed up to): anything at or before it is not sent again.
    last: Position,
    heartbeat: Interval,
    finished: bool,
}

/// Wraps `pending` bytes and live frames into an SSE body.
pub fn event_stream(
    state: AppState,
    user: UserId,
    subscription: Subscription,
    start: Start,
) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    let period = state.settings.events.heartbeat();
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut pending = VecDeque::from([frame::opening()]);
    let (replay_after, last) = match start {
        Start::Live => (None, Position::START),
        Start::After(position) => (Some(position), position),
        Start::Expired => {
            pending.push_back(frame::reset("events_expired"));
            state.calls.metrics().event_resets.with_label_values(&["events_expired"]).inc();
            (None, Position::START)
        }
    };
    let stream_state =
        StreamState { state, user, subscription, replay_after, pending, last, heartbeat, finished: false };
    futures::stream::unfold(stream_state, |mut s| async move {
        let bytes = next_bytes(&mut s).await?;
        Some((Ok(bytes), s))
    })
}

async fn next_bytes(s: &mut StreamState) -> Option<Bytes> {
    loop {
        if let Some(bytes) = s.pending.pop_front() {
            return Some(bytes);
        }
        if s.finished {
            return None;
        }
        if let Some(after) = s.replay_after {
            if !replay_page(s, after).await {
                s.finished = true;
                s.pending.push_back(frame::reset("replay_failed"));
            }
            continue;
        }
        let closing = s.state.events.closing().clone();
        tokio::select! {
            biased;
            () = closing.cancelled() => return None,
            received = s.subscription.receiver.recv() => match received {
                Some(frame) => {
                    if let Some(bytes) = accept(s, &frame) {
                        return Some(bytes);
                    }
                }
                None => {
                    s.finished = true;
                    if s.subscription.overflowed.load(Ordering::SeqCst) {
                        s.state.calls.metrics().event_resets.with_label_values(&["client_too_slow"]).inc();
                        return Some(frame::reset("client_too_slow"));
                    }
                    return None;
                }
            },
            _ = s.heartbeat.tick() => return Some(frame::heartbeat()),
        }
    }
}

/// The frame's bytes if it comes after everything sent so far.
fn accept(s: &mut StreamState, frame: &Arc<Frame>) -> Option<Bytes> {
    if frame.position <= s.last {
        return None;
    }
    s.last = frame.position;
    s.state.calls.metrics().events_sent.inc();
    Some(frame.bytes.clone())
}

/// Reads one page of missed events into `pending`; `false` if the database failed.
async fn replay_page(s: &mut StreamState, after: Position) -> bool {
    let rows = match s.state.pool.acquire().await {
        Ok(mut conn) => user_events_after(&mut conn, s.user, after, REPLAY_PAGE).await,
        Err(error) => Err(error),
    };
    let mut rows = match rows {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(error = %error, "replaying events failed");
            return false;
        }
    };
    s.replay_after = match rows.last() {
        Some(last) if rows.len() as i64 == REPLAY_PAGE => Some(last.position),
        _ => None,
    };
    match render(&s.state, &mut rows).await {
        Ok(frames) => {
            for frame in frames {
                if let Some(bytes) = accept(s, &frame) {
                    s.pending.push_back(bytes);
                }
            }
            // Rows whose subject could not be rendered still count as passed.
            if let Some(last) = rows.last() {
                s.last = s.last.max(last.position);
            }
            true
        }
        Err(error) => {
            tracing::warn!(error = %error, "rendering replayed events failed");
            false
        }
    }
}
