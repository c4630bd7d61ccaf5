//! Retention of Bolna's webhook bodies: about seven rows per call, most of their size the body,
//! kept as received for audits and replays. Processed rows older than the retention are deleted in
//! small batches; rows still waiting to be applied (`pending`, `unmatched`) are never deleted,
//! whatever their age.
//!
//! Why it never gets in the hot paths' way: a batch is a short statement of its own that locks only
//! old rows, and skips any row another transaction holds (`SKIP LOCKED`); webhooks write new rows
//! and nothing references this table. The rows are found through a BRIN index on `received_at`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::service::CallService;

/// Rows deleted per statement: a few milliseconds of work.
pub const RETENTION_BATCH: i64 = 1000;
/// A pause between batches, so a large backlog (the first run on an old database) is worked off
/// in the background instead of in one burst.
const BETWEEN_BATCHES: Duration = Duration::from_millis(50);
/// How often a pass runs at most (sooner for a retention shorter than twice this).
const PASS_EVERY: Duration = Duration::from_secs(300);

/// Deletes up to `batch` processed bodies received more than `keep` ago; returns how many.
pub async fn delete_processed_bodies(
    conn: &mut sqlx::PgConnection,
    keep: Duration,
    batch: i64,
) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        r#"WITH old AS (
               SELECT id FROM webhook_events
               WHERE received_at < now() - make_interval(secs => $1)
                 AND outcome NOT IN ('pending', 'unmatched')
               LIMIT $2
               FOR UPDATE SKIP LOCKED)
           DELETE FROM webhook_events w USING old WHERE w.id = old.id"#,
        keep.as_secs_f64(),
        batch,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

impl CallService {
    /// Deletes processed webhook bodies older than `keep`, a pass every few minutes, until
    /// `shutdown`. Every instance runs it; their batches skip each other's rows.
    pub async fn run_webhook_retention(self, keep: Duration, shutdown: CancellationToken) {
        let every = PASS_EVERY.min(keep / 2).max(Duration::from_secs(5));
        loop {
            match self.retention_pass(keep, &shutdown).await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, "deleted processed webhook bodies past their retention")
                }
                Err(error) => {
                    tracing::warn!(error = %error, "webhook retention pass failed; retrying next pass")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass: batches until one comes back short; returns the rows deleted.
    pub async fn retention_pass(&self, keep: Duration, shutdown: &CancellationToken) -> sqlx::Result<u64> {
        let mut total = 0;
        while !shutdown.is_cancelled() {
            let deleted =
                delete_processed_bodies(&mut *self.pool().acquire().await?, keep, RETENTION_BATCH).await?;
            self.metrics().webhook_bodies_deleted.inc_by(deleted);
            total += deleted;
            if deleted < RETENTION_BATCH as u64 {
                break;
            }
            tokio::time::sleep(BETWEEN_BATCHES).await;
        }
        Ok(total)
    }
}
