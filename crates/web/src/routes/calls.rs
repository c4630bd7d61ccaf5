//! `/v1/calls`: start, read, list and cancel calls, and `/v1/concurrency`.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use call_service::calls::{get_call, list_calls, Call, CallCursor, CallFilter, CallStatus, ConcurrencyView};
use call_service::CallId;
use serde::Deserialize;
use utoipa::IntoParams;

use super::call_input::CreateCallRequest;
use super::call_resource::{CallPage, CallResource};
use crate::auth::AuthenticatedUser;
use crate::extract::{read_json, PageSize};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/calls", web::post().to(create_call))
        .route("/v1/calls", web::get().to(list))
        .route("/v1/calls/{id}", web::get().to(get))
        .route("/v1/calls/{id}/cancel", web::post().to(cancel))
        .route("/v1/concurrency", web::get().to(concurrency));
}

/// Start a call: 201 when handed to Bolna, 202 when it waits for a slot.
#[utoipa::path(post, path = "/v1/calls", tag = "calls", request_body = CreateCallRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "same key and body → the same call; same key, other body → 409")),
    responses(
        (status = 201, description = "Handed to Bolna (`bolna_execution_id` set)", body = CallResource),
        (status = 202, description = "Queued for a slot, or Bolna's answer is being reconciled", body = CallResource),
        (status = 409, description = "Idempotency-Key reused with another body"),
        (status = 422, description = "Invalid input, the number is on the do-not-call list (`do_not_call`), the number reached the user's per-number cap (`number_call_cap`, with `retry_at`: when a call fits again), the user's monthly budget is spent (`budget_exhausted`, with `budget`), or Bolna refused the call (`bolna_rejected`)"),
    ),
    security(("api_key" = [])))]
pub async fn create_call(
    request: HttpRequest,
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateCallRequest = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let key = match request.headers().get("idempotency-key") {
        None => None,
        Some(value) => Some(value.to_str().map(str::to_owned).map_err(|_| {
            ApiError::validation(vec![FieldError {
                field: "Idempotency-Key".into(),
                message: "must be visible ASCII".into(),
            }])
        })?),
    };
    let new = body.validate(key)?;
    let call = state.calls.admit_and_start(user.0.id, new).await?;
    respond_with(call)
}

/// 201 once Bolna has the call, 202 while it waits (queue or reconciliation), 422 if Bolna refused.
fn respond_with(call: Call) -> Result<HttpResponse, ApiError> {
    let location = format!("/v1/calls/{}", call.id);
    if call.status == CallStatus::Bolna(bolna_client::BolnaStatus::Failed)
        && call.bolna_execution_id.is_none()
    {
        let detail = call.error.clone().unwrap_or_else(|| "Bolna refused the call".into());
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            "bolna_rejected",
            detail,
        )
        .with("call_id", call.id.to_string()));
    }
    let mut response = match call.bolna_execution_id {
        Some(_) => HttpResponse::Created(),
        None => HttpResponse::Accepted(),
    };
    Ok(response.insert_header((header::LOCATION, location)).json(CallResource::from(call)))
}

/// One of the caller's calls.
#[utoipa::path(get, path = "/v1/calls/{id}", tag = "calls",
    params(("id" = uuid::Uuid, Path, description = "call id")),
    responses((status = 200, body = CallResource), (status = 404, description = "No such call of this user")),
    security(("api_key" = [])))]
pub async fn get(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_call_id(&id)?;
    let mut conn = state.pool.acquire().await?;
    let call =
        get_call(&mut conn, user.0.id, id).await?.ok_or_else(|| ApiError::not_found("no such call"))?;
    Ok(HttpResponse::Ok().json(CallResource::from(call)))
}

pub(crate) fn parse_call_id(text: &str) -> Result<CallId, ApiError> {
    text.parse().map_err(|_| {
        ApiError::validation(vec![FieldError { field: "id".into(), message: "must be a uuid".into() }])
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only calls in this status.
    pub status: Option<String>,
    /// `direct` or `campaign`.
    pub call_type: Option<String>,
    pub campaign_id: Option<uuid::Uuid>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Page sizes of `GET /v1/calls`.
pub const PAGE: PageSize = PageSize { default: 20, max: 100 };

/// The caller's calls, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/calls", tag = "calls", params(ListQuery),
    responses((status = 200, body = CallPage), (status = 422, description = "Invalid filter")),
    security(("api_key" = [])))]
pub async fn list(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let mut errors = Vec::new();
    let mut invalid =
        |field: &str, message: &str| errors.push(FieldError { field: field.into(), message: message.into() });
    let status = query
        .status
        .as_deref()
        .and_then(|s| s.parse::<CallStatus>().map_err(|e| invalid("status", &e.to_string())).ok());
    let call_type = query
        .call_type
        .as_deref()
        .and_then(|t| t.parse().map_err(|_| invalid("call_type", "must be direct or campaign")).ok());
    let limit = query.limit.unwrap_or(PAGE.default);
    if !(1..=PAGE.max).contains(&limit) {
        invalid("limit", &format!("must be between 1 and {}", PAGE.max));
    }
    let cursor = query.cursor.as_deref().and_then(|c| {
        CallCursor::decode(c).or_else(|| {
            invalid("cursor", "is not a cursor this API returned");
            None
        })
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let filter = CallFilter { status, call_type, campaign_id: query.campaign_id };
    let mut conn = state.pool.acquire().await?;
    let (calls, next) = list_calls(&mut conn, user.0.id, &filter, cursor, limit).await?;
    Ok(HttpResponse::Ok().json(CallPage {
        data: calls.into_iter().map(CallResource::from).collect(),
        next_cursor: next.map(|c| c.encode()),
    }))
}

/// Cancel a call that has not started dialling.
#[utoipa::path(post, path = "/v1/calls/{id}/cancel", tag = "calls",
    params(("id" = uuid::Uuid, Path, description = "call id")),
    responses(
        (status = 200, description = "Canceled", body = CallResource),
        (status = 404, description = "No such call of this user"),
        (status = 409, description = "Dialling, live or ended (`call_in_progress`, `call_initiating`, `call_finished`)"),
    ),
    security(("api_key" = [])))]
pub async fn cancel(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_call_id(&id)?;
    let call = state.calls.cancel(user.0.id, id).await?;
    Ok(HttpResponse::Ok().json(CallResource::from(call)))
}

/// The caller's slots: active, limit and queued per call type.
#[utoipa::path(get, path = "/v1/concurrency", tag = "calls",
    responses((status = 200, body = inline(Object), example = json!({"direct": {"active": 1, "limit": 2, "queued": 0}, "campaign": {"active": 0, "limit": 5, "queued": 0}}))),
    security(("api_key" = [])))]
pub async fn concurrency(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let view: ConcurrencyView = state.calls.concurrency_of(user.0.id).await?;
    Ok(HttpResponse::Ok().json(view))
}
