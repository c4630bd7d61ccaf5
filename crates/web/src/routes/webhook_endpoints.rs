//! Outbound webhook endpoints (`/v1/webhook-endpoints`): a user's destinations for events, their
//! secrets (shown once, rotated with an overlap), a test ping, the delivery log, retry and replay.
//! Delivery itself is `crate::outbound`'s.

use actix_web::{web, HttpRequest, HttpResponse};
use call_service::audit::record_audit;
use call_service::outbound_webhooks::{
    create_endpoint, delete_endpoint, delivery_log, enqueue_messages, get_endpoint, list_endpoints,
    replay_since, reserve_sequences, retry_delivery, rotate_endpoint_secret, update_endpoint, AttemptRecord,
    DeliveryRecord, DeliveryStatus, EndpointChange, EndpointRecord, NewEndpoint, OutgoingMessage,
    RetryOutcome, EVENT_TYPES, MAX_ENDPOINTS_PER_USER, PING,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::call_input::field;
use crate::auth::AuthenticatedUser;
use crate::extract::{parse_uuid, read_json, PageSize, PatchField};
use crate::outbound::{check_destination, message_body, EndpointSecret, SecretSealer};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/webhook-endpoints", web::post().to(create))
        .route("/v1/webhook-endpoints", web::get().to(list))
        .route("/v1/webhook-endpoints/{id}", web::get().to(show))
        .route("/v1/webhook-endpoints/{id}", web::patch().to(update))
        .route("/v1/webhook-endpoints/{id}", web::delete().to(delete))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", web::post().to(rotate_secret))
        .route("/v1/webhook-endpoints/{id}/test", web::post().to(test))
        .route("/v1/webhook-endpoints/{id}/deliveries", web::get().to(deliveries))
        .route("/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/retry", web::post().to(retry))
        .route("/v1/webhook-endpoints/{id}/replay", web::post().to(replay));
}

/// Page sizes of the delivery log.
pub const DELIVERY_PAGE: PageSize = PageSize { default: 20, max: 100 };
const MAX_DESCRIPTION: usize = 500;

/// An endpoint, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: uuid::Uuid,
    pub url: String,
    /// The event types sent here: `call.updated`, `call.ended`, `campaign.updated`, `campaign.completed`.
    pub events: Vec<String>,
    pub description: Option<String>,
    /// A disabled endpoint is sent nothing; its deliveries wait (PATCH `disabled: false` resumes them).
    pub disabled: bool,
    /// `user`, `gone` (it answered 410) or `failing` (every attempt failed for days); null when enabled.
    pub disabled_reason: Option<String>,
    /// While set and in the future, the secret replaced by the last rotation signs too.
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<EndpointRecord> for WebhookEndpoint {
    fn from(record: EndpointRecord) -> Self {
        let now = Utc::now();
        Self {
            id: record.id,
            url: record.url,
            events: record.events,
            description: record.description,
            disabled: record.disabled,
            disabled_reason: record.disabled_reason,
            previous_secret_expires_at: record.previous_secret_expires_at.filter(|until| *until > now),
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// An endpoint with its secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    /// `whsec_…`: verify each delivery's `webhook-signature` with it (Standard Webhooks).
    pub secret: String,
}

/// `{"data": [endpoint]}`, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookEndpointList {
    pub data: Vec<WebhookEndpoint>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpointRequest {
    /// `https://` (or `http://` where allowed) URL whose host resolves to public addresses only.
    pub url: String,
    /// One or more of `call.updated`, `call.ended`, `campaign.updated`, `campaign.completed`.
    pub events: Vec<String>,
    /// Up to 500 characters.
    pub description: Option<String>,
}

fn patch_text<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<PatchField<String>, D::Error> {
    let text = <Option<String> as serde::Deserialize>::deserialize(deserializer)?;
    Ok(text.map_or(PatchField::Null, PatchField::Value))
}

/// Fields left out are unchanged; `description: null` clears it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpointRequest {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "patch_text")]
    #[schema(value_type = Option<String>)]
    pub description: PatchField<String>,
    /// `true` stops deliveries; `false` resumes them (and clears the failure history).
    pub disabled: Option<bool>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryAttempt {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    /// The endpoint's HTTP status; null when no answer came (see `error`).
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The answer's first 1 KiB, as text.
    pub response_excerpt: Option<String>,
}

impl From<AttemptRecord> for DeliveryAttempt {
    fn from(a: AttemptRecord) -> Self {
        Self {
            attempt: a.attempt,
            started_at: a.started_at,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
            response_excerpt: a.response_excerpt,
        }
    }
}

/// One message's delivery to the endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: i64,
    /// The `webhook-id` header it is sent with (the same on every attempt: receivers de-duplicate by it).
    pub webhook_id: String,
    pub event_type: String,
    /// The event it carries (`event_id` in the body); null for a ping.
    pub event_id: Option<i64>,
    /// The user's sequence number (`sequence` in the body).
    pub sequence: i64,
    /// `pending`, `sending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made so far, retries and replays included.
    pub attempts: i32,
    /// When the next attempt is due; null unless `pending`.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// The latest attempts (up to 20), newest first.
    pub attempt_log: Vec<DeliveryAttempt>,
}

impl From<DeliveryRecord> for WebhookDelivery {
    fn from(d: DeliveryRecord) -> Self {
        Self {
            id: d.id,
            webhook_id: format!("msg_{}", d.message_id),
            event_type: d.event_type,
            event_id: d.event_id,
            sequence: d.sequence,
            next_attempt_at: (d.status == DeliveryStatus::Pending.as_str()).then_some(d.next_attempt_at),
            status: d.status,
            attempts: d.attempts,
            created_at: d.created_at,
            attempt_log: d.attempt_log.into_iter().map(DeliveryAttempt::from).collect(),
        }
    }
}

/// A page of the delivery log, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryPage {
    pub data: Vec<WebhookDelivery>,
    /// Pass as `cursor` for the next page; null on the last.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQuery {
    /// Only deliveries in this status: `pending`, `sending`, `succeeded` or `failed`.
    pub status: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 100 (default 20).
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// RFC 3339 time: every event since then that the endpoint subscribes to is sent again (as far
    /// back as `outbound_webhooks.retention_days`).
    pub since: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayAccepted {
    /// Deliveries armed to be sent again (or for the first time).
    pub deliveries: u64,
}

fn validate_events(events: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut chosen: Vec<String> = Vec::new();
    for event in events {
        if !EVENT_TYPES.contains(&event.as_str()) {
            errors.push(field("events", format!("`{event}` is not one of {}", EVENT_TYPES.join(", "))));
            return Vec::new();
        }
        if !chosen.contains(event) {
            chosen.push(event.clone());
        }
    }
    if chosen.is_empty() {
        errors.push(field("events", format!("must name at least one of {}", EVENT_TYPES.join(", "))));
    }
    chosen
}

fn validate_description(description: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let description = description.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty());
    if description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
        errors.push(field("description", format!("must be at most {MAX_DESCRIPTION} characters")));
    }
    description
}

