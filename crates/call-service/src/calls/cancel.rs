//! Canceling a call: still in Switchboard's queue → `canceled`; accepted by Bolna but not yet
//! dialling → Bolna's stop, then `canceled` and the slot freed; dialling, live or ended → refused.

use bolna_client::{BolnaStatus, StartOutcome};

use super::ending::{end_call, Ending};
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
        if call.is_waiting_for_slot() {
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
        let mut tx = self.pool().begin().await?;
        store::lock_call(&mut tx, id).await?;
        let next = end_call(&mut tx, id, Ending::StoppedAtBolna, &self.slot_policy(), self.now()).await?;
        tx.commit().await?;
        self.start_after_commit(next);
        self.reload(id).await
    }

    pub(crate) async fn reload(&self, id: CallId) -> Result<Call, CallError> {
        let mut conn = self.pool().acquire().await?;
        Ok(select_call!("WHERE id = $1", id as CallId).fetch_one(&mut *conn).await?)
    }
}
