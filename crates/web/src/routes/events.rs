//! `/v1/events`: the live event stream (Server-Sent Events) and browser tickets for it.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use call_service::events::{event_position, issue_ticket, redeem_ticket};
use call_service::UserId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{bearer, AuthenticatedUser};
use crate::events::stream::{event_stream, Start};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

/// How long a new stream waits for the instance's event hub to be ready.
const HUB_WAIT: Duration = Duration::from_secs(5);

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/events", web::get().to(stream))
        .route("/v1/events/tickets", web::post().to(create_ticket));
}

/// A single-use ticket for `GET /v1/events?ticket=…`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventTicket {
    pub ticket: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Trade the API key for a ticket browsers can put in an `EventSource` URL (single use, short-lived).
#[utoipa::path(post, path = "/v1/events/tickets", tag = "events",
    responses((status = 201, body = EventTicket), (status = 401, description = "No or bad API key")),
    security(("api_key" = [])))]
pub async fn create_ticket(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let ttl =
        chrono::Duration::seconds(i64::try_from(state.settings.events.ticket_ttl_seconds).unwrap_or(60));
    let expires_at = state.calls.config().clock.now() + ttl;
    let mut conn = state.pool.acquire().await?;
    let issued = issue_ticket(&mut conn, user.0.id, expires_at).await?;
    Ok(HttpResponse::Created()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(EventTicket { ticket: issued.ticket, expires_at: issued.expires_at }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    /// A ticket from `POST /v1/events/tickets`, instead of `Authorization` (browsers).
    pub ticket: Option<String>,
    /// As the `Last-Event-ID` header, for clients that cannot set it (a new `EventSource`).
    pub last_event_id: Option<String>,
}

/// Server-Sent Events: `call.updated` and `campaign.updated` (data: the resource as JSON), each with
/// an `id`; heartbeat comments while idle; `reset` when events were missed for good.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(StreamQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "replay what came after this event")),
    responses(
        (status = 200, description = "text/event-stream"),
        (status = 401, description = "No or bad API key or ticket"),
        (status = 503, description = "The instance's event hub is not ready yet")),
    security(("api_key" = [])))]
pub async fn stream(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StreamQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.into_inner();
    let last_event_id = last_event_id(&request, query.last_event_id.as_deref())?;
    let user = authenticate(&request, &state, query.ticket.as_deref()).await?;
    let subscription = state.events.subscribe(user, HUB_WAIT).await.ok_or_else(|| {
        ApiError::unavailable("events_not_ready", "the event stream is starting; retry shortly")
    })?;
    // Subscribed first, then the replay point is looked up: nothing falls between the two.
    let start = match last_event_id {
        None => Start::Live,
        Some(id) => {
            let mut conn = state.pool.acquire().await?;
            match event_position(&mut conn, user, id).await? {
                Some(position) => Start::After(position),
                None => Start::Expired,
            }
        }
    };
    let body = event_stream(state.get_ref().clone(), user, subscription, start);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}

/// The `Last-Event-ID` header, else the `last_event_id` parameter; both must be event ids.
fn last_event_id(request: &HttpRequest, from_query: Option<&str>) -> Result<Option<i64>, ApiError> {
    let from_header = request.headers().get("last-event-id").map(|v| v.to_str().unwrap_or("?"));
    // Both are checked when both are given; the header wins.
    if let (Some(_), Some(query)) = (from_header, from_query) {
        parse_event_id(query)?;
    }
    let Some(text) = from_header.or(from_query) else { return Ok(None) };
    parse_event_id(text)
}

fn parse_event_id(text: &str) -> Result<Option<i64>, ApiError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    // As the API describes it: 1 to 18 digits, no leading 0 (event ids are positive bigints).
    let well_formed = text.len() <= 18 && !text.starts_with('0') && text.bytes().all(|b| b.is_ascii_digit());
    text.parse::<i64>().ok().filter(|_| well_formed).map(Some).ok_or_else(|| {
        ApiError::validation(vec![FieldError {
            field: "Last-Event-ID".into(),
            message: "must be the id of an event this API sent".into(),
        }])
    })
}

/// The user of the ticket if one is given, else of the bearer API key.
async fn authenticate(
    request: &HttpRequest,
    state: &AppState,
    ticket: Option<&str>,
) -> Result<UserId, ApiError> {
    if let Some(ticket) = ticket {
        let now = state.calls.config().clock.now();
        let mut conn = state.pool.acquire().await?;
        return redeem_ticket(&mut conn, ticket, now)
            .await?
            .ok_or_else(|| ApiError::unauthorized("the ticket is not valid, already used, or expired"));
    }
    let key = bearer(request).ok_or_else(|| {
        ApiError::unauthorized(
            "send `Authorization: Bearer <API key>` or `?ticket=` from POST /v1/events/tickets",
        )
    })?;
    Ok(crate::auth::key_owner(request, state, &key).await?.user.id)
}
