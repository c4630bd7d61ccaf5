//! The reconciler: nothing stays stuck. On every instance, every `reconciler.interval_seconds`;
//! one instance at a time does a pass (a session advisory lock), and no transaction is held open
//! across a request to Bolna. Each pass, in order:
//! 1. webhook events stored but not applied (processing failed, or they arrived before their call
//!    was known) are applied again;
//! 2. calls `initiating` for longer than `reconciler.initiating_timeout_seconds` are looked up at
//!    Bolna — by execution ID when recorded, else among the agent's executions around the call's
//!    creation, matched by our call ID in `recipient_data` — and what Bolna knows is adopted. A call
//!    Bolna still does not know after `reconciler.not_placed_grace_seconds` is `failed` ("not
//!    placed") and its slot freed. A call is never placed again automatically.
//! 3. slots whose lease expired without a line-free webhook: Bolna is asked; a live call's lease is
//!    extended, an ended call is applied (freeing the slot), an execution Bolna does not know is
//!    released with that reason.
//! 4. calls whose line is free (`call-disconnected`) but whose final status has not come a lease
//!    (`reconciler.lease_seconds`) after their last change: Bolna is asked and its final status
//!    adopted; a call still in post-processing is asked again a lease later.
//!
//! Every action is logged with its reason and counted (`switchboard_reconciler_actions_total`).

mod events;
mod final_status;
mod initiating;
mod leases;

use sqlx::{Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::error::CallError;
use crate::service::CallService;

/// The advisory lock key of a reconciler pass ("SWRC").
const PASS_LOCK: i64 = 0x5357_5243;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PassReport {
    pub events_applied: usize,
    pub initiating_resolved: usize,
    pub leases_checked: usize,
    pub final_statuses_checked: usize,
    /// False when another instance held the pass.
    pub ran: bool,
}

impl CallService {
    /// Runs reconciler passes every interval until `shutdown` is cancelled.
    pub async fn run_reconciler(self, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.config().reconciler.interval) => {}
            }
            match self.reconcile_pass().await {
                Ok(report) if report.ran => tracing::debug!(?report, "reconciler pass"),
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(error = %error, "reconciler pass failed; retrying next interval")
                }
            }
        }
        tracing::info!("reconciler stopped");
    }

    /// One pass, if no other instance is running one.
    pub async fn reconcile_pass(&self) -> Result<PassReport, CallError> {
        let options = self.pool().connect_options();
        let mut lock_conn = PgConnection::connect_with(&options).await?;
        let got: bool = sqlx::query_scalar!(r#"SELECT pg_try_advisory_lock($1) AS "got!""#, PASS_LOCK)
            .fetch_one(&mut lock_conn)
            .await?;
        if !got {
            return Ok(PassReport::default());
        }
        let result = async {
            Ok::<_, CallError>(PassReport {
                events_applied: self.reapply_events().await?,
                initiating_resolved: self.resolve_initiating().await?,
                leases_checked: self.check_expired_leases().await?,
                final_statuses_checked: self.finish_calls_missing_their_final_status().await?,
                ran: true,
            })
        }
        .await;
        // Closing the session releases the lock, also if the unlock itself fails.
        let _ =
            sqlx::query_scalar!("SELECT pg_advisory_unlock($1)", PASS_LOCK).fetch_one(&mut lock_conn).await;
        lock_conn.close().await.ok();
        result
    }
}
