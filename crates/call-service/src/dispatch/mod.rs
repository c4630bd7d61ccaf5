//! The dispatcher: one per instance, woken by `NOTIFY switchboard_dispatch` (a slot or line freed
//! without a queued call of the same user and type to take it, a limit raised) and by a short
//! tick. Each pass starts queue heads while slots and lines are free, then runs the campaign
//! scheduler; the loop wakes early when a campaign is due before the next tick.

mod claim;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use concurrency::DISPATCH_CHANNEL;

use crate::error::CallError;
use crate::service::CallService;
use claim::Claim;

impl CallService {
    /// Runs the dispatcher until `shutdown` is cancelled.
    pub async fn run_dispatcher(self, shutdown: CancellationToken) {
        let mut listener = None;
        let mut next_campaign = None;
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            let tick = tokio::time::sleep(self.until_due(next_campaign));
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tick => {}
                notified = wait_for_notification(&mut listener) => {
                    if !notified {
                        listener = None;
                    }
                }
            }
            if let Err(error) = self.dispatch_pass().await {
                tracing::warn!(error = %error, "dispatch pass failed; retrying on the next tick");
            }
            next_campaign = match self.schedule_campaigns().await {
                Ok(pass) => pass.next_due,
                Err(error) => {
                    tracing::warn!(error = %error, "campaign scheduler pass failed; retrying on the next tick");
                    None
                }
            };
        }
        tracing::info!("dispatcher stopped");
    }

    /// Starts every queue head that can start now. Returns how many calls were started.
    pub async fn dispatch_pass(&self) -> Result<usize, CallError> {
        let mut started = 0;
        if self.bolna_is_held_back() {
            return Ok(0);
        }
        loop {
            let queues = {
                let mut conn = self.pool().acquire().await?;
                concurrency::startable_queues(&mut conn, self.config().dispatch_batch).await?
            };
            if queues.is_empty() {
                return Ok(started);
            }
            let mut progress = false;
            for queue in &queues {
                match self.claim(queue).await? {
                    Claim::Claimed(call) => {
                        tracing::debug!(call_id = %call.id, waited_ms = (chrono::Utc::now() - queue.head_created_at).num_milliseconds(), "queued call claimed");
                        self.start_after_commit(Some(*call));
                        started += 1;
                        progress = true;
                    }
                    Claim::Skipped => {}
                    Claim::AccountFull => return Ok(started),
                }
            }
            if !progress {
                return Ok(started);
            }
        }
    }

    /// How long the loop may sleep: a tick, or less when a campaign is due sooner (not less than
    /// a short floor, so a campaign that stays due — another instance holds it — is not spun on).
    fn until_due(&self, next_campaign: Option<chrono::DateTime<chrono::Utc>>) -> std::time::Duration {
        const FLOOR: std::time::Duration = std::time::Duration::from_millis(20);
        let tick = self.config().dispatch_tick;
        match next_campaign {
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
