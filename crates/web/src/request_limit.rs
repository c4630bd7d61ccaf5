//! Requests per API key: a token bucket per key (`http.rate_limit`), kept in memory on each
//! instance. Per instance, not shared: a shared bucket would cost a database round trip (or a
//! second service) on every request, the very cost the key cache removed from call starts; and the
//! limit protects each instance's own workers and pool. With N instances behind a balancer a key
//! may send up to N times the rate: set the limit to the fleet's budget divided by N.
//!
//! Answers carry the IETF draft's fields (draft-ietf-httpapi-ratelimit-headers-10):
//! `RateLimit-Policy: "per-key";q=<burst>;w=<seconds to refill>` and
//! `RateLimit: "per-key";r=<left>;t=<seconds until full>`; a refusal adds `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use uuid::Uuid;

use crate::problem::ApiError;
use crate::settings::RequestRateLimit;

/// Buckets kept before idle (full) ones are dropped: a full bucket is the same as none.
const BUCKETS_BEFORE_SWEEP: usize = 10_000;

#[derive(Debug)]
pub struct RequestLimiter {
    per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Where a key stands after a request: what the `RateLimit` fields say.
#[derive(Debug, Clone, Copy)]
pub struct Standing {
    quota: u32,
    refill_seconds: u64,
    remaining: u32,
    full_in_seconds: u64,
}

impl RequestLimiter {
    /// `None` when the limit is off.
    pub fn from_settings(settings: &RequestRateLimit) -> Option<Self> {
        (settings.requests_per_second > 0.0).then(|| Self {
            per_second: settings.requests_per_second,
            burst: f64::from(settings.burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes one request from `key`'s bucket; `Err` (429, with its fields) when it is empty.
    pub fn take(&self, key: Uuid) -> Result<Standing, ApiError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= BUCKETS_BEFORE_SWEEP {
            buckets.retain(|_, bucket| self.refilled(*bucket, now) < self.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: self.burst, at: now });
        let tokens = self.refilled(*bucket, now);
        let allowed = tokens >= 1.0;
        let left = if allowed { tokens - 1.0 } else { tokens };
        *bucket = Bucket { tokens: left, at: now };
        let standing = Standing {
            quota: self.burst as u32,
            refill_seconds: (self.burst / self.per_second).ceil().max(1.0) as u64,
            remaining: left.floor() as u32,
            full_in_seconds: ((self.burst - left) / self.per_second).ceil() as u64,
        };
        if allowed {
            return Ok(standing);
        }
        let retry_after = ((1.0 - left) / self.per_second).ceil().max(1.0) as u64;
        let detail = format!(
            "this API key sent more than {} requests per second (bursts of {}); retry after {retry_after} s",
            self.per_second, standing.quota
        );
        let mut error = ApiError::new(actix_web::http::StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
            .with_header(RETRY_AFTER, retry_after.to_string());
        for (name, value) in standing.fields() {
            error = error.with_header(name, value);
        }
        Err(error)
    }

    fn refilled(&self, bucket: Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_second).min(self.burst)
    }
}

impl Standing {
    fn fields(&self) -> [(HeaderName, String); 2] {
        [
            (
                HeaderName::from_static("ratelimit-policy"),
                format!("\"per-key\";q={};w={}", self.quota, self.refill_seconds),
            ),
            (
                HeaderName::from_static("ratelimit"),
                format!("\"per-key\";r={};t={}", self.remaining, self.full_in_seconds),
            ),
        ]
    }
}

/// Adds the `RateLimit` fields to an answer whose request was counted against a key (the
/// authentication extractor leaves its [`Standing`] in the request's extensions).
pub async fn add_rate_limit_fields(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    let standing = response.request().extensions().get::<Standing>().copied();
    if let Some(standing) = standing {
        for (name, value) in standing.fields() {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    Ok(response)
}
