//! Handing a call that holds a slot to Bolna, then recording what Bolna said in one transaction:
//! - accepted: the execution ID goes on the call and on its slot;
//! - certainly not started (a 4xx, or no connection): the slot goes back (to the next queued call)
//!   and the call is `failed` with Bolna's message, or re-queued when Bolna was only busy or
//!   unreachable (429, connection refused), so nothing is lost;
//! - outcome unknown (timeout after sending, 5xx): the slot is kept and the call marked for the
//!   reconciler. It is never sent again: that could dial a person twice.

use bolna_client::{BolnaError, BolnaStatus, CallRequest, StartOutcome, SWITCHBOARD_CALL_ID_KEY};
use serde_json::Value;
use sqlx::PgConnection;

use super::admission::{admit_one, AdmissionRequest, Admitted, NewCall};
use super::ending::{end_call, Ending};
use super::model::Call;
use super::record::RecordRequest;
use super::store;
use crate::error::CallError;
use crate::service::CallService;
use crate::{select_call, CallId, UserId};

/// Tries at recording Bolna's answer when the database connection fails under it.
const RECORD_ATTEMPTS: u32 = 6;

/// Errors where the statement never reached the database or its connection broke: a transaction
/// in progress is rolled back by PostgreSQL, so trying again on another connection is safe. (One
/// cause: a pooled connection opened by an HTTP worker's runtime dies with that runtime at
/// shutdown, while the background task using it lives on.)
fn connection_lost(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::WorkerCrashed)
}

/// The `user_data` key carrying the owning user, for observers (the simulator groups by it).
pub const SWITCHBOARD_USER_ID_KEY: &str = "switchboard_user_id";

impl CallService {
    /// Admits a call for `user`, committed before it returns: one request of a batch (see
    /// [`crate::batch`] and [`super::admission`]).
    #[tracing::instrument(name = "Admit a call", skip_all, fields(user_id = %user, call_type = %new.call_type))]
    pub async fn admit(&self, user: UserId, mut new: NewCall) -> Result<Admitted, CallError> {
        let call_type = new.call_type;
        // A time already come (by the service's clock, which also enqueues scheduled calls) is now.
        new.scheduled_at = new.scheduled_at.filter(|at| *at > self.now());
        let scheduled = new.scheduled_at.is_some();
        let may_reserve = !self.bolna_is_held_back();
        let admitted = self.inner.admissions.submit(AdmissionRequest { user, new, may_reserve }).await?;
        let result = match admitted {
            Admitted::Reserved(_) => "started",
            Admitted::Waiting(_) if scheduled => "scheduled",
            Admitted::Waiting(_) => "queued",
            Admitted::Replayed(_) => "replayed",
        };
        self.metrics().admissions.with_label_values(&[call_type.as_str(), result]).inc();
        Ok(admitted)
    }

    /// Admission of one call on the caller's connection, inside its transaction if it has one (the
    /// campaign scheduler marks its contact in the same one): a batch of one. The do-not-call
    /// list is checked here, at dial time, for every call.
    pub(crate) async fn admit_in(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        new: &NewCall,
    ) -> Result<Admitted, CallError> {
        let request = AdmissionRequest { user, new: new.clone(), may_reserve: !self.bolna_is_held_back() };
        admit_one(conn, &request, &self.slot_policy()).await
    }

