//! Slots whose lease expired without a line-free webhook (webhooks lost or late): ask Bolna.

use crate::calls::ending::{end_call, Ending};
use crate::calls::store::lock_call;
use crate::error::CallError;
use crate::service::CallService;
use crate::webhooks::apply_execution;

/// Expired slots looked at per pass.
const BATCH: i64 = 50;

impl CallService {
    pub(super) async fn check_expired_leases(&self) -> Result<usize, CallError> {
        let expired = {
            let mut conn = self.pool().acquire().await?;
            concurrency::expired_leases(&mut conn, BATCH).await?
        };
        let checked = expired.len();
        for slot in expired {
            let Some(execution_id) = slot.bolna_execution_id else { continue };
            match self.bolna_request("get_execution", self.bolna().get_execution(&execution_id)).await {
                Ok(execution) => {
                    let mut tx = self.pool().begin().await?;
                    // Applies what Bolna says: frees the slot if the line is free, else renews the lease.
                    let applied =
                        apply_execution(&mut tx, &execution, &self.slot_policy(), self.now(), None).await?;
                    tx.commit().await?;
                    let kind = if execution.status.line_is_free() {
                        "lease_expired_call_ended"
                    } else {
                        "lease_extended"
                    };
                    self.metrics().reconciled(kind);
                    tracing::info!(call_id = %slot.id, execution_id = %execution_id, status = %execution.status, kind,
                        "reconciler checked an expired lease");
                    self.start_after_commit(applied.next);
                    // Still deferred by its agent's calling hours (its webhook lost, or the stop
                    // failed): taken back now.
                    self.take_back_if_rescheduled(slot.id, &execution);
                }
                Err(error) if error.status() == Some(404) => {
                    let reason = format!("Bolna does not know execution {execution_id}");
                    let mut tx = self.pool().begin().await?;
                    lock_call(&mut tx, slot.id).await?;
                    let next =
                        end_call(&mut tx, slot.id, Ending::Failed(&reason), &self.slot_policy(), self.now())
                            .await?;
                    tx.commit().await?;
                    self.metrics().reconciled("lease_released_unknown_execution");
                    tracing::warn!(call_id = %slot.id, reason, "reconciler released a slot");
                    self.start_after_commit(next);
                }
                Err(error) => {
                    tracing::warn!(call_id = %slot.id, error = %error, "reconciler could not ask Bolna; later")
                }
            }
        }
        Ok(checked)
    }
}
