//! `/v1/campaigns…` and `/v1/dnc…`: campaigns, their contacts and state, and the do-not-call list.

use actix_web::{web, HttpRequest, HttpResponse};
use call_service::campaigns::contacts_input::{contacts_from_csv, validate_rows, RawContact, RejectedRow};
use call_service::campaigns::{
    add_to_dnc, campaign_stats, list_contacts, list_dnc, remove_from_dnc, Campaign, CampaignAction,
    CampaignStats, CampaignStatus, ContactStatus,
};
use call_service::PhoneNumber;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::campaign_input::{window_output, CampaignInput, RetryInput, WindowInput};
use crate::auth::AuthenticatedUser;
use crate::extract::{read_body, read_json, PageSize};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/campaigns", web::post().to(create))
        .route("/v1/campaigns", web::get().to(list))
        .route("/v1/campaigns/{id}", web::get().to(get))
        .route("/v1/campaigns/{id}", web::patch().to(update))
        .route("/v1/campaigns/{id}/contacts", web::post().to(add_contacts))
        .route("/v1/campaigns/{id}/contacts", web::get().to(contacts))
        .route("/v1/campaigns/{id}/{action}", web::post().to(action))
        .route("/v1/dnc", web::post().to(dnc_add))
        .route("/v1/dnc", web::get().to(dnc_list))
        .route("/v1/dnc/{phone_number}", web::delete().to(dnc_remove));
}

/// A campaign with its progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignResource {
    pub id: Uuid,
    pub user_id: Uuid,
    /// `draft`, `running`, `paused`, `completed`, `canceled`.
    pub status: String,
    /// Why a paused campaign is paused: `user`, or `budget_exhausted` (its budget or its user's
    /// monthly budget is spent); `null` otherwise.
    pub pause_reason: Option<String>,
    /// In Bolna's currency; `null`: none of its own.
    pub budget: Option<f64>,
    pub name: String,
    pub agent_id: String,
    pub from_phone_numbers: Vec<String>,
    pub timezone: String,
    pub window: Option<WindowInput>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_concurrency: i32,
    pub calls_per_minute: Option<i32>,
    pub retry: RetryInput,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Whether the window is open now in the campaign's time zone.
    pub window_open: bool,
    /// When it opens next, if closed.
    pub next_window_at: Option<DateTime<Utc>>,
    #[schema(value_type = Object)]
    pub stats: CampaignStats,
}

pub(crate) async fn campaign_resource(
    state: &AppState,
    campaign: Campaign,
) -> Result<CampaignResource, ApiError> {
    let mut conn = state.pool.acquire().await?;
    let stats = campaign_stats(&mut conn, campaign.id).await?;
    let now = state.calls.config().clock.now();
    let tz = call_service::campaigns::window::parse_tz(&campaign.timezone).unwrap_or(chrono_tz::UTC);
    let window = campaign.window();
    let window_open = window.as_ref().is_none_or(|w| w.is_open(now, tz));
    let next_window_at = match (&window, window_open) {
        (Some(w), false) => w.next_open(now, tz),
        _ => None,
    };
    Ok(CampaignResource {
        id: campaign.id,
        user_id: campaign.user_id.into(),
        status: campaign.status.as_str().to_owned(),
        pause_reason: campaign.pause_reason.filter(|_| campaign.status == CampaignStatus::Paused),
        budget: campaign.budget,
        window: window.as_ref().map(window_output),
        retry: RetryInput {
            on: campaign.retry_on,
            delay_seconds: campaign.retry_delay_seconds.into(),
            max_attempts: campaign.max_attempts.into(),
        },
        name: campaign.name,
        agent_id: campaign.agent_id,
        from_phone_numbers: campaign.from_phone_numbers,
        timezone: campaign.timezone,
        starts_at: campaign.starts_at,
        ends_at: campaign.ends_at,
        max_concurrency: campaign.max_concurrency,
        calls_per_minute: campaign.calls_per_minute,
        created_at: campaign.created_at,
        started_at: campaign.started_at,
        ended_at: campaign.ended_at,
        window_open,
        next_window_at,
        stats,
    })
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| {
        ApiError::validation(vec![FieldError { field: "id".into(), message: "must be a uuid".into() }])
    })
}

/// Create a campaign (status `draft`).
#[utoipa::path(post, path = "/v1/campaigns", tag = "campaigns", request_body = CampaignInput,
    responses((status = 201, body = CampaignResource), (status = 422, description = "Invalid settings")),
    security(("api_key" = [])))]
