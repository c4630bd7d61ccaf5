//! The common case of webhooks — live statuses for calls known by their execution IDs — for a
//! whole batch without a transaction (the batch worker's job): one read of the calls, a decision
//! per webhook, then one statement that writes each call only if its status is still the one read
//! (optimistic concurrency), renews leases and stores the events. Two round trips and one commit
//! for the batch. See [`LiveOutcome`] for the webhooks it leaves to others.

use std::collections::{HashMap, HashSet};

use bolna_client::Execution;
use serde_json::Value;
use sqlx::PgPool;

use super::decision::Decision;
use super::locked::Applied;
use super::store::ReceivedEvent;
use super::writer::{write_executions, ExecutionWrite, Written};
use crate::batch::{Batch, BatchResult};
use crate::calls::CallStatus;
use crate::CallId;

/// A webhook with a live status (`initiated`, `ringing`, `in-progress`, …), as the batch carries it.
#[derive(Debug)]
pub(crate) struct LiveWebhook {
    pub execution: Execution,
    pub body: Value,
    pub received: Vec<u8>,
    pub source_ip: Option<String>,
}

impl LiveWebhook {
    /// Whether `execution` may take this path: a status that leaves the line busy.
    pub fn applies_to(execution: &Execution) -> bool {
        CallStatus::from_execution(&execution.status).is_some_and(|status| !status.line_is_free())
    }

    fn event(&self) -> ReceivedEvent<'_> {
        ReceivedEvent {
            execution_id: Some(&self.execution.id),
            status: Some(self.execution.status.as_str()),
            body: Some(&self.body),
            received: &self.received,
            source_ip: self.source_ip.as_deref(),
        }
    }
}

/// What the batched path did with one live webhook.
#[derive(Debug)]
pub(crate) enum LiveOutcome {
    /// Stored and applied (or found a duplicate or stale) in the batch's statement.
    Done(Box<Applied>),
    /// Another webhook for the same call came first in the batch: submit it again, and the next
    /// batch decides it from the status the first one left (Bolna sends a call's changes close
    /// together, and repeats them: 15% duplicates in the benchmark). Cheaper than the row lock's
    /// transaction of four round trips.
    SameCallInBatch,
    /// Not for this path — an unknown or not yet recorded execution, a lost race, a failed
    /// statement: apply it alone under the call's row lock.
    Locked,
}

/// What a batch means to do with one webhook.
enum Planned {
    /// Write onto the call if it is still in the status read.
    Write(CallId, CallStatus, Decision),
    Leave(LiveOutcome),
}

/// Runs one batch (the batch worker's job). A webhook whose statement failed even alone takes the
/// row lock (see `CallService::apply_batched`): nothing is lost, each is stored once by the path
/// that applies it.
pub(crate) async fn apply_live_batch(
    pool: &PgPool,
    lease: std::time::Duration,
    webhooks: Batch<LiveWebhook>,
) -> BatchResult<LiveOutcome> {
    Ok(try_live_batch(pool, lease, &webhooks).await?.into_iter().map(Ok).collect())
}

async fn try_live_batch(
    pool: &PgPool,
    lease: std::time::Duration,
    webhooks: &[LiveWebhook],
) -> sqlx::Result<Vec<LiveOutcome>> {
    let executions: Vec<&str> = webhooks.iter().map(|w| w.execution.id.as_str()).collect();
    let known = sqlx::query!(
        r#"SELECT id AS "id: CallId", status AS "status: CallStatus", provider_status, bolna_execution_id AS "execution!",
                  cancel_requested_at IS NOT NULL AS "cancel_requested!"
           FROM calls WHERE bolna_execution_id = ANY($1)"#,
        &executions[..] as _
    )
    .fetch_all(pool)
    .await?;
    let known: HashMap<&str, _> = known.iter().map(|call| (call.execution.as_str(), call)).collect();
    let events: Vec<ReceivedEvent<'_>> = webhooks.iter().map(LiveWebhook::event).collect();
    // One write per call: a second webhook for the same call goes to the next batch, which then
    // sees what the first one did.
    let mut in_batch = HashSet::new();
    let planned: Vec<Planned> = webhooks
        .iter()
        .map(|webhook| match known.get(webhook.execution.id.as_str()) {
            None => Planned::Leave(LiveOutcome::Locked),
            Some(call) if !in_batch.insert(call.id) => Planned::Leave(LiveOutcome::SameCallInBatch),
            Some(call) => Planned::Write(
                call.id,
                call.status,
                Decision::new(
                    call.status,
                    call.provider_status.as_deref(),
                    call.cancel_requested,
                    &webhook.execution,
                ),
            ),
        })
        .collect();
    let writes: Vec<ExecutionWrite<'_>> = planned
        .iter()
        .zip(webhooks.iter().zip(&events))
        .filter_map(|(plan, (webhook, event))| match plan {
            Planned::Write(id, read_status, decision) => Some(ExecutionWrite {
                id: *id,
                read_status: *read_status,
                decision,
                execution: &webhook.execution,
                event: Some(event),
            }),
            Planned::Leave(_) => None,
        })
        .collect();
    let mut written = write_executions(&mut *pool.acquire().await?, &writes, lease).await?.into_iter();
    Ok(planned
        .into_iter()
        .map(|plan| match plan {
            Planned::Leave(outcome) => outcome,
            Planned::Write(id, _, decision) => match written.next() {
                Some(Written::Done { event_id }) => {
                    let Decision { outcome, detail, .. } = decision;
                    LiveOutcome::Done(Box::new(Applied {
                        outcome,
                        call: Some(id),
                        next: None,
                        detail,
                        event_id,
                    }))
                }
                // The call's status changed since it was read: a lost race.
                Some(Written::StatusChanged) | None => LiveOutcome::Locked,
            },
        })
        .collect())
}
