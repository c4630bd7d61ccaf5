//! The execution object: the body of every webhook and of `GET /executions/{id}`.
//! Lenient by design (Bolna warns that keys come and go): only `id` and `status` are required,
//! unknown keys are ignored, and older shapes (`conversation_time`, numeric durations, integer ids)
//! are read too.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::lenient;
use super::status::ExecutionStatus;

/// The key under which Switchboard puts its own call ID into every call's `user_data`, which Bolna
/// echoes back in `context_details.recipient_data`.
pub const SWITCHBOARD_CALL_ID_KEY: &str = "switchboard_call_id";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    #[serde(deserialize_with = "lenient::id")]
    pub id: String,
    pub status: ExecutionStatus,
    #[serde(default, deserialize_with = "lenient::text")]
    pub agent_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub batch_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub error_message: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub answered_by_voice_mail: Option<bool>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub conversation_duration: Option<f64>,
    /// The older name of `conversation_duration`.
    #[serde(default, deserialize_with = "lenient::number", skip_serializing_if = "Option::is_none")]
    pub conversation_time: Option<f64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub total_cost: Option<f64>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub transcript: Option<String>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "lenient::timestamp")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cost_breakdown: Option<Value>,
    #[serde(default)]
    pub usage_breakdown: Option<Value>,
    #[serde(default)]
    pub extracted_data: Option<Value>,
    #[serde(default)]
    pub context_details: Option<ContextDetails>,
    #[serde(default)]
    pub telephony_data: Option<TelephonyData>,
    #[serde(default)]
    pub transfer_call_data: Option<Value>,
    #[serde(default)]
    pub batch_run_details: Option<Value>,
    #[serde(default)]
    pub latency_data: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContextDetails {
    /// The call's `user_data`, echoed back.
    #[serde(default)]
    pub recipient_data: Option<Value>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub recipient_phone_number: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TelephonyData {
    /// Seconds; a string in Bolna's schema, a number in its examples.
    #[serde(default, deserialize_with = "lenient::number")]
    pub duration: Option<f64>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub to_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub from_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub recording_url: Option<String>,
    #[serde(default, deserialize_with = "lenient::flag")]
    pub hosted_telephony: Option<bool>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub provider_call_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub call_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub provider: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub hangup_by: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub hangup_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub hangup_provider_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub ring_duration: Option<f64>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub post_dial_delay: Option<f64>,
    #[serde(default, deserialize_with = "lenient::text")]
    pub to_number_carrier: Option<String>,
}

impl Execution {
    /// Conversation length in seconds, under either of its names.
    pub fn duration_seconds(&self) -> Option<f64> {
        self.conversation_duration.or(self.conversation_time)
    }

    /// The call's `user_data` as Bolna echoed it.
    pub fn recipient_data(&self) -> Option<&Map<String, Value>> {
        self.context_details.as_ref()?.recipient_data.as_ref()?.as_object()
    }

    /// Switchboard's own call ID, when this execution was started by Switchboard.
    pub fn switchboard_call_id(&self) -> Option<&str> {
        self.recipient_data()?.get(SWITCHBOARD_CALL_ID_KEY)?.as_str()
    }

    pub fn recording_url(&self) -> Option<&str> {
        self.telephony_data.as_ref()?.recording_url.as_deref()
    }
}