pub async fn create(
    user: AuthenticatedUser,
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: CampaignInput = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let campaign = state.calls.create_campaign(user.0.id, &input.validate()?).await?;
    Ok(HttpResponse::Created().json(campaign_resource(&state, campaign).await?))
}

/// Change a `draft` or `paused` campaign's settings (only the fields sent).
#[utoipa::path(patch, path = "/v1/campaigns/{id}", tag = "campaigns", request_body = CampaignInput,
    params(("id" = Uuid, Path)),
    responses((status = 200, body = CampaignResource), (status = 409, description = "Not draft or paused"), (status = 422)),
    security(("api_key" = [])))]
pub async fn update(
    user: AuthenticatedUser,
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let patch: CampaignInput = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let current = state.calls.campaign(user.0.id, id).await?;
    let settings = CampaignInput::from_campaign(&current).overlay(patch).validate()?;
    let campaign = state.calls.update_campaign(user.0.id, id, &settings).await?;
    Ok(HttpResponse::Ok().json(campaign_resource(&state, campaign).await?))
}

/// Page sizes of the campaign, contact and do-not-call lists.
pub const CAMPAIGN_PAGE: PageSize = PageSize { default: 20, max: 100 };
pub const CONTACT_PAGE: PageSize = PageSize { default: 50, max: 500 };
pub const DNC_PAGE: PageSize = PageSize { default: 100, max: 1000 };

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub status: Option<String>,
}

/// The caller's campaigns, newest first.
#[utoipa::path(get, path = "/v1/campaigns", tag = "campaigns", params(PageQuery),
    responses((status = 200, description = "`{data: [campaign], next_cursor}`")), security(("api_key" = [])))]
pub async fn list(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = CAMPAIGN_PAGE.of(query.limit)?;
    let after = query.cursor.as_deref().map(parse_id).transpose()?;
    let campaigns = state.calls.campaigns(user.0.id, after, limit).await?;
    let next =
        (campaigns.len() as i64 == limit).then(|| campaigns.last().map(|c| c.id.to_string())).flatten();
    let mut data = Vec::with_capacity(campaigns.len());
    for campaign in campaigns {
        data.push(campaign_resource(&state, campaign).await?);
    }
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

/// One campaign with its progress.
#[utoipa::path(get, path = "/v1/campaigns/{id}", tag = "campaigns", params(("id" = Uuid, Path)),
    responses((status = 200, body = CampaignResource), (status = 404)), security(("api_key" = [])))]
pub async fn get(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let campaign = state.calls.campaign(user.0.id, parse_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(campaign_resource(&state, campaign).await?))
}

/// `start`, `pause`, `resume` or `cancel` a campaign.
#[utoipa::path(post, path = "/v1/campaigns/{id}/{action}", tag = "campaigns",
    params(("id" = Uuid, Path), ("action" = String, Path, description = "start | pause | resume | cancel")),
    responses((status = 200, body = CampaignResource), (status = 409, description = "Not allowed from the current status")),
    security(("api_key" = [])))]
pub async fn action(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, action) = path.into_inner();
    let id = parse_id(&id)?;
    let action = CampaignAction::parse(&action)
        .ok_or_else(|| ApiError::not_found("use start, pause, resume or cancel"))?;
    let campaign = state.calls.campaign_action(user.0.id, id, action).await?;
    Ok(HttpResponse::Ok().json(campaign_resource(&state, campaign).await?))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    pub phone_number: Option<String>,
    pub name: Option<String>,
    pub timezone: Option<String>,
    #[schema(value_type = Object)]
    pub variables: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactsInput {
    pub contacts: Vec<ContactInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactsAdded {
    pub accepted: u64,
    pub duplicates: u64,
    #[schema(value_type = Vec<Object>)]
    pub rejected: Vec<RejectedRow>,
}

/// Add contacts as JSON (`{"contacts": [...]}`) or CSV (`text/csv`, header row with
/// `contact_number` or `phone_number`, optional `name`, `timezone`, other columns = variables).
#[utoipa::path(post, path = "/v1/campaigns/{id}/contacts", tag = "campaigns", params(("id" = Uuid, Path)),
    request_body(content = ContactsInput, description = "JSON, or text/csv"),
    responses((status = 200, body = ContactsAdded), (status = 409, description = "Campaign over")),
    security(("api_key" = [])))]
