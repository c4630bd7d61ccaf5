//! Reading request bodies (size-limited, JSON after authentication) and turning their failures
//! (bad JSON, wrong shape, wrong type, oversized) into problem+json answers.

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;
use futures::StreamExt;

use crate::problem::{ApiError, FieldError};

/// A path parameter that must be a uuid: 422 naming it otherwise.
pub fn parse_uuid(name: &str, text: &str) -> Result<uuid::Uuid, ApiError> {
    text.parse().map_err(|_| {
        ApiError::validation(vec![FieldError { field: name.to_owned(), message: "must be a uuid".into() }])
    })
}

/// A JSON body that could not be read: 413 when too large, 415 for another content type,
/// 400 for syntax errors, 422 when well-formed JSON has the wrong shape.
pub fn json_error(error: JsonPayloadError) -> ApiError {
    match &error {
        JsonPayloadError::Overflow { limit } | JsonPayloadError::OverflowKnownLength { limit, .. } => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
            )
        }
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ),
        JsonPayloadError::Deserialize(inner) if inner.is_data() => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", inner.to_string())
        }
        JsonPayloadError::Deserialize(inner) => ApiError::bad_request("malformed_json", inner.to_string()),
        other => ApiError::bad_request("invalid_body", other.to_string()),
    }
}

/// Reads a JSON body after the handler's other extractors (authentication first: actix runs
/// extractors concurrently, and an unauthenticated caller must not learn how its body was wrong).
/// 415 for another content type, 413 past `limit`, 400 for syntax errors, 422 for the wrong shape.
pub async fn read_json<T: serde::de::DeserializeOwned>(
    request: &actix_web::HttpRequest,
    payload: actix_web::web::Payload,
    limit: usize,
) -> Result<T, ApiError> {
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence != "application/json" && !essence.ends_with("+json") {
        return Err(json_error(JsonPayloadError::ContentType));
    }
    let body = read_body(payload, limit).await?;
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|error| json_error(JsonPayloadError::Deserialize(error)))?;
    if !value.is_object() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            "the body must be a JSON object",
        ));
    }
    let mut value = value;
    remove_nul_in_free_form(&mut value);
    if let Some(field) = nul_character_at(&value, String::new()) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_character",
            format!("`{field}` contains a NUL character (\\u0000), which Switchboard cannot store"),
        )
        .with("field", field));
    }
    serde_json::from_value(value).map_err(|error| json_error(JsonPayloadError::Deserialize(error)))
}

/// The free-form objects of the API (a call's `user_data`, a contact's `variables`): any JSON is
/// accepted there, NUL characters removed (they are data passed on to Bolna, not names Switchboard
/// matches on). Anywhere else a NUL is refused with the field's name.
const FREE_FORM: [&str; 2] = ["user_data", "variables"];

fn remove_nul_in_free_form(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            for (key, item) in fields.iter_mut() {
                if FREE_FORM.contains(&key.as_str()) {
                    call_service::json_text::remove_nul_characters(item);
                } else {
                    remove_nul_in_free_form(item);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(remove_nul_in_free_form),
        _ => {}
    }
}

/// The JSON Pointer of the first string (or object key) holding U+0000: JSON allows it, PostgreSQL's
/// `text` and `jsonb` do not, so API input carrying one is refused rather than silently changed.
pub fn nul_character_at(value: &serde_json::Value, at: String) -> Option<String> {
    use serde_json::Value;
    let escape = |key: &str| key.replace('~', "~0").replace('/', "~1");
    match value {
        Value::String(text) if text.contains('\0') => Some(if at.is_empty() { "/".into() } else { at }),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(n, item)| nul_character_at(item, format!("{at}/{n}")))
        }
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            let path = format!("{at}/{}", escape(key));
            if key.contains('\0') {
                Some(path)
            } else if key == "contacts" {
                // Contact rows are checked one by one: a bad row is reported, the others kept.
                None
            } else {
                nul_character_at(item, path)
            }
        }),
        _ => None,
    }
}

/// An integer as JSON counts one: `13` and `13.0` alike (JSON Schema's `integer`), for
/// `#[serde(default, deserialize_with = "whole_number")]` on an `Option<i64>`.
pub fn whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    let Some(number) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(deserializer)? else {
        return Ok(None);
    };
    let whole = number.as_i64().or_else(|| {
        // Within ±2^63 and without a fraction.
        number.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18).map(|f| f as i64)
    });
    whole.map(Some).ok_or_else(|| serde::de::Error::custom(format!("`{number}` is not a 64-bit integer")))
}

/// A PATCH field that may be left out (no change), `null` (back to the default) or given.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub enum PatchField<T> {
    #[default]
    Absent,
    Null,
    Value(T),
}

/// [`whole_number`] for a [`PatchField`] (`#[serde(default, deserialize_with = ...)]`: called only
/// when the field is present).
pub fn patch_whole_number<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<PatchField<i64>, D::Error> {
    Ok(whole_number(deserializer)?.map_or(PatchField::Null, PatchField::Value))
}

/// Any JSON number, for a [`PatchField`].
pub fn patch_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<PatchField<f64>, D::Error> {
    let number = <Option<f64> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(number.map_or(PatchField::Null, PatchField::Value))
}

/// [`whole_number`] for a required field.
pub fn required_whole_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    whole_number(deserializer)?.ok_or_else(|| serde::de::Error::custom("an integer is required"))
}

/// A list operation's page size: `default` when absent, else 1 ..= `max` (422 outside: a size the
/// client did not ask for would be a silent surprise). `/openapi.json` states each bound.
#[derive(Debug, Clone, Copy)]
pub struct PageSize {
    pub default: i64,
    pub max: i64,
}

impl PageSize {
    pub fn of(self, limit: Option<i64>) -> Result<i64, ApiError> {
        let limit = limit.unwrap_or(self.default);
        if (1..=self.max).contains(&limit) {
            return Ok(limit);
        }
        Err(ApiError::validation(vec![crate::problem::FieldError {
            field: "limit".into(),
            message: format!("must be between 1 and {}", self.max),
        }]))
    }
}

/// An optional JSON body: absent or empty is `None`.
pub async fn read_optional_json<T: serde::de::DeserializeOwned>(
    request: &actix_web::HttpRequest,
    payload: actix_web::web::Payload,
    limit: usize,
) -> Result<Option<T>, ApiError> {
    let declared =
        request.headers().get(actix_web::http::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok());
    if declared == Some("0")
        || (declared.is_none() && !request.headers().contains_key(actix_web::http::header::CONTENT_TYPE))
    {
        return Ok(None);
    }
    read_json(request, payload, limit).await.map(Some)
}

/// The whole body, or 413 past `limit` bytes.
pub async fn read_body(
    mut payload: actix_web::web::Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    let mut body = actix_web::web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| ApiError::bad_request("invalid_body", error.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("the body is larger than {limit} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
