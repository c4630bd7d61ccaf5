//! What went wrong talking to Bolna, and the one question a caller placing a call must answer:
//! did Bolna *certainly not* start it, or is the outcome *unknown*?

use std::time::Duration;

use crate::models::ApiErrorBody;

#[derive(Debug, thiserror::Error)]
pub enum BolnaError {
    /// The request never reached Bolna (connection refused, DNS, TLS, connect timeout).
    #[error("could not connect to Bolna: {0}")]
    Connect(#[source] reqwest::Error),
    /// The request was (or may have been) sent, and no answer came in time.
    #[error("Bolna did not answer within the timeout")]
    Timeout,
    /// The connection broke after the request was sent, or another transport failure.
    #[error("transport error talking to Bolna: {0}")]
    Transport(#[source] reqwest::Error),
    /// Bolna answered with a non-2xx status.
    #[error("Bolna answered {status}: {}", body.text().unwrap_or_else(|| "(no message)".into()))]
    Api { status: u16, body: ApiErrorBody, retry_after: Option<Duration> },
    /// Bolna answered 2xx with a body we could not read.
    #[error("could not read Bolna's {status} answer: {source}")]
    Decode {
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// The request was refused before sending (e.g. an invalid listing window).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

/// For `POST /call`: may the call be placed again, or must it be reconciled?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// Bolna certainly did not start the call (any 4xx, or no connection was made).
    NotStarted,
    /// Bolna may have started it (timeout after sending, 5xx, broken or unreadable answer):
    /// never send it again; look it up instead.
    Unknown,
}

impl BolnaError {
    pub fn start_outcome(&self) -> StartOutcome {
        match self {
            BolnaError::Connect(_) | BolnaError::InvalidRequest(_) => StartOutcome::NotStarted,
            BolnaError::Api { status, .. } if (400..500).contains(status) => StartOutcome::NotStarted,
            _ => StartOutcome::Unknown,
        }
    }

    /// 401 and 403 both mean the API key was rejected.
    pub fn credentials_rejected(&self) -> bool {
        matches!(self, BolnaError::Api { status: 401 | 403, .. })
    }

    pub fn is_rate_limited(&self) -> bool {
        matches!(self, BolnaError::Api { status: 429, .. })
    }

    /// The HTTP status, when Bolna answered at all.
    pub fn status(&self) -> Option<u16> {
        match self {
            BolnaError::Api { status, .. } | BolnaError::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Bolna's own message, when it sent one.
    pub fn api_message(&self) -> Option<String> {
        match self {
            BolnaError::Api { body, .. } => body.text(),
            _ => None,
        }
    }

    /// A short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            BolnaError::Connect(_) => "connect",
            BolnaError::Timeout => "timeout",
            BolnaError::Transport(_) => "transport",
            BolnaError::Api { status, .. } if *status >= 500 => "server_error",
            BolnaError::Api { status: 429, .. } => "rate_limited",
            BolnaError::Api { .. } => "client_error",
            BolnaError::Decode { .. } => "decode",
            BolnaError::InvalidRequest(_) => "invalid_request",
        }
    }

    pub(crate) fn from_reqwest(error: reqwest::Error) -> Self {
        if error.is_connect() {
            BolnaError::Connect(error)
        } else if error.is_timeout() {
            BolnaError::Timeout
        } else {
            BolnaError::Transport(error)
        }
    }
}
