//! Admission: honour the `Idempotency-Key`, insert the call, and either reserve a slot
//! (`initiating`) or queue it (`queued`), committed before Bolna is called.
//!
//! The slot rules are the ledger's: [`concurrency::admit_calls`] (the SQL function `admit_calls` in
//! `crates/concurrency/sql/ledger.sql`) admits a whole batch in one statement — do-not-call check,
//! the users' row locks, the FIFO check, slot counts, account lines, the inserts with their final
//! status and the slots. Requests that arrive while others are at the database are gathered into
//! one batch (see [`crate::batch`]); the campaign scheduler admits its calls as a batch of one
//! inside its own transaction. A call that gets a slot is inserted as `initiating` directly, so it
//! writes one live event instead of two.

use std::collections::HashMap;

use chrono::{DateTime, SubsecRound, Utc};
use concurrency::{CallToAdmit, SlotPolicy};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::Call;
use super::status::CallStatus;
use crate::batch::{Batch, BatchResult};
use crate::error::CallError;
use crate::phone::PhoneNumber;
use crate::{select_call, CallId, CallType, UserId};

/// A validated request for a call.
#[derive(Debug, Clone)]
pub struct NewCall {
    pub agent_id: String,
    pub recipient: PhoneNumber,
    pub from: Option<PhoneNumber>,
    pub user_data: Map<String, Value>,
    pub call_type: CallType,
    pub idempotency_key: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    /// When to start it; `None` (or a time already past when it is admitted) is now.
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl NewCall {
    /// A digest of what the client asked for, to tell a replay from a different request that
    /// reuses an `Idempotency-Key`.
    fn fingerprint(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Canonical<'a> {
            agent_id: &'a str,
            recipient: &'a str,
            from: Option<&'a str>,
            user_data: &'a Map<String, Value>,
            call_type: &'a str,
            // Absent when not scheduled, so digests of earlier calls stay what they were.
            #[serde(skip_serializing_if = "Option::is_none")]
            scheduled_at: Option<DateTime<Utc>>,
        }
        let canonical = Canonical {
            agent_id: &self.agent_id,
            recipient: self.recipient.as_str(),
            from: self.from.as_ref().map(PhoneNumber::as_str),
            user_data: &self.user_data,
            call_type: self.call_type.as_str(),
            scheduled_at: self.scheduled_at,
        };
        Sha256::digest(serde_json::to_vec(&canonical).unwrap_or_default()).to_vec()
    }
}

/// What admission decided.
#[derive(Debug, Clone)]
pub enum Admitted {
    /// A new call holding a slot: it must be started at Bolna now.
    Reserved(Call),
    /// A new call waiting: in the queue, or for its scheduled time.
    Waiting(Call),
    /// The same `Idempotency-Key` and request as an earlier call: that call.
    Replayed(Call),
}

/// One call to admit, as the batch carries it.
#[derive(Debug)]
pub(crate) struct AdmissionRequest {
    pub user: UserId,
    pub new: NewCall,
    /// False while Bolna is held back (circuit open): the call then queues.
    pub may_reserve: bool,
}

impl AdmissionRequest {
    /// The row the ledger admits for this request, with the ID its call will have.
    fn to_row(&self) -> CallToAdmit {
        let new = &self.new;
        CallToAdmit {
            id: CallId::new(),
            user_id: self.user,
            call_type: new.call_type,
            campaign_id: new.campaign_id,
            contact_id: new.contact_id,
            agent_id: new.agent_id.clone(),
            recipient_phone_number: new.recipient.as_str().to_owned(),
            from_phone_number: new.from.as_ref().map(|from| from.as_str().to_owned()),
            user_data: Value::Object(new.user_data.clone()),
            idempotency_key: new.idempotency_key.clone(),
            request_fingerprint: new.fingerprint(),
            // PostgreSQL keeps microseconds, and rounds finer digits read from JSON: truncated
            // here, the stored time is never later than the one asked for.
            scheduled_at: new.scheduled_at.map(|at| at.trunc_subsecs(6)),
        }
    }
}

