//! A call as the API shows it.

use call_service::calls::Call;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

/// A call, as returned by every call endpoint.
/// Deserialize reads the snapshots live events store (`to_jsonb` of the row).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CallResource {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `direct` or `campaign`.
    pub call_type: String,
    /// Switchboard's own `scheduled` (waiting for its `scheduled_at`, holding no slot), `queued`
    /// (waiting for a slot), `initiating` (slot held, request to Bolna
    /// in flight) and `placed` (Bolna has it and has not started dialling: Bolna's word is in
    /// `provider_status`), then Bolna's statuses: `initiated`, `ringing`, `in-progress`,
    /// `call-disconnected`, `completed`, `no-answer`, `busy`, `failed`, `canceled`, `stopped`,
    /// `error`, `balance-low`. Each name has one meaning.
    pub status: String,
    pub agent_id: String,
    pub recipient_phone_number: String,
    pub from_phone_number: Option<String>,
    pub user_data: Value,
    pub bolna_execution_id: Option<String>,
    pub campaign_id: Option<Uuid>,
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the client asked it to start, if later than its creation.
    pub scheduled_at: Option<DateTime<Utc>>,
    pub queued_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub conversation_duration: Option<f64>,
    pub total_cost: Option<f64>,
    pub recording_url: Option<String>,
    pub transcript: Option<String>,
    pub extracted_data: Option<Value>,
    pub hangup_by: Option<String>,
    pub hangup_reason: Option<String>,
    pub answered_by_voice_mail: Option<bool>,
    /// Bolna's own status, verbatim, as last applied (for a `placed` call: `queued`, `scheduled`,
    /// `prepared` or `rescheduled` — Bolna's `scheduled` shows only here), including ones this
    /// build does not know.
    pub provider_status: Option<String>,
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

impl From<Call> for CallResource {
    fn from(call: Call) -> Self {
        Self {
            id: call.id.into(),
            user_id: call.user_id.into(),
            call_type: call.call_type.as_str().to_owned(),
            status: call.status.as_str().to_owned(),
            agent_id: call.agent_id,
            recipient_phone_number: call.recipient_phone_number,
            from_phone_number: call.from_phone_number,
            user_data: call.user_data,
            bolna_execution_id: call.bolna_execution_id,
            campaign_id: call.campaign_id,
            idempotency_key: call.idempotency_key,
            created_at: call.created_at,
            scheduled_at: call.scheduled_at,
            queued_at: call.queued_at,
            started_at: call.started_at,
            answered_at: call.answered_at,
            ended_at: call.ended_at,
            conversation_duration: call.conversation_duration,
            total_cost: call.total_cost,
            recording_url: call.recording_url,
            transcript: call.transcript,
            extracted_data: call.extracted_data,
            hangup_by: call.hangup_by,
            hangup_reason: call.hangup_reason,
            answered_by_voice_mail: call.answered_by_voice_mail,
            provider_status: call.provider_status,
            error: call.error,
            updated_at: call.updated_at,
        }
    }
}

/// A page of calls, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    pub data: Vec<CallResource>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}
