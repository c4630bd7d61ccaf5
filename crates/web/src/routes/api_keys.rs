//! API keys with a lifecycle: a user issues, lists and revokes its own keys (`/v1/api-keys`), an
//! operator any user's (`/v1/admin/users/{id}/api-keys`). Every change is audited. A revoked key
//! stops working on every instance within about two seconds (see `call_service::users::KeyCache`).

use actix_web::{web, HttpRequest, HttpResponse};
use call_service::audit::record_audit;
use call_service::users::{get_user, issue_api_key, list_api_keys, revoke_api_key, ApiKeyRecord, IssuedKey};
use call_service::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::call_input::field;
use crate::auth::{Admin, AuthenticatedUser};
use crate::extract::{parse_uuid, read_json};
use crate::problem::ApiError;
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/api-keys", web::post().to(create_own))
        .route("/v1/api-keys", web::get().to(list_own))
        .route("/v1/api-keys/{key_id}", web::delete().to(revoke_own))
        .route("/v1/admin/users/{id}/api-keys", web::post().to(create_for_user))
        .route("/v1/admin/users/{id}/api-keys", web::get().to(list_for_user))
        .route("/v1/admin/users/{id}/api-keys/{key_id}", web::delete().to(revoke_for_user));
}

/// An API key, without its text (shown only when issued).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyResource {
    pub id: uuid::Uuid,
    pub name: String,
    /// The key's first characters, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// After this time the key no longer works; null: never expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// The last request made with the key, up to about a minute late; null: never used.
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRecord> for ApiKeyResource {
    fn from(record: ApiKeyRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            prefix: record.prefix,
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// What the key is for (1 to 100 characters), e.g. `crm-sync`.
    pub name: String,
    /// RFC 3339 time after which the key stops working, in the future; absent: never expires.
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// Shown once: only its hash is stored.
    pub api_key: String,
    pub key: ApiKeyResource,
}

/// `{"data": [key]}`: the user's keys that are not revoked, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKeyResource>,
}

impl CreateApiKeyRequest {
    fn validate(self, now: DateTime<Utc>) -> Result<(String, Option<DateTime<Utc>>), ApiError> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_owned();
        if name.is_empty() || self.name.chars().count() > 100 {
            errors.push(field("name", "must be 1 to 100 characters, not all white space"));
        }
        let expires_at = match self.expires_at.as_deref().map(DateTime::parse_from_rfc3339) {
            None => None,
            Some(Ok(at)) if at.to_utc() > now => Some(at.to_utc()),
            Some(Ok(_)) => {
                errors.push(field("expires_at", "must be in the future"));
                None
            }
            Some(Err(_)) => {
                errors.push(field("expires_at", "must be an RFC 3339 time, e.g. 2027-01-31T00:00:00Z"));
                None
            }
        };
        match errors.is_empty() {
            true => Ok((name, expires_at)),
            false => Err(ApiError::validation(errors)),
        }
    }
}

async fn issue(
    state: &AppState,
    user: UserId,
    actor: &str,
    body: CreateApiKeyRequest,
) -> Result<HttpResponse, ApiError> {
    let (name, expires_at) = body.validate(Utc::now())?;
    let mut tx = state.pool.begin().await?;
    if get_user(&mut tx, user).await?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    let (key, record) = match issue_api_key(&mut tx, user, &name, expires_at).await? {
        IssuedKey::Issued { key, record } => (key, record),
        IssuedKey::TooManyKeys => {
            return Err(ApiError::conflict(
                "too_many_api_keys",
                format!(
                    "the user already holds {} keys; revoke one first",
                    call_service::users::MAX_KEYS_PER_USER
                ),
            ))
        }
    };
    let details = json!({"key_id": record.id, "name": record.name, "prefix": record.prefix, "expires_at": record.expires_at});
    record_audit(&mut tx, actor, "issue_api_key", Some(user.into()), details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created()
        .json(CreatedApiKey { api_key: key.reveal().to_owned(), key: ApiKeyResource::from(record) }))
}

