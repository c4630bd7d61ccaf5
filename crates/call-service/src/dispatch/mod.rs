//! The dispatcher: one per instance, woken by `NOTIFY switchboard_dispatch` (a slot or line freed
//! without a queued call of the same user and type to take it, a limit raised, a call scheduled)
//! and by a short tick. Each pass puts the scheduled calls whose time has come in the queue, starts
//! queue heads while slots, send tokens and lines are free, then runs the campaign scheduler; the
//! loop wakes early when a scheduled call, a send token or a campaign is due before the next tick.

mod claim;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use concurrency::DISPATCH_CHANNEL;

use crate::error::CallError;
use crate::service::CallService;
use claim::Claim;

/// Scheduled calls put in the queue per pass.
const ENQUEUED_AT_ONCE: i32 = 500;

/// What a dispatcher pass did.
#[derive(Debug, Clone, Copy, Default)]
pub struct DispatchPass {
    /// Queue heads started.
    pub started: usize,
    /// When the pass should run again at the latest: the next scheduled call, or the next send
    /// token while the rate limit holds calls back.
    pub next_due: Option<DateTime<Utc>>,
}

fn earliest(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl CallService {
    /// Runs the dispatcher until `shutdown` is cancelled.
    pub async fn run_dispatcher(self, shutdown: CancellationToken) {
        let mut listener = None;
        let mut next_due = None;
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let tick = tokio::time::sleep(self.until_due(next_due));
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tick => {}
                notified = wait_for_notification(&mut listener) => {
                    if !notified {
                        listener = None;
                    }
                }
            }
            let dispatched = match self.dispatch_pass().await {
                Ok(pass) => pass.next_due,
                Err(error) => {
                    tracing::warn!(error = %error, "dispatch pass failed; retrying on the next tick");
                    None
                }
            };
            let campaigns = match self.schedule_campaigns().await {
                Ok(pass) => pass.next_due,
                Err(error) => {
                    tracing::warn!(error = %error, "campaign scheduler pass failed; retrying on the next tick");
                    None
                }
            };
            next_due = earliest(dispatched, campaigns);
        }
        tracing::info!("dispatcher stopped");
    }

    /// Puts the scheduled calls whose time has come in the queue, then starts every queue head
    /// that can start now.
    pub async fn dispatch_pass(&self) -> Result<DispatchPass, CallError> {
        let mut pass = DispatchPass::default();
        {
            // More due than one pass takes: the next pass comes at once (next_due is now).
            let mut conn = self.pool().acquire().await?;
            let scheduled =
                concurrency::enqueue_due_scheduled_calls(&mut conn, self.now(), ENQUEUED_AT_ONCE).await?;
            pass.next_due = scheduled.next_due_at;
        }
        if self.bolna_is_held_back() {
            return Ok(pass);
        }
        loop {
            let queues = {
                let mut conn = self.pool().acquire().await?;
                concurrency::startable_queues(&mut conn, self.config().dispatch_batch).await?
            };
            if queues.is_empty() {
                return Ok(pass);
            }
            let mut progress = false;
            for queue in &queues {
                match self.claim(queue).await? {
                    Claim::Claimed(call) => {
                        tracing::debug!(call_id = %call.id, waited_ms = (chrono::Utc::now() - queue.head_due_at).num_milliseconds(), "queued call claimed");
                        self.start_after_commit(Some(*call));
                        pass.started += 1;
                        progress = true;
                    }
                    Claim::Skipped => {}
                    Claim::AccountFull => return Ok(pass),
                    Claim::RateLimited => {
                        // Wake when the next send token frees (a release also wakes this loop).
                        self.metrics().rate_limit_waits.inc();
                        let mut conn = self.pool().acquire().await?;
                        let tokens = concurrency::send_tokens(&mut conn, &self.slot_policy()).await?;
                        pass.next_due = earliest(pass.next_due, tokens.next_free_at);
                        return Ok(pass);
                    }
                }
            }
            if !progress {
                return Ok(pass);
            }
        }
    }

    /// How long the loop may sleep: a tick, or less when something is due sooner (not less than a
    /// short floor, so work that stays due — another instance holds it — is not spun on).
    fn until_due(&self, next_due: Option<DateTime<Utc>>) -> std::time::Duration {
        const FLOOR: std::time::Duration = std::time::Duration::from_millis(20);
        let tick = self.config().dispatch_tick;
        match next_due {
            Some(due) => (due - self.now()).to_std().unwrap_or_default().clamp(FLOOR, tick.max(FLOOR)),
            None => tick,
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        match PgListener::connect_with(self.pool()).await {
            Ok(mut listener) => match listener.listen(DISPATCH_CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(error = %error, "LISTEN failed; dispatching on the tick only");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(error = %error, "no listener connection; dispatching on the tick only");
                None
            }
        }
    }
}

/// Waits for a notification; false when the listener broke (it is then rebuilt). Without a
/// listener it never returns, so the tick drives the loop.
async fn wait_for_notification(listener: &mut Option<PgListener>) -> bool {
    match listener {
        Some(listener) => {
            let received = listener.recv().await.is_ok();
            // Coalesce a burst of notifications already received into one pass.
            while listener.next_buffered().is_some() {}
            received
        }
        None => std::future::pending().await,
    }
}
