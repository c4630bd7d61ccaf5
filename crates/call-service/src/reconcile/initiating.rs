//! Calls stuck in `initiating`: the process died between admission and recording Bolna's answer,
//! or the answer was lost. Look the call up at Bolna and adopt what it knows; if Bolna still does
//! not know it after the grace period, it was not placed: `failed`, slot freed.

use bolna_client::{BolnaError, Execution};
use chrono::{TimeDelta, Utc};

use crate::calls::ending::{end_call, Ending};
use crate::calls::Call;
use crate::error::CallError;
use crate::service::CallService;
use crate::webhooks::apply_execution;
use crate::{select_call, CallId};

/// Candidates read in full per call (listing items are trimmed).
const MAX_CANDIDATES: usize = 20;

impl CallService {
    pub(super) async fn resolve_initiating(&self) -> Result<usize, CallError> {
        let reconciler = self.config().reconciler;
        let calls = select_call!(
            "WHERE status = 'initiating' AND updated_at < now() - make_interval(secs => $1)
             ORDER BY updated_at LIMIT 50",
            reconciler.initiating_timeout.as_secs_f64()
        )
        .fetch_all(self.pool())
        .await?;
        let mut resolved = 0;
        for call in calls {
            let found = match &call.bolna_execution_id {
                Some(execution_id) => {
                    match self.bolna_request("get_execution", self.bolna().get_execution(execution_id)).await
                    {
                        Ok(execution) => Some(execution),
                        Err(error) if error.status() == Some(404) => None,
                        Err(error) => {
                            tracing::warn!(call_id = %call.id, error = %error, "reconciler could not ask Bolna; later");
                            continue;
                        }
                    }
                }
                None => match self.find_at_bolna(&call).await {
                    Ok(found) => found,
                    Err(error) => {
                        tracing::warn!(call_id = %call.id, error = %error, "reconciler could not search Bolna; later");
                        continue;
                    }
                },
            };
            match found {
                Some(execution) => {
                    self.adopt(&call, &execution).await?;
                    resolved += 1;
                }
                None => {
                    let waited = Utc::now() - call.updated_at;
                    let grace =
                        TimeDelta::from_std(reconciler.initiating_timeout + reconciler.not_placed_grace)
                            .unwrap_or(TimeDelta::MAX);
                    if waited > grace && self.fail_not_placed(call.id).await? {
                        resolved += 1;
                    }
                }
            }
        }
        Ok(resolved)
    }

    /// The agent's executions around the call's creation, read in full until one carries our call
    /// ID in `recipient_data`.
    async fn find_at_bolna(&self, call: &Call) -> Result<Option<Execution>, BolnaError> {
        let from = call.created_at - TimeDelta::minutes(5);
        let to = Utc::now() + TimeDelta::minutes(1);
        let listed = self
            .bolna_request(
                "list_executions",
                self.bolna().agent_executions_between(&call.agent_id, from, to, None),
            )
            .await?;
        let ours = call.id.to_string();
        let candidates = listed.into_iter().filter(|e| {
            let to_number = e.telephony_data.as_ref().and_then(|t| t.to_number.as_deref());
            to_number.is_none_or(|to| to == call.recipient_phone_number)
        });
        for candidate in candidates.take(MAX_CANDIDATES) {
            let full = match candidate.context_details {
                Some(_) => candidate,
                None => {
                    self.bolna_request("get_execution", self.bolna().get_execution(&candidate.id)).await?
                }
            };
            if full.switchboard_call_id() == Some(ours.as_str()) {
                return Ok(Some(full));
            }
        }
        Ok(None)
    }

    async fn adopt(&self, call: &Call, execution: &Execution) -> Result<(), CallError> {
        let mut tx = self.pool().begin().await?;
        let applied = apply_execution(&mut tx, execution, &self.slot_policy(), self.now(), None).await?;
        tx.commit().await?;
        self.metrics().reconciled("initiating_adopted");
        tracing::info!(call_id = %call.id, execution_id = %execution.id, status = %execution.status,
            outcome = applied.outcome.as_str(), "reconciler adopted Bolna's execution for a call stuck in initiating");
        self.start_after_commit(applied.next);
        Ok(())
    }

    /// `failed` ("not placed") and the slot freed, if the call is still `initiating`.
    async fn fail_not_placed(&self, id: CallId) -> Result<bool, CallError> {
        let mut tx = self.pool().begin().await?;
        let still = sqlx::query_scalar!(
            "SELECT id FROM calls WHERE id = $1 AND status = 'initiating' FOR UPDATE SKIP LOCKED",
            id as CallId
        )
        .fetch_optional(&mut *tx)
        .await?;
        if still.is_none() {
            return Ok(false);
        }
        let reason = "not placed: Bolna has no execution for this call";
        let next = end_call(&mut tx, id, Ending::Failed(reason), &self.slot_policy(), self.now()).await?;
        tx.commit().await?;
        self.metrics().reconciled("initiating_not_placed");
        tracing::warn!(call_id = %id, reason, "reconciler failed a call Bolna never received");
        self.start_after_commit(next);
        Ok(true)
    }
}
