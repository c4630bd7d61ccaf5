//! Admission: in one transaction, honour the `Idempotency-Key`, insert the call, and either
//! reserve a slot (`initiating`) or queue it (`queued`). Committed before Bolna is called.
//!
//! The common path is one statement, the SQL function `admit_call` (migration
//! `20261125000005_one_round_trip_admission.sql`): do-not-call check, the user's row lock, the slot
//! count, the FIFO check, a line, the insert with its final status and the slot — one round trip
//! and one commit instead of eight round trips (issue 8). A call that gets a slot is inserted as
//! `initiating` directly, so it writes one live event instead of two.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
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

impl CallService {
    /// Admits a call for `user` in one committed transaction (see the module docs).
    #[tracing::instrument(name = "Admit a call", skip_all, fields(user_id = %user, call_type = %new.call_type))]
    pub async fn admit(&self, user: UserId, new: &NewCall) -> Result<Admitted, CallError> {
        // No explicit transaction: `admit_call` is one statement, committed on its own.
        let mut conn = self.pool().acquire().await?;
        let admitted = self.admit_in(&mut conn, user, new).await?;
        let result = match admitted {
            Admitted::Reserved(_) => "started",
            Admitted::Queued(_) => "queued",
            Admitted::Replayed(_) => "replayed",
        };
        self.metrics().admissions.with_label_values(&[new.call_type.as_str(), result]).inc();
        Ok(admitted)
    }

    /// Admission on the caller's connection, inside its transaction if it has one (the campaign
    /// scheduler marks its contact in the same one). The do-not-call list is checked here, at dial
    /// time, for every call.
    pub(crate) async fn admit_in(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        new: &NewCall,
    ) -> Result<Admitted, CallError> {
        let fingerprint = new.fingerprint();
        // Bolna looks down (circuit open): the call waits in the queue.
        let may_reserve = !self.bolna_is_held_back();
        let Some(call) = insert_call(conn, user, new, &fingerprint, may_reserve, self.config()).await? else {
            // Nothing inserted: the number is on the do-not-call list (checked first, as it wins
            // over a replay), or the user already has a call with this Idempotency-Key.
            if crate::campaigns::on_dnc_list(conn, user, new.recipient.as_str()).await? {
                return Err(CallError::DoNotCall);
            }
            let existing = select_call!(
                "WHERE user_id = $1 AND idempotency_key = $2",
                user as UserId,
                new.idempotency_key
            )
            .fetch_one(&mut *conn)
            .await?;
            return match existing.request_fingerprint.as_deref() == Some(fingerprint.as_slice()) {
                true => Ok(Admitted::Replayed(existing)),
                false => Err(CallError::IdempotencyConflict),
            };
        };
        Ok(match call.status {
            CallStatus::Initiating => Admitted::Reserved(call),
            _ => Admitted::Queued(call),
        })
    }
}

/// Inserts the call through `admit_call` (see the module docs): `initiating` with a slot, or
/// `queued`. `None` when nothing was inserted: the number is listed, or the user already has a call
/// with this key.
async fn insert_call(
    conn: &mut PgConnection,
    user: UserId,
    new: &NewCall,
    fingerprint: &[u8],
    may_reserve: bool,
    config: &ServiceConfig,
) -> sqlx::Result<Option<Call>> {
    call_query!(
        ["SELECT"],
        ["\n           FROM admit_call($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"],
        CallId::new() as CallId,
        user as UserId,
        new.call_type.as_str(),
        new.campaign_id,
        new.contact_id,
        new.agent_id,
        new.recipient.as_str(),
        new.from.as_ref().map(PhoneNumber::as_str),
        Value::Object(new.user_data.clone()),
        new.idempotency_key,
        fingerprint,
        may_reserve,
        i32::try_from(config.account_lines).unwrap_or(i32::MAX),
        config.lease.as_secs_f64()
    )
    .fetch_optional(conn)
    .await
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