pub async fn add_contacts(
    user: AuthenticatedUser,
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&id)?;
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Contact lists are larger than other bodies: up to 32 MiB.
    let limit = state.settings.server.max_body_bytes.max(32 << 20);
    let (accepted, rejected) = if content_type.starts_with("text/csv") {
        let body = read_body(payload, limit).await?;
        contacts_from_csv(&body).map_err(|reason| ApiError::bad_request("invalid_csv", reason))?
    } else {
        let input: ContactsInput = read_json(&request, payload, limit).await?;
        let rows = input
            .contacts
            .into_iter()
            .map(|c| RawContact {
                phone_number: c.phone_number,
                name: c.name,
                timezone: c.timezone,
                variables: c.variables.unwrap_or_default(),
            })
            .collect();
        validate_rows(rows, 1)
    };
    let (added, duplicates) = state.calls.add_campaign_contacts(user.0.id, id, &accepted).await?;
    Ok(HttpResponse::Ok().json(ContactsAdded { accepted: added, duplicates, rejected }))
}

/// A campaign's contacts, in insertion order.
#[utoipa::path(get, path = "/v1/campaigns/{id}/contacts", tag = "campaigns", params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, description = "`{data: [contact], next_cursor}`")), security(("api_key" = [])))]
pub async fn contacts(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let campaign = state.calls.campaign(user.0.id, parse_id(&id)?).await?;
    let status = query
        .status
        .as_deref()
        .map(|s| s.parse::<ContactStatus>())
        .transpose()
        .map_err(|m| ApiError::validation(vec![FieldError { field: "status".into(), message: m }]))?;
    let after = query.cursor.as_deref().map(parse_id).transpose()?;
    let limit = CONTACT_PAGE.of(query.limit)?;
    let mut conn = state.pool.acquire().await?;
    let data = list_contacts(&mut conn, campaign.id, status, after, limit).await?;
    let next = (data.len() as i64 == limit).then(|| data.last().map(|c| c.id.to_string())).flatten();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DncInput {
    pub phone_numbers: Vec<String>,
}

/// Add numbers to the caller's do-not-call list.
#[utoipa::path(post, path = "/v1/dnc", tag = "campaigns", request_body = DncInput,
    responses((status = 200, description = "`{added: n}`"), (status = 422)), security(("api_key" = [])))]
pub async fn dnc_add(
    user: AuthenticatedUser,
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let input: DncInput = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let mut numbers = Vec::new();
    let mut errors = Vec::new();
    for (index, raw) in input.phone_numbers.iter().enumerate() {
        match PhoneNumber::parse(raw) {
            Ok(number) => numbers.push(number),
            Err(message) => errors.push(FieldError { field: format!("phone_numbers[{index}]"), message }),
        }
    }
    if !errors.is_empty() || numbers.is_empty() {
        if errors.is_empty() {
            errors.push(FieldError {
                field: "phone_numbers".into(),
                message: "give at least one number".into(),
            });
        }
        return Err(ApiError::validation(errors));
    }
    let mut conn = state.pool.acquire().await?;
    let added = add_to_dnc(&mut conn, user.0.id, &numbers).await?;
    Ok(HttpResponse::Ok().json(json!({"added": added})))
}

/// The caller's do-not-call list, in number order.
#[utoipa::path(get, path = "/v1/dnc", tag = "campaigns", params(PageQuery),
    responses((status = 200, description = "`{data: [{phone_number, created_at}], next_cursor}`")), security(("api_key" = [])))]
pub async fn dnc_list(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = DNC_PAGE.of(query.limit)?;
    let mut conn = state.pool.acquire().await?;
    let rows = list_dnc(&mut conn, user.0.id, query.cursor.as_deref(), limit).await?;
    let next = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.0.clone())).flatten();
    let data: Vec<Value> =
        rows.into_iter().map(|(n, at)| json!({"phone_number": n, "created_at": at})).collect();
    Ok(HttpResponse::Ok().json(json!({"data": data, "next_cursor": next})))
}

/// Remove a number from the caller's do-not-call list.
#[utoipa::path(delete, path = "/v1/dnc/{phone_number}", tag = "campaigns", params(("phone_number" = String, Path)),
    responses((status = 204), (status = 404)), security(("api_key" = [])))]
pub async fn dnc_remove(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let number = PhoneNumber::parse(&number)
        .map_err(|m| ApiError::validation(vec![FieldError { field: "phone_number".into(), message: m }]))?;
    let mut conn = state.pool.acquire().await?;
    match remove_from_dnc(&mut conn, user.0.id, number.as_str()).await? {
        true => Ok(HttpResponse::NoContent().finish()),
        false => Err(ApiError::not_found("the number is not on the list")),
    }
}
