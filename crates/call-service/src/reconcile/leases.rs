//! Slots whose lease expired without a line-free webhook (webhooks lost or late): ask Bolna.

use crate::calls::handover::release_and_hand_over;
use crate::calls::mark_failed;
use crate::error::CallError;
use crate::service::CallService;
use crate::webhooks::apply_execution;
use crate::CallId;

impl CallService {
    pub(super) async fn check_expired_leases(&self) -> Result<usize, CallError> {
        let expired = sqlx::query!(
            r#"SELECT id AS "id: CallId", bolna_execution_id AS "execution_id!" FROM active_calls
               WHERE lease_expires_at < now() AND bolna_execution_id IS NOT NULL
               ORDER BY lease_expires_at LIMIT 50"#
        )
        .fetch_all(self.pool())
        .await?;
        let checked = expired.len();
        for slot in expired {
            match self.bolna_request("get_execution", self.bolna().get_execution(&slot.execution_id)).await {
                Ok(execution) => {
                    let mut tx = self.pool().begin().await?;
                    // Applies what Bolna says: frees the slot if the line is free, else extends the lease.
                    let applied = apply_execution(&mut tx, &execution, self.config(), None).await?;
                    tx.commit().await?;
                    let kind = if execution.status.line_is_free() {
                        "lease_expired_call_ended"
                    } else {
                        "lease_extended"
                    };
                    self.metrics().reconciled(kind);
                    tracing::info!(call_id = %slot.id, execution_id = %slot.execution_id, status = %execution.status, kind,
                        "reconciler checked an expired lease");
                    if let Some(next) = applied.next {
                        self.spawn_start(next);
                    }
                }
                Err(error) if error.status() == Some(404) => {
                    let reason = format!("Bolna does not know execution {}", slot.execution_id);
                    let mut tx = self.pool().begin().await?;
                    sqlx::query!("SELECT id FROM calls WHERE id = $1 FOR UPDATE", slot.id as CallId)
                        .fetch_optional(&mut *tx)
                        .await?;
                    mark_failed(&mut tx, slot.id, &reason, self.config()).await?;
                    let next = release_and_hand_over(&mut tx, slot.id, &reason, self.config()).await?;
                    tx.commit().await?;
                    self.metrics().reconciled("lease_released_unknown_execution");
                    tracing::warn!(call_id = %slot.id, reason, "reconciler released a slot");
                    if let Some(next) = next {
                        self.spawn_start(next);
                    }
                }
                Err(error) => {
                    tracing::warn!(call_id = %slot.id, error = %error, "reconciler could not ask Bolna; later")
                }
            }
        }
        Ok(checked)
    }
}
