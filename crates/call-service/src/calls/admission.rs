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
        if crate::campaigns::on_dnc_list(tx, user, new.recipient.as_str()).await? {
            return Err(CallError::DoNotCall);
        }
        let fingerprint = new.fingerprint();
        let Some(id) = insert_call(tx, user, new, &fingerprint).await? else {
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
        let held_back = self.bolna_is_held_back();
        let reserved = match held_back || queue_is_waiting(tx, user, new.call_type, id).await? {
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

/// Inserts the call as `queued`; `None` when the user already has a call with this key.
async fn insert_call(
    conn: &mut PgConnection,
    user: UserId,
    new: &NewCall,
    fingerprint: &[u8],
) -> sqlx::Result<Option<CallId>> {
    sqlx::query_scalar!(
        r#"INSERT INTO calls (id, user_id, call_type, campaign_id, contact_id, agent_id, recipient_phone_number,
                              from_phone_number, user_data, status, idempotency_key, request_fingerprint, queued_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'queued', $10, $11, now())
           ON CONFLICT (user_id, idempotency_key) DO NOTHING
           RETURNING id AS "id: CallId""#,
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

/// Whether an older call of this user and type is still waiting for a slot.
async fn queue_is_waiting(
    conn: &mut PgConnection,
    user: UserId,
    call_type: CallType,
    except: CallId,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM calls
                          WHERE user_id = $1 AND call_type = $2 AND status = 'queued'
                            AND bolna_execution_id IS NULL AND id <> $3) AS "waiting!""#,
        user as UserId,
        call_type.as_str(),
        except as CallId
    )
    .fetch_one(conn)
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
