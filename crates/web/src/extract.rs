//! Turning extractor failures (bad JSON, oversized bodies) into problem+json answers.

use actix_web::error::JsonPayloadError;
use actix_web::http::StatusCode;

use crate::problem::ApiError;

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
