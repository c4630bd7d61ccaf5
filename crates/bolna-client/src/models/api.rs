//! Requests and answers of Bolna's REST endpoints that Switchboard uses.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::execution::Execution;
use super::lenient;

/// `POST /call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRequest {
    pub agent_id: String,
    pub recipient_phone_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Map<String, Value>>,
    /// ISO 8601 with a numeric offset (a `Z` suffix is documented to cause a 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
}

/// `200` of `POST /call`: accepted, not yet dialled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallResponse {
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(deserialize_with = "lenient::id")]
    pub execution_id: String,
}

/// `200` of `POST /call/{execution_id}/stop`.
pub type StopResponse = CallResponse;

/// `GET /user/me`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMe {
    #[serde(default, deserialize_with = "lenient::text")]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default, deserialize_with = "lenient::number")]
    pub wallet: Option<f64>,
    #[serde(default)]
    pub concurrency: Option<AccountConcurrency>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountConcurrency {
    pub max: u32,
    pub current: u32,
}

/// One page of `GET /v2/agent/{agent_id}/executions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionsPage {
    pub page_number: u32,
    pub page_size: u32,
    #[serde(default)]
    pub total: u64,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub data: Vec<Execution>,
}

/// An error body: `{"error": <code>, "message": "..."}` or `{"detail": ...}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Value>,
}

impl ApiErrorBody {
    /// The human-readable part, whichever shape it came in.
    pub fn text(&self) -> Option<String> {
        if let Some(message) = &self.message {
            return Some(message.clone());
        }
        match &self.detail {
            Some(Value::String(detail)) => Some(detail.clone()),
            Some(other) => Some(other.to_string()),
            None => None,
        }
    }
}
