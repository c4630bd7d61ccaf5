//! Canceling a call: still waiting in Switchboard (scheduled or queued) → `canceled`; accepted by Bolna but not yet
//! dialling → Bolna's stop, then `canceled` and the slot freed; dialling, live or ended → refused.

use bolna_client::{BolnaStatus, Execution, StartOutcome};

use super::ending::{end_call, Ending, OUTSIDE_CALLING_HOURS};
use super::model::Call;
use super::status::CallStatus;
use super::store;
use crate::error::CallError;
use crate::service::CallService;
use crate::{select_call, CallId, UserId};

impl CallService {
    #[tracing::instrument(name = "Cancel a call", skip(self))]
    pub async fn cancel(&self, user: UserId, id: CallId) -> Result<Call, CallError> {
        let service = self.clone();
        self.detached(async move { service.cancel_now(user, id).await }).await
    }

    async fn cancel_now(&self, user: UserId, id: CallId) -> Result<Call, CallError> {
        let mut conn = self.pool().acquire().await?;
        let call = select_call!("WHERE id = $1 AND user_id = $2", id as CallId, user as UserId)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or(CallError::NotFound)?;
        drop(conn);
        if call.is_waiting_in_switchboard() {
            let mut conn = self.pool().acquire().await?;
            if store::cancel_waiting(&mut conn, id).await? {
                crate::campaigns::settle::settle_contact(&mut conn, id, self.now()).await?;
                drop(conn);
                return self.reload(id).await;
            }
            drop(conn);
            // The dispatcher took it meanwhile: decide again on what it is now.
            return Box::pin(self.cancel_now(user, id)).await;
        }
        let placed = call.status == CallStatus::Placed;
        let Some(execution_id) = call.bolna_execution_id.clone().filter(|_| placed) else {
            return Err(CallError::NotCancelable { status: call.status });
        };
        store::mark_cancel_requested(&mut *self.pool().acquire().await?, id).await?;
        if let Err(error) = self.bolna_request("stop_call", self.bolna().stop_call(&execution_id)).await {
            return Err(match (error.start_outcome(), error.status()) {
                // Bolna's 400: it is no longer waiting (it started dialling).
                (StartOutcome::NotStarted, Some(400)) => {
                    CallError::NotCancelable { status: CallStatus::Bolna(BolnaStatus::Initiated) }
                }
                (StartOutcome::NotStarted, _) => CallError::BolnaRefused(error.to_string()),
                (StartOutcome::Unknown, _) => CallError::BolnaUnavailable(error.to_string()),
            });
        }
        self.end_stopped_call(id, Ending::StoppedAtBolna).await?;
        self.reload(id).await
    }

    /// Ends a call Bolna has just stopped while it still waited there, and hands its slot on.
    async fn end_stopped_call(&self, id: CallId, ending: Ending<'_>) -> Result<(), CallError> {
        let mut tx = self.pool().begin().await?;
        store::lock_call(&mut tx, id).await?;
        let next = end_call(&mut tx, id, ending, &self.slot_policy(), self.now()).await?;
        tx.commit().await?;
        self.start_after_commit(next);
        Ok(())
    }

    /// Bolna answered `rescheduled`: its agent's calling hours (guardrails, in the recipient's
    /// time zone) do not allow the call now, and Bolna would dial it by itself hours later. Holding
    /// the user's slot and an account line for those hours would block the user's other calls;
    /// giving them back while Bolna keeps the call would let Bolna dial it later on top of the
    /// user's limit. So Switchboard takes the call back: it stops it at Bolna (which Bolna allows
    /// while a call waits) and ends it `stopped` with the reason, freeing the slot at once. When
    /// Bolna refuses the stop (it has begun dialling), the call simply goes on with its slot.
    /// Runs in the background, tracked, after the commit of what applied Bolna's status (a
    /// webhook, or the reconciler when the lease of a call Bolna still holds ran out).
    pub(crate) fn take_back_if_rescheduled(&self, id: CallId, execution: &Execution) {
        if execution.status.known_status() != Some(BolnaStatus::Rescheduled) {
            return;
        }
        let (service, execution_id) = (self.clone(), execution.id.clone());
        let task = async move {
            if let Err(error) = service.stop_rescheduled(id, &execution_id).await {
                tracing::error!(call_id = %id, error = %error, "taking back a rescheduled call failed");
            }
        };
        self.inner.tasks.spawn_on(task, &self.inner.runtime);
    }

    async fn stop_rescheduled(&self, id: CallId, execution_id: &str) -> Result<(), CallError> {
        store::mark_stop_reason(&mut *self.pool().acquire().await?, id, OUTSIDE_CALLING_HOURS, true).await?;
        if let Err(error) = self.bolna_request("stop_call", self.bolna().stop_call(execution_id)).await {
            store::mark_stop_reason(&mut *self.pool().acquire().await?, id, OUTSIDE_CALLING_HOURS, false)
                .await?;
            tracing::warn!(call_id = %id, execution_id, error = %error, "Bolna did not stop a rescheduled call: it keeps its slot until Bolna ends it");
            return Ok(());
        }
        self.end_stopped_call(id, Ending::OutsideCallingHours).await?;
        tracing::info!(call_id = %id, execution_id, "Bolna rescheduled the call to its agent's calling hours: stopped there, slot freed");
        Ok(())
    }

    pub(crate) async fn reload(&self, id: CallId) -> Result<Call, CallError> {
        let mut conn = self.pool().acquire().await?;
        Ok(select_call!("WHERE id = $1", id as CallId).fetch_one(&mut *conn).await?)
    }
}