async fn validate_url(state: &AppState, url: &str, errors: &mut Vec<FieldError>) -> String {
    match check_destination(url.trim(), state.outbound.policy).await {
        Ok(parsed) => parsed.to_string(),
        Err(problem) => {
            errors.push(field("url", problem.to_string()));
            String::new()
        }
    }
}

fn sealer(state: &AppState) -> Result<&SecretSealer, ApiError> {
    state.outbound.sealer.as_ref().ok_or_else(|| {
        ApiError::unavailable(
            "outbound_webhooks_not_configured",
            "outbound webhooks need outbound_webhooks.secret_key; ask the operator to set it",
        )
    })
}

fn new_secret(sealer: &SecretSealer) -> Result<(EndpointSecret, Vec<u8>), ApiError> {
    let secret = EndpointSecret::generate().map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    let sealed = sealer.seal(&secret).map_err(|e| ApiError::internal(anyhow::anyhow!(e)))?;
    Ok((secret, sealed))
}

fn no_endpoint() -> ApiError {
    ApiError::not_found("no such webhook endpoint")
}

/// Add an endpoint; its secret is shown in this answer only.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhook-endpoints",
    request_body = CreateWebhookEndpointRequest,
    responses((status = 201, body = EndpointWithSecret),
        (status = 409, description = "Too many endpoints (`too_many_webhook_endpoints`)"),
        (status = 422, description = "Invalid input, or a destination refused (not public, plain http)"),
        (status = 503, description = "Outbound webhooks are not configured (`outbound_webhooks_not_configured`)")),
    security(("api_key" = [])))]
pub async fn create(
    request: HttpRequest,
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateWebhookEndpointRequest =
        read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let sealer = sealer(&state)?;
    let mut errors = Vec::new();
    let events = validate_events(&body.events, &mut errors);
    let description = validate_description(body.description, &mut errors);
    let url = validate_url(&state, &body.url, &mut errors).await;
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (secret, sealed_secret) = new_secret(sealer)?;
    let mut tx = state.pool.begin().await?;
    let new = NewEndpoint { url, events, description, sealed_secret };
    let Some(record) = create_endpoint(&mut tx, user.0.id, new).await? else {
        return Err(ApiError::conflict(
            "too_many_webhook_endpoints",
            format!("you already have {MAX_ENDPOINTS_PER_USER} webhook endpoints; delete one first"),
        ));
    };
    let details = json!({"endpoint_id": record.id, "url": record.url, "events": record.events});
    record_audit(&mut tx, &user.actor(), "create_webhook_endpoint", Some(user.0.id.into()), details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(EndpointWithSecret { endpoint: record.into(), secret: secret.reveal() }))
}

