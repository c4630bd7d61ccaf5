//! `BolnaClient`: one typed method per endpoint, a span per request (method, path, status,
//! latency; never the key), and the retry rules of [`crate::retry`].

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tracing::Instrument;

use crate::error::BolnaError;
use crate::models::{
    ApiErrorBody, CallRequest, CallResponse, Execution, ExecutionStatus, ExecutionsPage, StopResponse, UserMe,
};
use crate::retry::{parse_retry_after, read_is_retryable, start_call_is_retryable, RetryPolicy};

/// Everything needed to build a client.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    pub base_url: String,
    pub api_key: SecretString,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub user_agent: String,
    pub start_retry: RetryPolicy,
    pub read_retry: RetryPolicy,
    /// `POST /call` reuses a kept-alive connection only if it has been idle less than this (zero:
    /// every call on a new connection). See [`BolnaClient`]'s `http_call`.
    pub call_connection_reuse: Duration,
}

/// The default [`ClientSettings::call_connection_reuse`]: none, every call on a new connection.
///
/// Reuse saves the TCP (and TLS) handshake of each call, but a call written on a kept-alive
/// connection that Bolna closes at that moment — a restart, a deploy, a proxy's idle cut — has an
/// unknown outcome: it keeps its slot until the reconciler asks Bolna, and is failed "not placed"
/// after the grace period when Bolna never got it. On a new connection a refused connect proves
/// nothing was sent, and the call is simply re-queued. A window well under Bolna's keep-alive
/// timeout (a few seconds; 5 s is the shortest common server default) avoids the idle cuts but not
/// the restarts. On loopback reuse saved about 85 µs of CPU of a call start's 950 µs (client and
/// simulator sides together, issue 8's benchmark); across the internet it also saves a TLS
/// handshake's round trips. Worth it for some deployments, not by default.
pub const DEFAULT_CALL_CONNECTION_REUSE: Duration = Duration::ZERO;

impl ClientSettings {
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            user_agent: format!("switchboard/{}", env!("CARGO_PKG_VERSION")),
            start_retry: RetryPolicy::default(),
            read_retry: RetryPolicy::default(),
            call_connection_reuse: DEFAULT_CALL_CONNECTION_REUSE,
        }
    }
}

/// Bolna's documented bounds of the executions listing.
pub const MAX_LISTING_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(7);
pub const MAX_PAGE_SIZE: u32 = 50;
/// A listing walk stops after this many pages, however many Bolna claims.
const MAX_PAGES_PER_WINDOW: u32 = 200;

#[derive(Debug, Clone)]
pub struct BolnaClient {
    http: reqwest::Client,
    /// For `POST /call` only: reuses a kept-alive connection only while it has been idle less
    /// than `call_connection_reuse`. A request that fails on a connection the server has just
    /// closed as idle cannot be proven unsent (outcome unknown: the call then waits for the
    /// reconciler instead of being retried); a connection idle for less than any server's
    /// keep-alive timeout has not been closed that way, and on a new connection a refused connect
    /// proves nothing was sent, so the call can safely wait and retry. Under load, calls then skip
    /// the TCP (and TLS) handshake; a call after a quiet spell opens a new connection.
    http_call: reqwest::Client,
    base_url: String,
    api_key: SecretString,
    start_retry: RetryPolicy,
    read_retry: RetryPolicy,
}

