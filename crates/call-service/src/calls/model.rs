//! A call as stored, and `select_call!`, the one column list every full read of `calls` uses.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::status::CallStatus;
use crate::{CallId, CallType, UserId};

/// One call attempt. Read through `select_call!` (checked at compile time), or as a row of
/// `calls` that a ledger function returns (`sqlx::FromRow`, by column name).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct Call {
    pub id: CallId,
    pub user_id: UserId,
    pub call_type: CallType,
    pub campaign_id: Option<Uuid>,
    pub contact_id: Option<Uuid>,
    pub agent_id: String,
    pub recipient_phone_number: String,
    pub from_phone_number: Option<String>,
    pub user_data: Value,
    pub status: CallStatus,
    pub bolna_execution_id: Option<String>,
    pub idempotency_key: Option<String>,
    #[serde(skip)]
    pub request_fingerprint: Option<Vec<u8>>,
    pub created_at: DateTime<Utc>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub conversation_duration: Option<f64>,
    pub total_cost: Option<f64>,
    pub transcript: Option<String>,
    pub recording_url: Option<String>,
    pub hangup_by: Option<String>,
    pub hangup_reason: Option<String>,
    pub hangup_provider_code: Option<String>,
    pub answered_by_voice_mail: Option<bool>,
    pub extracted_data: Option<Value>,
    pub error: Option<String>,
    pub provider_status: Option<String>,
    pub last_event_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    pub reconcile_reason: Option<String>,
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When the client asked it to start, if later than its creation.
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl Call {
    /// Waiting in Switchboard, for its time or for a slot: Bolna has nothing of it.
    pub fn is_waiting_in_switchboard(&self) -> bool {
        matches!(self.status, CallStatus::Scheduled | CallStatus::Queued)
    }
}

/// `sqlx::query_as!(Call, <before…> + "<every column>" + <after…>, args…)`: the one column list of
/// a [`Call`], for [`select_call!`], [`update_call_returning!`] and reads of the `calls` rows SQL
/// functions return (hence the `!`: sqlx cannot see the `NOT NULL` of a function's result).
#[macro_export]
#[doc(hidden)]
macro_rules! call_query {
    ([$($before:literal),+], [$($after:literal),*] $(, $arg:expr)*) => {
        sqlx::query_as!(
            $crate::calls::Call,
            $($before +)+ r#" id AS "id!: call_service::CallId", user_id AS "user_id!: call_service::UserId", call_type AS "call_type!: call_service::CallType",
                      campaign_id, contact_id, agent_id AS "agent_id!", recipient_phone_number AS "recipient_phone_number!", from_phone_number, user_data AS "user_data!",
                      status AS "status!: call_service::calls::CallStatus", bolna_execution_id, idempotency_key, request_fingerprint,
                      created_at AS "created_at!", queued_at, started_at, answered_at, ended_at, conversation_duration, total_cost,
                      transcript, recording_url, hangup_by, hangup_reason, hangup_provider_code,
                      answered_by_voice_mail, extracted_data, error, provider_status, last_event_at, updated_at AS "updated_at!",
                      reconcile_reason, cancel_requested_at, scheduled_at"# $(+ $after)*
            $(, $arg)*
        )
    };
}

/// `sqlx::query_as!(Call, "SELECT <every column> FROM calls " + $rest, args…)`.
#[macro_export]
macro_rules! select_call {
    ($rest:literal $(, $arg:expr)* $(,)?) => {
        $crate::call_query!(["SELECT"], ["\n               FROM calls ", $rest] $(, $arg)*)
    };
}

/// `sqlx::query_as!(Call, $update + " RETURNING <every column>", args…)`: an update that returns
/// the call as it leaves it, in the same round trip.
#[macro_export]
macro_rules! update_call_returning {
    ($update:literal $(, $arg:expr)* $(,)?) => {
        $crate::call_query!([$update, " RETURNING"], [] $(, $arg)*)
    };
}