/// Admits one call on the caller's connection, inside its transaction if it has one: a batch of
/// one (the campaign scheduler marks its contact in the same transaction).
pub(crate) async fn admit_one(
    conn: &mut PgConnection,
    request: &AdmissionRequest,
    policy: &SlotPolicy,
) -> Result<Admitted, CallError> {
    let mut results = admit_all(conn, &[request], policy).await?;
    results.pop().unwrap_or_else(|| Err(anyhow::anyhow!("admission answered nothing").into()))
}

/// Runs one batch of admissions (the batch worker's job): one statement for all of them.
pub(crate) async fn admit_batch(
    pool: &PgPool,
    policy: SlotPolicy,
    requests: Batch<AdmissionRequest>,
) -> BatchResult<Admitted> {
    let requests: Vec<&AdmissionRequest> = requests.iter().collect();
    let mut conn = pool.acquire().await?;
    Ok(admit_all(&mut conn, &requests, &policy).await?)
}

/// Admits `requests` with one `admit_calls` statement and tells each what became of it. A call
/// missing from the answer was not inserted: its number is listed, or its user already has a call
/// with its key (then the same request replays that call, a different one is a conflict), or the
/// number is at its user's per-number cap.
/// The `Err` is the statement's own failure; per-call failures are in the `Vec`.
async fn admit_all(
    conn: &mut PgConnection,
    requests: &[&AdmissionRequest],
    policy: &SlotPolicy,
) -> sqlx::Result<Vec<Result<Admitted, CallError>>> {
    let rows: Vec<CallToAdmit> = requests.iter().map(|request| request.to_row()).collect();
    // One batch waits for Bolna only if every request in it saw the circuit open or closed alike:
    // a call queued while the circuit was closing is started by the next dispatcher pass.
    let may_reserve = requests.iter().all(|request| request.may_reserve);
    let mut inserted: HashMap<CallId, Call> =
        concurrency::admit_calls::<Call>(conn, &rows, may_reserve, policy)
            .await?
            .into_iter()
            .map(|call| (call.id, call))
            .collect();
    let mut results = Vec::with_capacity(rows.len());
    for (request, row) in requests.iter().zip(&rows) {
        results.push(match inserted.remove(&row.id) {
            Some(call) if call.status == CallStatus::Initiating => Ok(Admitted::Reserved(call)),
            Some(call) => Ok(Admitted::Waiting(call)),
            None => not_inserted(conn, request, row, policy).await,
        });
    }
    Ok(results)
}

/// Why a call was not inserted: the do-not-call list (checked first: it wins over a replay), an
/// earlier call of its user with the same `Idempotency-Key` (a replay is answered even over the
/// cap), the per-number cap, or a spent budget.
async fn not_inserted(
    conn: &mut PgConnection,
    request: &AdmissionRequest,
    row: &CallToAdmit,
    policy: &SlotPolicy,
) -> Result<Admitted, CallError> {
    let user = request.user;
    let new = &request.new;
    if crate::campaigns::on_dnc_list(conn, user, new.recipient.as_str()).await? {
        return Err(CallError::DoNotCall);
    }
    let existing =
        select_call!("WHERE user_id = $1 AND idempotency_key = $2", user as UserId, new.idempotency_key)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(existing) = existing else {
        let due = row.scheduled_at.unwrap_or_else(Utc::now);
        let frees_at =
            concurrency::number_cap_frees_at(conn, user, &row.recipient_phone_number, due, policy).await?;
        if let Some(retry_at) = frees_at {
            return Err(CallError::NumberCallCap { retry_at });
        }
        return match concurrency::spent_budget(conn, user, row.campaign_id).await? {
            Some(budget) => Err(CallError::BudgetExhausted { budget }),
            None => Err(anyhow::anyhow!("call {} was neither admitted nor found", row.id).into()),
        };
    };
    match existing.request_fingerprint.as_deref() == Some(row.request_fingerprint.as_slice()) {
        true => Ok(Admitted::Replayed(existing)),
        false => Err(CallError::IdempotencyConflict),
    }
}