impl BolnaClient {
    pub fn new(settings: ClientSettings) -> Result<Self, BolnaError> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(settings.connect_timeout)
                .timeout(settings.request_timeout)
                .user_agent(settings.user_agent.clone())
        };
        let build_error =
            |error: reqwest::Error| BolnaError::InvalidRequest(format!("building the HTTP client: {error}"));
        let http = builder().pool_idle_timeout(Duration::from_secs(60)).build().map_err(build_error)?;
        let http_call = match settings.call_connection_reuse.is_zero() {
            true => builder().pool_max_idle_per_host(0),
            false => builder().pool_idle_timeout(settings.call_connection_reuse),
        }
        .build()
        .map_err(build_error)?;
        Ok(Self {
            http,
            http_call,
            base_url: settings.base_url.trim_end_matches('/').to_owned(),
            api_key: settings.api_key,
            start_retry: settings.start_retry,
            read_retry: settings.read_retry,
        })
    }

    /// `POST /call`. Retried only while Bolna certainly did not act (429, connect errors); on
    /// error, [`BolnaError::start_outcome`] says whether the call may have started.
    pub async fn start_call(&self, request: &CallRequest) -> Result<CallResponse, BolnaError> {
        self.send(Method::POST, "/call", &[], Some(request), self.start_retry, start_call_is_retryable).await
    }

    /// `GET /executions/{id}`.
    pub async fn get_execution(&self, execution_id: &str) -> Result<Execution, BolnaError> {
        let path = format!("/executions/{}", encode(execution_id));
        self.send(Method::GET, &path, &[], None::<&()>, self.read_retry, read_is_retryable).await
    }

    /// `POST /call/{id}/stop` (works only while the execution is queued or scheduled).
    pub async fn stop_call(&self, execution_id: &str) -> Result<StopResponse, BolnaError> {
        let path = format!("/call/{}/stop", encode(execution_id));
        self.send(Method::POST, &path, &[], None::<&()>, RetryPolicy::none(), read_is_retryable).await
    }

    /// `GET /user/me`: the account, its wallet and its concurrency.
    pub async fn user_me(&self) -> Result<UserMe, BolnaError> {
        self.send(Method::GET, "/user/me", &[], None::<&()>, self.read_retry, read_is_retryable).await
    }

    /// One page of `GET /v2/agent/{agent_id}/executions` (window ≤ 7 days, page size ≤ 50).
    pub async fn list_agent_executions(
        &self,
        agent_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        page_number: u32,
        page_size: u32,
        status: Option<&ExecutionStatus>,
    ) -> Result<ExecutionsPage, BolnaError> {
        if to <= from || to - from > MAX_LISTING_WINDOW {
            return Err(BolnaError::InvalidRequest("the window must be positive and at most 7 days".into()));
        }
        if page_size == 0 || page_size > MAX_PAGE_SIZE || page_number == 0 {
            return Err(BolnaError::InvalidRequest("page_number ≥ 1 and page_size 1..=50".into()));
        }
        let mut query = vec![
            ("from", format_time(from)),
            ("to", format_time(to)),
            ("page_number", page_number.to_string()),
            ("page_size", page_size.to_string()),
        ];
        if let Some(status) = status {
            query.push(("status", status.as_str().to_owned()));
        }
        let path = format!("/v2/agent/{}/executions", encode(agent_id));
        self.send(Method::GET, &path, &query, None::<&()>, self.read_retry, read_is_retryable).await
    }

    /// Every execution of an agent between `from` and `to`: splits the span into windows of at
    /// most 7 days and walks each window's pages while `has_more`.
    pub async fn agent_executions_between(
        &self,
        agent_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        status: Option<&ExecutionStatus>,
    ) -> Result<Vec<Execution>, BolnaError> {
        let mut executions = Vec::new();
        let mut window_start = from;
        while window_start < to {
            let window_end = (window_start + MAX_LISTING_WINDOW).min(to);
            for page_number in 1..=MAX_PAGES_PER_WINDOW {
                let page = self
                    .list_agent_executions(
                        agent_id,
                        window_start,
                        window_end,
                        page_number,
                        MAX_PAGE_SIZE,
                        status,
                    )
                    .await?;
                let more = page.has_more && !page.data.is_empty();
                executions.extend(page.data);
                if !more {
                    break;
                }
            }
            window_start = window_end;
        }
        Ok(executions)
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
        policy: RetryPolicy,
        retryable: fn(&BolnaError) -> bool,
    ) -> Result<T, BolnaError> {
        let mut attempt = 1;
        loop {
            let span = tracing::info_span!("bolna request", http.method = %method, http.path = path, attempt,
                http.status = tracing::field::Empty, latency_ms = tracing::field::Empty);
            let result = self.send_once(method.clone(), path, query, body).instrument(span).await;
            match result {
                Err(error) if attempt < policy.max_attempts && retryable(&error) => {
                    let retry_after = match &error {
                        BolnaError::Api { retry_after, .. } => *retry_after,
                        _ => None,
                    };
                    let delay = policy.delay(attempt, retry_after);
                    tracing::warn!(path, attempt, delay_ms = delay.as_millis() as u64, error = %error, "retrying Bolna request");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn send_once<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&impl Serialize>,
    ) -> Result<T, BolnaError> {
        let started = Instant::now();
        let client = if method == Method::POST && path == "/call" { &self.http_call } else { &self.http };
        let mut request = client
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(self.api_key.expose_secret())
            .query(query);
        if let Some(body) = body {
            request = request.json(body);
        }
        let outcome = request.send().await;
        let span = tracing::Span::current();
        span.record("latency_ms", started.elapsed().as_millis() as u64);
        let response = outcome.map_err(BolnaError::from_reqwest)?;
        let status = response.status();
        span.record("http.status", status.as_u16());
        let retry_after = parse_retry_after(response.headers().get(reqwest::header::RETRY_AFTER));
        let bytes = response.bytes().await.map_err(BolnaError::from_reqwest)?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|source| BolnaError::Decode { status: status.as_u16(), source });
        }
        let body: ApiErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| ApiErrorBody {
            message: Some(String::from_utf8_lossy(&bytes).chars().take(300).collect())
                .filter(|m: &String| !m.is_empty()),
            ..ApiErrorBody::default()
        });
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            tracing::error!(status = status.as_u16(), "Bolna rejected the API key");
        }
        Err(BolnaError::Api { status: status.as_u16(), body, retry_after })
    }
}

fn format_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Percent-encodes a path segment (ids are uuids, but nothing is trusted).
fn encode(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}
