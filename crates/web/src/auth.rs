//! Who is calling: a user by bearer API key, or the operator by an admin token (compared in
//! constant time). Both are extractors, so a handler's signature says who may call it. A request
//! made with an API key is counted against that key's request limit here (`http.rate_limit`).

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use call_service::users::{ApiKeyHash, KeyOwner, User};
use secrecy::ExposeSecret;

use crate::problem::ApiError;
use crate::secrets::secrets_match;
use crate::state::AppState;

/// The user owning the presented API key.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub User);

impl AuthenticatedUser {
    /// Who acted, for the audit log: `user:` and the user's id.
    pub fn actor(&self) -> String {
        format!("user:{}", self.0.id)
    }
}

/// The operator: an admin token was presented.
#[derive(Debug, Clone)]
pub struct Admin {
    actor: String,
}

impl Admin {
    /// Who acted, for the audit log: `admin:` and the first hex digits of the token's SHA-256,
    /// so an audit tells which of several tokens (a rotation) was used, and never the token.
    pub fn actor(&self) -> &str {
        &self.actor
    }
}

pub(crate) fn bearer(request: &HttpRequest) -> Option<String> {
    let value = request.headers().get(actix_web::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

fn state(request: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("application state missing")))
}

/// The owner of a presented API key that works now (not revoked, not expired), counted against the
/// key's request limit; the limit's standing goes into the request for the answer's fields.
pub(crate) async fn key_owner(
    request: &HttpRequest,
    state: &AppState,
    presented: &str,
) -> Result<KeyOwner, ApiError> {
    let owner =
        state.keys.owner_of(&state.pool, presented).await?.ok_or_else(|| {
            ApiError::unauthorized("the API key is not valid (unknown, revoked or expired)")
        })?;
    if let Some(limiter) = &state.request_limit {
        let standing = limiter.take(owner.key_id).inspect_err(|_| {
            state.calls.metrics().requests_rate_limited.inc();
        })?;
        request.extensions_mut().insert(standing);
    }
    Ok(owner)
}

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let state = state(&request)?;
            let presented = bearer(&request)
                .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <API key>`"))?;
            Ok(AuthenticatedUser(key_owner(&request, &state, &presented).await?.user))
        })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let outcome = (|| {
            let state = state(request)?;
            let auth = &state.settings.auth;
            let mut expected = auth.admin_token.iter().chain(&auth.admin_tokens).peekable();
            if expected.peek().is_none() {
                return Err(ApiError::unauthorized(
                    "the admin API is disabled: neither auth.admin_token nor auth.admin_tokens is set",
                ));
            }
            let presented = bearer(request)
                .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <admin token>`"))?;
            // Every token is compared, so the time taken does not say which one matched.
            let matched = expected
                .fold(false, |matched, token| secrets_match(&presented, token.expose_secret()) | matched);
            match matched {
                true => Ok(Admin { actor: admin_actor(&presented) }),
                false => Err(ApiError::unauthorized("the admin token is not valid")),
            }
        })();
        std::future::ready(outcome)
    }
}

/// `admin:` and the first 8 hex digits of the token's SHA-256.
fn admin_actor(token: &str) -> String {
    let digest = ApiKeyHash::of(token).0;
    let short: String = digest[..4].iter().map(|byte| format!("{byte:02x}")).collect();
    format!("admin:{short}")
}
