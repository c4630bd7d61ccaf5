//! Admission: honour the `Idempotency-Key`, insert the call, and either reserve a slot
//! (`initiating`) or queue it (`queued`), committed before Bolna is called.
//!
//! One statement, the SQL function `admit_calls` (migration
//! `20261130000006_batched_admission.sql`), admits a whole batch: do-not-call check, the users' row
//! locks, slot counts, the FIFO check, account lines, the inserts with their final status and the
//! slots — one round trip and one commit. Requests that arrive while others are at the database
//! are gathered into one batch (see [`crate::batch`]); the campaign scheduler admits its calls one
//! at a time inside its own transaction. A call that gets a slot is inserted as `initiating`
//! directly, so it writes one live event instead of two.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::model::Call;
use super::status::CallStatus;
use crate::error::CallError;
use crate::phone::PhoneNumber;
use crate::service::{CallService, ServiceConfig};
use crate::{call_query, select_call, update_call_returning, CallId, CallType, UserId};

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
        }
        let canonical = Canonical {
            agent_id: &self.agent_id,
            recipient: self.recipient.as_str(),
            from: self.from.as_ref().map(PhoneNumber::as_str),
            user_data: &self.user_data,
            call_type: self.call_type.as_str(),
        };
        Sha256::digest(serde_json::to_vec(&canonical).unwrap_or_default()).to_vec()
    }
}

/// What admission decided.
#[derive(Debug, Clone)]
pub enum Admitted {
    /// A new call holding a slot: it must be started at Bolna now.
    Reserved(Call),
    /// A new call waiting in the queue.
    Queued(Call),
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

/// A request with the ID its call will have and the digest of what it asked for.
struct Admission {
    id: CallId,
    request: AdmissionRequest,
    fingerprint: Vec<u8>,
}

impl From<AdmissionRequest> for Admission {
    fn from(request: AdmissionRequest) -> Self {
        Self { id: CallId::new(), fingerprint: request.new.fingerprint(), request }
    }
}

/// What admission needs of the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmissionSettings {
    pub account_lines: u32,
    pub lease: std::time::Duration,
}

impl From<&ServiceConfig> for AdmissionSettings {
    fn from(config: &ServiceConfig) -> Self {
        Self { account_lines: config.account_lines, lease: config.lease }
    }
}

impl CallService {
    /// Admits a call for `user`, committed before it returns (see the module docs).
    #[tracing::instrument(name = "Admit a call", skip_all, fields(user_id = %user, call_type = %new.call_type))]
    pub async fn admit(&self, user: UserId, new: NewCall) -> Result<Admitted, CallError> {
        let call_type = new.call_type;
        let may_reserve = !self.bolna_is_held_back();
        let admitted = self.inner.admissions.submit(AdmissionRequest { user, new, may_reserve }).await?;
        let result = match admitted {
            Admitted::Reserved(_) => "started",
            Admitted::Queued(_) => "queued",
            Admitted::Replayed(_) => "replayed",
        };
        self.metrics().admissions.with_label_values(&[call_type.as_str(), result]).inc();
        Ok(admitted)
    }

    /// Admission of one call on the caller's connection, inside its transaction if it has one (the
    /// campaign scheduler marks its contact in the same one). The do-not-call list is checked
    /// here, at dial time, for every call.
    pub(crate) async fn admit_in(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        new: &NewCall,
    ) -> Result<Admitted, CallError> {
        let request = AdmissionRequest { user, new: new.clone(), may_reserve: !self.bolna_is_held_back() };
        let admissions = [Admission::from(request)];
        let mut results = admit_all(conn, &admissions, &AdmissionSettings::from(self.config())).await?;
        results.pop().unwrap_or_else(|| Err(anyhow::anyhow!("admission answered nothing").into()))
    }
}

/// Runs one batch of admissions (the batch worker's job): one statement for all of them; if it
/// fails, each again on its own, so one bad request cannot fail the others.
pub(crate) async fn admit_batch(
    pool: &PgPool,
    settings: AdmissionSettings,
    requests: Vec<AdmissionRequest>,
) -> Vec<Result<Admitted, CallError>> {
    let admissions: Vec<Admission> = requests.into_iter().map(Admission::from).collect();
    let together = match pool.acquire().await {
        Ok(mut conn) => admit_all(&mut conn, &admissions, &settings).await,
        Err(error) => Err(error),
    };
    match together {
        Ok(results) => results,
        Err(error) if admissions.len() > 1 => {
            tracing::warn!(error = %error, calls = admissions.len(), "a batch admission failed; admitting its calls one by one");
            let mut results = Vec::with_capacity(admissions.len());
            for admission in admissions.chunks(1) {
                let alone = match pool.acquire().await {
                    Ok(mut conn) => admit_all(&mut conn, admission, &settings).await,
                    Err(error) => Err(error),
                };
                results.push(alone.map_or_else(|error| Err(error.into()), |mut one| one.remove(0)));
            }
            results
        }
        Err(error) => vec![Err(error.into())],
    }
}