async fn list(state: &AppState, user: UserId) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    if get_user(&mut conn, user).await?.is_none() {
        return Err(ApiError::not_found("no such user"));
    }
    let data = list_api_keys(&mut conn, user).await?.into_iter().map(ApiKeyResource::from).collect();
    Ok(HttpResponse::Ok().json(ApiKeyList { data }))
}

async fn revoke(state: &AppState, user: UserId, key_id: &str, actor: &str) -> Result<HttpResponse, ApiError> {
    let key_id = parse_uuid("key_id", key_id)?;
    let mut tx = state.pool.begin().await?;
    let record =
        revoke_api_key(&mut tx, user, key_id).await?.ok_or_else(|| ApiError::not_found("no such API key"))?;
    let details = json!({"key_id": record.id, "name": record.name, "prefix": record.prefix});
    record_audit(&mut tx, actor, "revoke_api_key", Some(user.into()), details).await?;
    tx.commit().await?;
    // This instance at once; the others within a revocation read (about a second).
    state.keys.forget_user(user);
    Ok(HttpResponse::NoContent().finish())
}

/// Issue an API key for yourself; its text is shown once.
#[utoipa::path(post, path = "/v1/api-keys", tag = "api-keys", request_body = CreateApiKeyRequest,
    responses((status = 201, body = CreatedApiKey), (status = 409, description = "Too many keys (`too_many_api_keys`)"),
        (status = 422, description = "Invalid input")),
    security(("api_key" = [])))]
pub async fn create_own(
    request: HttpRequest,
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    issue(&state, user.0.id, &user.actor(), body).await
}

/// Your API keys that are not revoked, oldest first.
#[utoipa::path(get, path = "/v1/api-keys", tag = "api-keys",
    responses((status = 200, body = ApiKeyList)), security(("api_key" = [])))]
pub async fn list_own(user: AuthenticatedUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    list(&state, user.0.id).await
}

/// Revoke one of your API keys (it may be the one making this request). It stops working on every
/// instance within about two seconds.
#[utoipa::path(delete, path = "/v1/api-keys/{key_id}", tag = "api-keys",
    params(("key_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such live key of yours")),
    security(("api_key" = [])))]
pub async fn revoke_own(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    key_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    revoke(&state, user.0.id, &key_id, &user.actor()).await
}

/// Issue an API key for a user (audited); its text is shown once.
#[utoipa::path(post, path = "/v1/admin/users/{id}/api-keys", tag = "admin", request_body = CreateApiKeyRequest,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 201, body = CreatedApiKey), (status = 404), (status = 409, description = "Too many keys"),
        (status = 422, description = "Invalid input")),
    security(("admin_token" = [])))]
pub async fn create_for_user(
    admin: Admin,
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let user = UserId::from(parse_uuid("id", &id)?);
    let body = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    issue(&state, user, admin.actor(), body).await
}

/// A user's API keys that are not revoked, oldest first.
#[utoipa::path(get, path = "/v1/admin/users/{id}/api-keys", tag = "admin",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ApiKeyList), (status = 404)), security(("admin_token" = [])))]
pub async fn list_for_user(
    _: Admin,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    list(&state, UserId::from(parse_uuid("id", &id)?)).await
}

/// Revoke a user's API key (audited); it stops working on every instance within about two seconds.
#[utoipa::path(delete, path = "/v1/admin/users/{id}/api-keys/{key_id}", tag = "admin",
    params(("id" = uuid::Uuid, Path), ("key_id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 404, description = "No such live key of this user")),
    security(("admin_token" = [])))]
pub async fn revoke_for_user(
    admin: Admin,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, key_id) = path.into_inner();
    let user = UserId::from(parse_uuid("id", &id)?);
    revoke(&state, user, &key_id, admin.actor()).await
}