    /// Starts `call` (which holds a slot, status `initiating`) at Bolna and records the answer.
    /// Returns the call as recorded.
    #[tracing::instrument(name = "Start a call at Bolna", skip_all, fields(call_id = %call.id, user_id = %call.user_id))]
    pub async fn start_at_bolna(&self, call: Call) -> Result<Call, CallError> {
        if self.bolna_is_held_back() {
            // Bolna looks down: nothing is sent; the call waits at the head of its queue.
            return self.requeue(call.id, "Bolna is unavailable (circuit open)").await;
        }
        let request = bolna_request(&call);
        let answer = self.bolna_request("start_call", self.bolna().start_call(&request)).await;
        // Bolna has answered: what it said must be recorded. The request itself is never repeated;
        // only the recording is, when the database connection was lost under it.
        let mut attempt = 0;
        loop {
            let recorded = match &answer {
                Ok(answer) => {
                    self.record_accepted(call.id, &answer.execution_id, answer.status.as_deref()).await
                }
                Err(error) => match error.start_outcome() {
                    StartOutcome::NotStarted => self.record_not_started(call.id, error).await,
                    StartOutcome::Unknown => self.record_unknown(call.id, error).await,
                },
            };
            match recorded {
                Err(CallError::Database(error)) if connection_lost(&error) && attempt < RECORD_ATTEMPTS => {
                    attempt += 1;
                    tracing::warn!(call_id = %call.id, attempt, error = %error, "recording Bolna's answer lost its connection; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Starts `call` at Bolna in a tracked task on the main runtime and waits for the result. The
    /// hand-off then survives the caller being dropped (a client that disconnects mid-request makes
    /// actix drop its handler): the request to Bolna and its recording always finish, and shutdown
    /// waits for them.
    pub async fn start_detached(&self, call: Call) -> Result<Call, CallError> {
        let service = self.clone();
        self.detached(async move { service.start_at_bolna(call).await }).await
    }

    /// Admits a call and, when it got a slot, starts it at Bolna — all in one detached task, so
    /// a call is never left `initiating` without its request because the HTTP handler was
    /// dropped between the admission's commit and the hand-off.
    pub async fn admit_and_start(&self, user: UserId, new: NewCall) -> Result<Call, CallError> {
        let service = self.clone();
        self.detached(async move {
            match service.admit(user, new).await? {
                Admitted::Reserved(call) => service.start_at_bolna(call).await,
                Admitted::Waiting(call) | Admitted::Replayed(call) => Ok(call),
            }
        })
        .await
    }

    /// Hands `next` — a call that took a slot in a transaction that has now committed — to Bolna,
    /// in the background (tracked, so shutdown waits for it). Every path that frees or claims a
    /// slot for a queued call ends here.
    pub(crate) fn start_after_commit(&self, next: Option<Call>) {
        let Some(call) = next else { return };
        let service = self.clone();
        let task = async move {
            let id = call.id;
            if let Err(error) = service.start_at_bolna(call).await {
                tracing::error!(call_id = %id, error = %error, "starting a call at Bolna failed");
            }
        };
        self.inner.tasks.spawn_on(task, &self.inner.runtime);
    }

    /// Records Bolna's acceptance of the call (its execution ID and status). Concurrent records
    /// are gathered into one statement (see [`crate::batch`]).
    async fn record_accepted(
        &self,
        id: CallId,
        execution_id: &str,
        status: Option<&str>,
    ) -> Result<Call, CallError> {
        // A webhook may already have matched the call by its ID and moved it on: keep what it did.
        let pending = |s: &&str| BolnaStatus::parse(s).is_some_and(BolnaStatus::is_pending);
        let status = status.filter(pending).unwrap_or("queued");
        let request = RecordRequest { id, execution_id: execution_id.to_owned(), status: status.to_owned() };
        let call = self.inner.records.submit(request).await?;
        tracing::info!(call_id = %id, execution_id, "call handed to Bolna");
        Ok(call)
    }

    async fn record_not_started(&self, id: CallId, error: &BolnaError) -> Result<Call, CallError> {
        let message = error.api_message().unwrap_or_else(|| error.to_string());
        if error.is_rate_limited() || matches!(error, BolnaError::Connect(_)) {
            tracing::warn!(call_id = %id, error = %error, "Bolna busy or unreachable: call re-queued");
            return self.requeue(id, &message).await;
        }
        let reason = format!("Bolna refused the call: {message}");
        let mut tx = self.pool().begin().await?;
        let next = end_call(&mut tx, id, Ending::Failed(&reason), &self.slot_policy(), self.now()).await?;
        let call = select_call!("WHERE id = $1", id as CallId).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        tracing::warn!(call_id = %id, error = %error, "Bolna refused the call");
        self.start_after_commit(next);
        Ok(call)
    }

    /// Puts a call that holds a slot but was not sent back at the head of its queue (its
    /// `created_at` is kept) and frees the slot. No wake-up: the dispatcher's next tick retries,
    /// which paces requests to a busy or absent Bolna.
    async fn requeue(&self, id: CallId, why: &str) -> Result<Call, CallError> {
        let mut tx = self.pool().begin().await?;
        store::mark_requeued(&mut tx, id, why).await?;
        concurrency::release_call_slot(&mut tx, id, "not sent to Bolna; call re-queued").await?;
        let call = select_call!("WHERE id = $1", id as CallId).fetch_one(&mut *tx).await?;
        tx.commit().await?;
        Ok(call)
    }

    async fn record_unknown(&self, id: CallId, error: &BolnaError) -> Result<Call, CallError> {
        let reason = format!("outcome of the request to Bolna unknown: {error}");
        let mut conn = self.pool().acquire().await?;
        store::mark_for_reconciliation(&mut conn, id, &reason).await?;
        tracing::warn!(call_id = %id, error = %error, "Bolna's answer was lost: the call keeps its slot until reconciled");
        Ok(select_call!("WHERE id = $1", id as CallId).fetch_one(&mut *conn).await?)
    }
}

/// Bolna's request for a call: our call ID (and user) ride in `user_data`, which Bolna echoes in
/// every webhook, so webhooks match the call even if its execution ID was never recorded.
fn bolna_request(call: &Call) -> CallRequest {
    let mut user_data = call.user_data.as_object().cloned().unwrap_or_default();
    user_data.insert(SWITCHBOARD_CALL_ID_KEY.into(), Value::String(call.id.to_string()));
    user_data.insert(SWITCHBOARD_USER_ID_KEY.into(), Value::String(call.user_id.to_string()));
    CallRequest {
        agent_id: call.agent_id.clone(),
        recipient_phone_number: call.recipient_phone_number.clone(),
        from_phone_number: call.from_phone_number.clone(),
        user_data: Some(user_data),
        scheduled_at: None,
    }
}