/// Admits `admissions` with one `admit_calls` statement and tells each what became of it. A call
/// missing from the answer was not inserted: its number is listed, or its user already has a call
/// with its key (then the same request replays that call, a different one is a conflict).
/// The `Err` is the statement's own failure; per-call failures are in the `Vec`.
async fn admit_all(
    conn: &mut PgConnection,
    admissions: &[Admission],
    settings: &AdmissionSettings,
) -> sqlx::Result<Vec<Result<Admitted, CallError>>> {
    let mut inserted: HashMap<CallId, Call> =
        insert_calls(conn, admissions, settings).await?.into_iter().map(|call| (call.id, call)).collect();
    let mut results = Vec::with_capacity(admissions.len());
    for admission in admissions {
        results.push(match inserted.remove(&admission.id) {
            Some(call) if call.status == CallStatus::Initiating => Ok(Admitted::Reserved(call)),
            Some(call) => Ok(Admitted::Queued(call)),
            None => not_inserted(conn, admission).await,
        });
    }
    Ok(results)
}

/// Why a call was not inserted: the do-not-call list (checked first: it wins over a replay), or
/// an earlier call of its user with the same `Idempotency-Key`.
async fn not_inserted(conn: &mut PgConnection, admission: &Admission) -> Result<Admitted, CallError> {
    let user = admission.request.user;
    let new = &admission.request.new;
    if crate::campaigns::on_dnc_list(conn, user, new.recipient.as_str()).await? {
        return Err(CallError::DoNotCall);
    }
    let existing =
        select_call!("WHERE user_id = $1 AND idempotency_key = $2", user as UserId, new.idempotency_key)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("call {} was neither admitted nor found", admission.id))?;
    match existing.request_fingerprint.as_deref() == Some(admission.fingerprint.as_slice()) {
        true => Ok(Admitted::Replayed(existing)),
        false => Err(CallError::IdempotencyConflict),
    }
}

/// Inserts the calls through `admit_calls` (see the module docs) and returns those inserted,
/// `initiating` with a slot or `queued`, in no particular order.
async fn insert_calls(
    conn: &mut PgConnection,
    admissions: &[Admission],
    settings: &AdmissionSettings,
) -> sqlx::Result<Vec<Call>> {
    let n = admissions.len();
    let mut columns = AdmissionColumns::with_capacity(n);
    for admission in admissions {
        columns.push(admission);
    }
    // One batch waits for Bolna only if every request in it saw the circuit open or closed alike:
    // a call queued while the circuit was closing is started by the next dispatcher pass.
    let may_reserve = admissions.iter().all(|a| a.request.may_reserve);
    call_query!(
        ["SELECT"],
        ["\n           FROM admit_calls($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"],
        &columns.ids[..],
        &columns.users[..],
        &columns.call_types[..],
        &columns.campaigns[..] as _,
        &columns.contacts[..] as _,
        &columns.agents[..],
        &columns.recipients[..],
        &columns.froms[..] as _,
        &columns.user_data[..],
        &columns.keys[..] as _,
        &columns.fingerprints[..],
        may_reserve,
        i32::try_from(settings.account_lines).unwrap_or(i32::MAX),
        settings.lease.as_secs_f64()
    )
    .fetch_all(conn)
    .await
}

/// The batch as `admit_calls` takes it: one array per column, one element per call.
struct AdmissionColumns {
    ids: Vec<Uuid>,
    users: Vec<Uuid>,
    call_types: Vec<String>,
    campaigns: Vec<Option<Uuid>>,
    contacts: Vec<Option<Uuid>>,
    agents: Vec<String>,
    recipients: Vec<String>,
    froms: Vec<Option<String>>,
    user_data: Vec<Value>,
    keys: Vec<Option<String>>,
    fingerprints: Vec<Vec<u8>>,
}

impl AdmissionColumns {
    fn with_capacity(n: usize) -> Self {
        Self {
            ids: Vec::with_capacity(n),
            users: Vec::with_capacity(n),
            call_types: Vec::with_capacity(n),
            campaigns: Vec::with_capacity(n),
            contacts: Vec::with_capacity(n),
            agents: Vec::with_capacity(n),
            recipients: Vec::with_capacity(n),
            froms: Vec::with_capacity(n),
            user_data: Vec::with_capacity(n),
            keys: Vec::with_capacity(n),
            fingerprints: Vec::with_capacity(n),
        }
    }

    fn push(&mut self, admission: &Admission) {
        let (request, new) = (&admission.request, &admission.request.new);
        self.ids.push(admission.id.as_uuid());
        self.users.push(request.user.as_uuid());
        self.call_types.push(new.call_type.as_str().to_owned());
        self.campaigns.push(new.campaign_id);
        self.contacts.push(new.contact_id);
        self.agents.push(new.agent_id.clone());
        self.recipients.push(new.recipient.as_str().to_owned());
        self.froms.push(new.from.as_ref().map(|from| from.as_str().to_owned()));
        self.user_data.push(Value::Object(new.user_data.clone()));
        self.keys.push(new.idempotency_key.clone());
        self.fingerprints.push(admission.fingerprint.clone());
    }
}

/// The call now holds a slot: `initiating` until Bolna answers. `queued_at` is kept only for a
/// call that really waited in the queue.
pub(crate) async fn mark_initiating(conn: &mut PgConnection, id: CallId, waited: bool) -> sqlx::Result<Call> {
    update_call_returning!(
        "UPDATE calls SET status = 'initiating', queued_at = CASE WHEN $2 THEN queued_at END WHERE id = $1",
        id as CallId,
        waited
    )
    .fetch_one(conn)
    .await
}
