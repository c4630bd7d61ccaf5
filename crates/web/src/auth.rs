//! Who is calling: a user by bearer API key, or the operator by the admin token (compared in
//! constant time). Both are extractors, so a handler's signature says who may call it.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use call_service::users::User;
use secrecy::ExposeSecret;

use crate::problem::ApiError;
use crate::secrets::secrets_match;
use crate::state::AppState;

/// The user owning the presented API key.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub User);

/// The operator (the admin token was presented).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

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

impl FromRequest for AuthenticatedUser {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let presented = bearer(request);
        let state = state(request);
        Box::pin(async move {
            let state = state?;
            let presented =
                presented.ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <API key>`"))?;
            let user = state.keys.user_for_key(&state.pool, &presented).await?;
            user.map(AuthenticatedUser).ok_or_else(|| ApiError::unauthorized("the API key is not valid"))
        })
    }
}

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let outcome = (|| {
            let state = state(request)?;
            let expected = state.settings.auth.admin_token.as_ref().ok_or_else(|| {
                ApiError::unauthorized("the admin API is disabled: auth.admin_token is not set")
            })?;
            let presented = bearer(request)
                .ok_or_else(|| ApiError::unauthorized("send `Authorization: Bearer <admin token>`"))?;
            match secrets_match(&presented, expected.expose_secret()) {
                true => Ok(Admin),
                false => Err(ApiError::unauthorized("the admin token is not valid")),
            }
        })();
        std::future::ready(outcome)
    }
}
