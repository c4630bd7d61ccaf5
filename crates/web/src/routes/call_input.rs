//! Turning a `POST /v1/calls` body into a validated `NewCall`, collecting every invalid field.

use bolna_client::SWITCHBOARD_CALL_ID_KEY;
use call_service::calls::NewCall;
use call_service::{CallType, PhoneNumber};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::problem::{ApiError, FieldError};

/// Largest `user_data` accepted, serialised.
const MAX_USER_DATA_BYTES: usize = 16 * 1024;

/// Start a call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCallRequest {
    /// The Bolna agent (a uuid).
    pub agent_id: String,
    /// E.164, e.g. `+919812345678`.
    pub recipient_phone_number: String,
    /// E.164; must belong to the Bolna account. Bolna's default when absent.
    pub from_phone_number: Option<String>,
    /// Variables for the agent's prompt (an object, at most 16 KiB); echoed back by Bolna.
    pub user_data: Option<Value>,
    /// `direct` (default) or `campaign` (an external scheduler using the campaign slots).
    pub call_type: Option<String>,
    /// When to start the call (RFC 3339, any offset). Until then it is `scheduled` and holds no
    /// slot; then it joins the queue, placed by this time. A time already past starts it now.
    #[schema(format = DateTime, example = "2026-12-24T10:00:00+05:30")]
    pub scheduled_at: Option<String>,
}

/// A field's validation error (every request body's validator builds them so).
pub(crate) fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError { field: field.to_owned(), message: message.into() }
}

impl CreateCallRequest {
    pub fn validate(self, idempotency_key: Option<String>) -> Result<NewCall, ApiError> {
        let mut errors = Vec::new();
        let agent_id = self.agent_id.trim().to_owned();
        if uuid::Uuid::parse_str(&agent_id).is_err() {
            errors.push(field("agent_id", "must be the Bolna agent's id (a uuid)"));
        }
        let recipient = PhoneNumber::parse(&self.recipient_phone_number)
            .map_err(|message| errors.push(field("recipient_phone_number", message)))
            .ok();
        let from = match self.from_phone_number.as_deref() {
            None => None,
            Some(number) => {
                PhoneNumber::parse(number).map_err(|m| errors.push(field("from_phone_number", m))).ok()
            }
        };
        let user_data = match self.user_data {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => {
                if map.contains_key(SWITCHBOARD_CALL_ID_KEY)
                    || map.keys().any(|k| k.starts_with("switchboard_"))
                {
                    errors.push(field("user_data", "keys starting with `switchboard_` are reserved"));
                }
                if serde_json::to_vec(&map).map(|b| b.len()).unwrap_or(usize::MAX) > MAX_USER_DATA_BYTES {
                    errors.push(field("user_data", "must be at most 16 KiB"));
                }
                map
            }
            Some(_) => {
                errors.push(field("user_data", "must be a JSON object"));
                Map::new()
            }
        };
        let call_type = match self.call_type.as_deref() {
            None => CallType::Direct,
            Some(value) => value.parse().unwrap_or_else(|e: concurrency::UnknownCallType| {
                errors.push(field("call_type", e.to_string()));
                CallType::Direct
            }),
        };
        let scheduled_at = self.scheduled_at.as_deref().and_then(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|at| at.to_utc())
                .map_err(|_| {
                    errors.push(field(
                        "scheduled_at",
                        "must be an RFC 3339 date-time with an offset, e.g. 2026-12-24T10:00:00+05:30",
                    ))
                })
                .ok()
        });
        if let Some(key) = &idempotency_key {
            if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                errors.push(field("Idempotency-Key", "must be 1 to 255 visible ASCII characters"));
            }
        }
        match (errors.is_empty(), recipient) {
            (true, Some(recipient)) => Ok(NewCall {
                agent_id,
                recipient,
                from,
                user_data,
                call_type,
                idempotency_key,
                campaign_id: None,
                contact_id: None,
                scheduled_at,
            }),
            _ => Err(ApiError::validation(errors)),
        }
    }
}
