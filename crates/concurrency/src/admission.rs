//! Admission: new calls either take a slot at once or join the queue — one statement for a whole
//! batch (one call is a batch of one), the SQL function `admit_calls` in `sql/ledger.sql`.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::ids::{CallId, CallType, UserId};
use crate::policy::SlotPolicy;

/// One new call, as `admit_calls` reads it (one JSON object per call: the field names are the
/// SQL function's `admission_rows` columns).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallToAdmit {
    pub id: CallId,
    pub user_id: UserId,
    pub call_type: CallType,
    pub campaign_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub agent_id: String,
    pub recipient_phone_number: String,
    pub from_phone_number: Option<String>,
    pub user_data: Value,
    pub idempotency_key: Option<String>,
    /// A digest of the request, to tell a replay of an `Idempotency-Key` from a reuse.
    #[serde(serialize_with = "as_hex")]
    pub request_fingerprint: Vec<u8>,
    /// Set only when still to come: the call is inserted `scheduled` and holds nothing until then.
    pub scheduled_at: Option<DateTime<Utc>>,
}

fn as_hex<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&bytes.iter().map(|byte| format!("{byte:02x}")).collect::<String>())
}

/// Admits `calls` (see `admit_calls` in `sql/ledger.sql`): each is inserted `initiating` holding
/// a slot, or `queued`, or `scheduled` (with a `scheduled_at`), or not at all (do-not-call list,
/// an `Idempotency-Key` already used, or the per-number cap: the caller tells which, the cap with
/// [`crate::number_cap_frees_at`]). `may_reserve` is false while Bolna is held back: every call queues.
/// Returns the inserted rows of `calls`, in any order, read as the caller's row type.
#[tracing::instrument(name = "Admit calls", skip_all, fields(calls = calls.len()))]
pub async fn admit_calls<T>(
    conn: &mut PgConnection,
    calls: &[CallToAdmit],
    may_reserve: bool,
    policy: &SlotPolicy,
) -> sqlx::Result<Vec<T>>
where
    T: for<'r> sqlx::FromRow<'r, PgRow> + Send + Unpin,
{
    sqlx::query_as::<_, T>("SELECT * FROM admit_calls($1, $2, $3, $4, $5, $6, $7)")
        .bind(Json(calls))
        .bind(may_reserve)
        .bind(policy.lines())
        .bind(policy.tokens())
        .bind(policy.send_window_seconds())
        .bind(policy.lease_seconds())
        .bind(policy.number_cap())
        .fetch_all(conn)
        .await
}
