//! Errors as RFC 9457 `application/problem+json`, each with a stable machine-readable `code`.
//! 5xx bodies are opaque; their cause is logged once, here.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    extensions: serde_json::Map<String, serde_json::Value>,
    /// Rare (an `Allow` with a 405): boxed so the error stays small.
    headers: Option<Box<[(header::HeaderName, String)]>>,
    source: Option<anyhow::Error>,
}

/// One invalid input field.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    code: &'a str,
    detail: &'a str,
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(flatten)]
    extensions: &'a serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            errors: Vec::new(),
            extensions: serde_json::Map::new(),
            headers: None,
            source: None,
        }
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, detail)
    }

    pub fn unavailable(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, code, detail)
    }

    /// 422 with the list of invalid fields.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [only] => format!("{}: {}", only.field, only.message),
            _ => format!("{} fields are invalid", errors.len()),
        };
        Self { errors, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", detail) }
    }

    /// A 500 whose cause is logged, not shown.
    pub fn internal(source: anyhow::Error) -> Self {
        Self {
            source: Some(source),
            ..Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "an unexpected error occurred")
        }
    }

    /// Adds a member to the problem body (RFC 9457 extension), e.g. the `call_id` concerned.
    pub fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_owned(), value.into());
        self
    }

    /// A header to send with the problem (e.g. `Allow` with a 405).
    pub fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        let mut headers = self.headers.take().map(Vec::from).unwrap_or_default();
        headers.push((name, value.into()));
        self.headers = Some(headers.into_boxed_slice());
        self
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.status, self.code, self.detail)
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(error: anyhow::Error) -> Self {
        Self::internal(error)
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => Self {
                source: Some(error.into()),
                ..Self::unavailable("database_unavailable", "the database is unavailable; retry later")
            },
            other => Self::internal(other.into()),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if let Some(source) = &self.source {
            tracing::error!(code = self.code, error = format!("{source:#}"), "request failed");
        }
        let body = ProblemBody {
            kind: format!("https://switchboard.dev/problems/{}", self.code.replace('_', "-")),
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            code: self.code,
            detail: &self.detail,
            errors: &self.errors,
            extensions: &self.extensions,
        };
        let mut response = HttpResponse::build(self.status);
        for (name, value) in self.headers.iter().flat_map(|headers| headers.iter()) {
            response.insert_header((name.clone(), value.as_str()));
        }
        response.insert_header((header::CONTENT_TYPE, "application/problem+json")).json(body)
    }
}

impl From<call_service::CallError> for ApiError {
    fn from(error: call_service::CallError) -> Self {
        use call_service::CallError;
        match error {
            CallError::NotFound => Self::not_found("not found"),
            CallError::IdempotencyConflict => Self::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request body",
            ),
            CallError::NotCancelable { status } => {
                let code = if status.is_terminal() {
                    "call_finished"
                } else if status == call_service::calls::CallStatus::Initiating {
                    "call_initiating"
                } else {
                    "call_in_progress"
                };
                Self::conflict(
                    code,
                    format!("the call is {status}; only queued or placed calls can be canceled"),
                )
                .with("call_status", status.as_str())
            }
            CallError::UnknownUser => Self::not_found("no such user"),
            CallError::Invalid(message) => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
            }
            CallError::Conflict(code, message) => Self::conflict(code, message),
            CallError::DoNotCall => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "do_not_call",
                "the recipient is on your do-not-call list",
            ),
            CallError::NumberCallCap { retry_at } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "number_call_cap",
                format!(
                    "this number was called as often as your per-number cap allows in 24 hours; \
                     a call fits again at {}",
                    retry_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            )
            .with("retry_at", retry_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
            CallError::BudgetExhausted { budget } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "budget_exhausted",
                match budget {
                    concurrency::SpentBudget::User => {
                        "your monthly budget is spent: no new call is sent to Bolna"
                    }
                    concurrency::SpentBudget::Campaign => {
                        "the campaign's budget is spent: no new call is sent to Bolna"
                    }
                },
            )
            .with("budget", budget.as_str()),
            CallError::BolnaRefused(message) => {
                Self::new(StatusCode::BAD_GATEWAY, "bolna_refused", format!("Bolna refused: {message}"))
            }
            CallError::BolnaUnavailable(message) => {
                Self::unavailable("bolna_unavailable", format!("Bolna is unavailable: {message}"))
            }
            CallError::Database(error) => error.into(),
            CallError::Unexpected(error) => Self::internal(error),
        }
    }
}
