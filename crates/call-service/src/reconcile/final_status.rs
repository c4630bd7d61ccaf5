//! Calls whose line is free (`call-disconnected`, the slot already given back) but whose final
//! status never came: the final webhook was lost. A lease after their last change, Bolna is asked
//! and its final status (with the transcript, cost and the rest) adopted; a call Bolna is still
//! post-processing is asked again a lease later.

use crate::calls::store::{mark_failed, touch_call, unfinished_after_line_free};
use crate::error::CallError;
use crate::service::CallService;
use crate::webhooks::apply_execution;

/// Calls looked at per pass.
const BATCH: i64 = 50;

impl CallService {
    pub(super) async fn finish_calls_missing_their_final_status(&self) -> Result<usize, CallError> {
        let waiting = {
            let mut conn = self.pool().acquire().await?;
            unfinished_after_line_free(&mut conn, self.slot_policy().lease, BATCH).await?
        };
        let checked = waiting.len();
        for (id, execution_id) in waiting {
            match self.bolna_request("get_execution", self.bolna().get_execution(&execution_id)).await {
                Ok(execution) => {
                    let mut tx = self.pool().begin().await?;
                    apply_execution(&mut tx, &execution, &self.slot_policy(), self.now(), None).await?;
                    let finished = execution.status.is_terminal();
                    if !finished {
                        touch_call(&mut tx, id).await?;
                    }
                    tx.commit().await?;
                    let kind = if finished { "final_status_adopted" } else { "final_status_pending" };
                    self.metrics().reconciled(kind);
                    tracing::info!(call_id = %id, execution_id = %execution_id, status = %execution.status, kind,
                        "reconciler asked Bolna for a call's final status");
                }
                Err(error) if error.status() == Some(404) => {
                    let reason =
                        format!("Bolna does not know execution {execution_id}; its final status is lost");
                    let mut tx = self.pool().begin().await?;
                    mark_failed(&mut tx, id, &reason).await?;
                    tx.commit().await?;
                    self.metrics().reconciled("final_status_unknown_execution");
                    tracing::warn!(call_id = %id, reason, "reconciler ended a call");
                }
                Err(error) => {
                    tracing::warn!(call_id = %id, error = %error, "reconciler could not ask Bolna; later")
                }
            }
        }
        Ok(checked)
    }
}