/// Your endpoints, oldest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhook-endpoints",
    responses((status = 200, body = WebhookEndpointList)), security(("api_key" = [])))]
pub async fn list(user: AuthenticatedUser, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let data = list_endpoints(&mut conn, user.0.id).await?.into_iter().map(WebhookEndpoint::from).collect();
    Ok(HttpResponse::Ok().json(WebhookEndpointList { data }))
}

/// One of your endpoints.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = WebhookEndpoint), (status = 404)), security(("api_key" = [])))]
pub async fn show(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let mut conn = state.pool.acquire().await?;
    let record = get_endpoint(&mut conn, user.0.id, id).await?.ok_or_else(no_endpoint)?;
    Ok(HttpResponse::Ok().json(WebhookEndpoint::from(record)))
}

/// Change an endpoint's URL, events, description, or whether it is disabled.
#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path)), request_body = UpdateWebhookEndpointRequest,
    responses((status = 200, body = WebhookEndpoint), (status = 404), (status = 422, description = "Invalid input")),
    security(("api_key" = [])))]
pub async fn update(
    request: HttpRequest,
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let body: UpdateWebhookEndpointRequest =
        read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let mut errors = Vec::new();
    let events = body.events.as_deref().map(|events| validate_events(events, &mut errors));
    let description = match body.description {
        PatchField::Absent => None,
        PatchField::Null => Some(None),
        PatchField::Value(text) => Some(validate_description(Some(text), &mut errors)),
    };
    let url = match &body.url {
        Some(url) => Some(validate_url(&state, url, &mut errors).await),
        None => None,
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let change = EndpointChange { url, events, description, disabled: body.disabled };
    let mut tx = state.pool.begin().await?;
    let record = update_endpoint(&mut tx, user.0.id, id, change).await?.ok_or_else(no_endpoint)?;
    let details = json!({"endpoint_id": record.id, "url": record.url, "events": record.events, "disabled": record.disabled});
    record_audit(&mut tx, &user.actor(), "update_webhook_endpoint", Some(user.0.id.into()), details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(WebhookEndpoint::from(record)))
}

/// Delete an endpoint with its delivery log; nothing more is sent to it.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 204, description = "Deleted"), (status = 404)), security(("api_key" = [])))]
pub async fn delete(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let mut tx = state.pool.begin().await?;
    if !delete_endpoint(&mut tx, user.0.id, id).await? {
        return Err(no_endpoint());
    }
    record_audit(
        &mut tx,
        &user.actor(),
        "delete_webhook_endpoint",
        Some(user.0.id.into()),
        json!({"endpoint_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Replace the endpoint's secret. The new one is shown in this answer only; the old one keeps
/// signing beside it for `outbound_webhooks.secret_rotation_overlap_seconds` (24 h by default).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = EndpointWithSecret), (status = 404)), security(("api_key" = [])))]
pub async fn rotate_secret(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let (secret, sealed) = new_secret(sealer(&state)?)?;
    let overlap = chrono::Duration::from_std(state.settings.outbound_webhooks.rotation_overlap())
        .map_err(|e| ApiError::internal(e.into()))?;
    let mut tx = state.pool.begin().await?;
    let record = rotate_endpoint_secret(&mut tx, user.0.id, id, sealed, Utc::now() + overlap)
        .await?
        .ok_or_else(no_endpoint)?;
    let details = json!({"endpoint_id": id, "previous_secret_expires_at": record.previous_secret_expires_at});
    record_audit(&mut tx, &user.actor(), "rotate_webhook_endpoint_secret", Some(user.0.id.into()), details)
        .await?;
    tx.commit().await?;
    Ok(HttpResponse::Ok().json(EndpointWithSecret { endpoint: record.into(), secret: secret.reveal() }))
}

/// Send the endpoint a `ping` (through the same queue, signing and retries as every event).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/test", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 202, body = WebhookDelivery), (status = 404)), security(("api_key" = [])))]
pub async fn test(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let user_id = user.0.id;
    let mut tx = state.pool.begin().await?;
    let endpoint = get_endpoint(&mut tx, user_id, id).await?.ok_or_else(no_endpoint)?;
    let sequence = reserve_sequences(&mut tx, user_id, 1).await?;
    let now = Utc::now();
    let data = json!({"endpoint_id": endpoint.id, "url": endpoint.url}).to_string();
    let message = OutgoingMessage {
        user_id,
        event_id: None,
        event_type: PING.to_owned(),
        sequence,
        body: message_body(PING, now, None, sequence, &data),
        created_at: now,
        endpoints: vec![endpoint.id],
    };
    let enqueued = enqueue_messages(&mut tx, &[message]).await?;
    let delivery =
        enqueued.first().map(|d| d.id).ok_or_else(|| ApiError::internal(anyhow::anyhow!("no delivery")))?;
    let log = delivery_log(&mut tx, user_id, id, None, Some(delivery + 1), 1).await?.unwrap_or_default();
    tx.commit().await?;
    let delivery =
        log.into_iter().next().ok_or_else(|| ApiError::internal(anyhow::anyhow!("no delivery")))?;
    Ok(HttpResponse::Accepted().json(WebhookDelivery::from(delivery)))
}

/// The endpoint's deliveries, newest first, with their attempts.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path), DeliveryQuery),
    responses((status = 200, body = WebhookDeliveryPage), (status = 404), (status = 422, description = "Invalid filter")),
    security(("api_key" = [])))]
pub async fn deliveries(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<DeliveryQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let query = query.into_inner();
    let mut errors = Vec::new();
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => DeliveryStatus::parse(text).or_else(|| {
            errors.push(field("status", "must be pending, sending, succeeded or failed"));
            None
        }),
    };
    let before = match query.cursor.as_deref() {
        None => None,
        Some(text) => text.parse::<i64>().ok().filter(|c| *c > 0).or_else(|| {
            errors.push(field("cursor", "is not a cursor this API returned"));
            None
        }),
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let limit = DELIVERY_PAGE.of(query.limit)?;
    let mut conn = state.pool.acquire().await?;
    let page =
        delivery_log(&mut conn, user.0.id, id, status, before, limit).await?.ok_or_else(no_endpoint)?;
    let next_cursor = (page.len() as i64 == limit).then(|| page.last().map(|d| d.id.to_string())).flatten();
    Ok(HttpResponse::Ok().json(WebhookDeliveryPage {
        data: page.into_iter().map(WebhookDelivery::from).collect(),
        next_cursor,
    }))
}

/// Send one delivery again, at once, from the start of the retry schedule.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/deliveries/{delivery_id}/retry", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path), ("delivery_id" = i64, Path)),
    responses((status = 202, body = WebhookDelivery), (status = 404),
        (status = 409, description = "It is being sent right now (`delivery_in_flight`)")),
    security(("api_key" = [])))]
pub async fn retry(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, delivery) = path.into_inner();
    let id = parse_uuid("id", &id)?;
    let delivery = delivery
        .parse::<i64>()
        .ok()
        .filter(|d| *d > 0)
        .ok_or_else(|| ApiError::validation(vec![field("delivery_id", "must be a delivery's id")]))?;
    let mut tx = state.pool.begin().await?;
    let outcome = retry_delivery(&mut tx, user.0.id, id, delivery).await?;
    tx.commit().await?;
    match outcome {
        RetryOutcome::Armed(record) => Ok(HttpResponse::Accepted().json(WebhookDelivery::from(*record))),
        RetryOutcome::InFlight => Err(ApiError::conflict(
            "delivery_in_flight",
            "this delivery is being sent right now; its log shows the outcome shortly",
        )),
        RetryOutcome::NotFound => Err(ApiError::not_found("no such delivery of this endpoint")),
    }
}

/// Send again every event since `since` that the endpoint subscribes to, with the same
/// `webhook-id`s (receivers that saw them drop them).
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/replay", tag = "webhook-endpoints",
    params(("id" = uuid::Uuid, Path)), request_body = ReplayRequest,
    responses((status = 202, body = ReplayAccepted), (status = 404), (status = 422, description = "Invalid input")),
    security(("api_key" = [])))]
pub async fn replay(
    request: HttpRequest,
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_uuid("id", &id)?;
    let body: ReplayRequest = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let since = DateTime::parse_from_rfc3339(body.since.trim()).map(|at| at.to_utc()).map_err(|_| {
        ApiError::validation(vec![field("since", "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z")])
    })?;
    let mut tx = state.pool.begin().await?;
    let armed = replay_since(&mut tx, user.0.id, id, since).await?.ok_or_else(no_endpoint)?;
    let details = json!({"endpoint_id": id, "since": since, "deliveries": armed});
    record_audit(&mut tx, &user.actor(), "replay_webhook_endpoint", Some(user.0.id.into()), details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Accepted().json(ReplayAccepted { deliveries: armed }))
}
