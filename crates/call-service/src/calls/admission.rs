//! Admission: in one transaction, honour the `Idempotency-Key`, insert the call, and either
//! reserve a slot (`initiating`) or queue it (`queued`). Committed before Bolna is called.

use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::Call;
use crate::error::CallError;
use crate::phone::PhoneNumber;
use crate::service::CallService;
use crate::{select_call, update_call_returning, CallId, CallType, UserId};

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
        let mut tx = self.pool().begin().await?;
        let admitted = self.admit_in(&mut tx, user, new).await?;
        tx.commit().await?;
        let result = match admitted {
            Admitted::Reserved(_) => "started",
            Admitted::Queued(_) => "queued",
            Admitted::Replayed(_) => "replayed",
        };
        self.metrics().admissions.with_label_values(&[new.call_type.as_str(), result]).inc();
        Ok(admitted)
    }

    /// Admission inside the caller's transaction (the campaign scheduler marks its contact in the
    /// same one). The do-not-call list is checked here, at dial time, for every call.
    pub(crate) async fn admit_in(
        &self,
        tx: &mut PgConnection,
        user: UserId,
        new: &NewCall,
    ) -> Result<Admitted, CallError> {
        let fingerprint = new.fingerprint();
        let Some(inserted) = insert_call(tx, user, new, &fingerprint).await? else {
            // Nothing inserted: the number is on the do-not-call list (checked first, as it wins
            // over a replay), or the user already has a call with this Idempotency-Key.
            if crate::campaigns::on_dnc_list(tx, user, new.recipient.as_str()).await? {
                return Err(CallError::DoNotCall);
            }
            let existing = select_call!(
                "WHERE user_id = $1 AND idempotency_key = $2",
                user as UserId,
                new.idempotency_key
            )
            .fetch_one(&mut *tx)
            .await?;
            return match existing.request_fingerprint.as_deref() == Some(fingerprint.as_slice()) {
                true => Ok(Admitted::Replayed(existing)),
                false => Err(CallError::IdempotencyConflict),
            };
        };
        let id = inserted.id;
        let held_back = self.bolna_is_held_back();
        let reserved = match held_back || inserted.older_call_waiting {
            // Bolna is down, or someone is ahead in this user's queue (FIFO): wait.
            true => false,
            false => {
                let answer = concurrency::reserve(
                    tx,
                    user,
                    new.call_type,
                    id,
                    self.config().account_lines,
                    self.config().lease,
                )
                .await?;
                answer == concurrency::Reservation::Reserved
            }
        };
        Ok(match reserved {
            true => Admitted::Reserved(mark_initiating(tx, id, false).await?),
            false => Admitted::Queued(select_call!("WHERE id = $1", id as CallId).fetch_one(&mut *tx).await?),
        })
    }
}

/// A call just inserted as `queued`.
struct Inserted {
    id: CallId,
    /// Whether an older call of the same user and type was already waiting for a slot (FIFO).
    older_call_waiting: bool,
}

/// Inserts the call as `queued` unless its number is on the user's do-not-call list, and tells in
/// the same round trip whether an older call of the user and type is waiting (the `EXISTS` in
/// `RETURNING` reads the statement's snapshot, which does not include the new row). `None` when
/// nothing was inserted: the number is listed, or the user already has a call with this key.
async fn insert_call(
    conn: &mut PgConnection,
    user: UserId,
    new: &NewCall,
    fingerprint: &[u8],
) -> sqlx::Result<Option<Inserted>> {
    sqlx::query_as!(
        Inserted,
        r#"INSERT INTO calls (id, user_id, call_type, campaign_id, contact_id, agent_id, recipient_phone_number,
                              from_phone_number, user_data, status, idempotency_key, request_fingerprint, queued_at)
           SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $11, now()
           WHERE NOT EXISTS (SELECT 1 FROM do_not_call WHERE user_id = $2 AND phone_number = $7)
           ON CONFLICT (user_id, idempotency_key) DO NOTHING
           RETURNING id AS "id: CallId",
                     EXISTS (SELECT 1 FROM calls q
                             WHERE q.user_id = $2 AND q.call_type = $3 AND q.status = 'queued'
                               AND q.bolna_execution_id IS NULL) AS "older_call_waiting!""#,
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
