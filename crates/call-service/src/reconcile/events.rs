//! Stored webhook events that were not applied: applying failed (`pending`), or no call matched yet
//! (`unmatched`, e.g. the event beat the recording of its execution ID).

use bolna_client::Execution;
use serde_json::Value;

use crate::error::CallError;
use crate::service::CallService;
use crate::webhooks::{apply_execution, EventOutcome};

/// Events looked at per pass, and how far back.
const BATCH: i64 = 200;

impl CallService {
    pub(super) async fn reapply_events(&self) -> Result<usize, CallError> {
        let events = sqlx::query!(
            r#"SELECT id, body AS "body!: Value", outcome FROM webhook_events
               WHERE outcome IN ('pending', 'unmatched') AND body IS NOT NULL
                 AND received_at > now() - interval '1 hour'
               ORDER BY id LIMIT $1"#,
            BATCH
        )
        .fetch_all(self.pool())
        .await?;
        let mut applied = 0;
        for event in events {
            let Ok(execution) = serde_json::from_value::<Execution>(event.body) else { continue };
            let mut tx = self.pool().begin().await?;
            let still_open = sqlx::query_scalar!(
                "SELECT id FROM webhook_events WHERE id = $1 AND outcome IN ('pending', 'unmatched') FOR UPDATE SKIP LOCKED",
                event.id
            )
            .fetch_optional(&mut *tx)
            .await?;
            if still_open.is_none() {
                continue;
            }
            let result = apply_execution(&mut tx, &execution, &self.slot_policy(), self.now(), None).await?;
            if result.outcome == EventOutcome::Unmatched && event.outcome == "unmatched" {
                continue; // still nobody's: leave it (the transaction rolls back)
            }
            crate::webhooks::set_event_outcome(
                &mut tx,
                event.id,
                result.call,
                result.outcome,
                result.detail.as_deref(),
            )
            .await?;
            tx.commit().await?;
            applied += 1;
            self.metrics().reconciled("webhook_event_reapplied");
            tracing::info!(event_id = event.id, execution_id = %execution.id, outcome = result.outcome.as_str(),
                "reconciler applied a stored webhook event");
            self.start_after_commit(result.next);
        }
        Ok(applied)
    }
}
