//! Results and spend: `/v1/campaigns/{id}/report`, `/v1/campaigns/{id}/results.csv`,
//! `/v1/calls/export`, `/v1/usage` and `/v1/admin/usage`. The figures' definitions are in
//! `call_service::results` and the README.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use call_service::results::report::CampaignReport;
use call_service::results::{
    campaign_report, export, usage, CallExportRange, ExportFormat, UsageGrouping, UsageQuery, UsageReport,
};
use call_service::UserId;
use chrono::{DateTime, Datelike, TimeZone, Utc};
use futures::TryStreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Admin, AuthenticatedUser};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

/// Registered before `/v1/calls/{id}`, which would otherwise take `export` for an id.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/campaigns/{id}/report", web::get().to(report))
        .route("/v1/campaigns/{id}/results.csv", web::get().to(results))
        .route("/v1/calls/export", web::get().to(calls_export))
        .route("/v1/usage", web::get().to(own_usage))
        .route("/v1/admin/usage", web::get().to(admin_usage));
}

fn parse_campaign_id(text: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(text).map_err(|_| invalid("id", "must be a uuid"))
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::validation(vec![FieldError { field: field.into(), message: message.into() }])
}

/// A campaign's figures: contacts by final state and by attempts, calls by outcome, connect and
/// voicemail rates, talk time, cost, and calls by the hour of the contact's local day.
#[utoipa::path(get, path = "/v1/campaigns/{id}/report", tag = "results", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CampaignReport), (status = 404, description = "No such campaign of this user")),
    security(("api_key" = [])))]
pub async fn report(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let campaign = state.calls.campaign(user.0.id, parse_campaign_id(&id)?).await?;
    let now = state.calls.config().clock.now();
    Ok(HttpResponse::Ok().json(campaign_report(&state.pool, campaign.id, now).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatQuery {
    /// `csv` (default) or `jsonl` (one JSON object per line).
    pub format: Option<String>,
}

fn parse_format(format: Option<&str>) -> Result<ExportFormat, ApiError> {
    format.map_or(Ok(ExportFormat::Csv), |f| {
        ExportFormat::parse(f).ok_or_else(|| invalid("format", "must be csv or jsonl"))
    })
}

/// A streamed download: sent as it is read, a page of rows at a time. A failure half-way ends the
/// response without its last chunk, which HTTP clients report as an incomplete body.
fn download(
    format: ExportFormat,
    name: &str,
    chunks: impl futures::Stream<Item = Result<Vec<u8>, sqlx::Error>> + 'static,
) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(format.content_type())
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}.{}\"", format.extension()),
        ))
        .streaming(chunks.map_ok(web::Bytes::from).map_err(|error| {
            tracing::error!(%error, "export stopped by a database error");
            error
        }))
}

/// A campaign's results, one row per contact: number, name, variables, final state, attempts,
/// last outcome, talk time, cost, the last call's extracted data, recording URL and ID.
#[utoipa::path(get, path = "/v1/campaigns/{id}/results.csv", tag = "results", params(("id" = uuid::Uuid, Path), FormatQuery),
    responses((status = 200, description = "CSV (`variables.<name>` and `extracted_data.<key>` columns), or JSON lines with `format=jsonl`",
        content((String = "text/csv"), (String = "application/jsonl"))),
        (status = 404, description = "No such campaign of this user")),
    security(("api_key" = [])))]
pub async fn results(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<FormatQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_campaign_id(&id)?;
    let format = parse_format(query.format.as_deref())?;
    let campaign = state.calls.campaign(user.0.id, id).await?;
    let chunks = export::campaign_results(state.pool.clone(), campaign.id, format).await?;
    Ok(download(format, &format!("campaign-{}-results", campaign.id), chunks))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// RFC 3339; calls created at or after it (default: all, from 1970).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; calls created before it (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `csv` (default) or `jsonl`.
    pub format: Option<String>,
}

/// A time of a range, RFC 3339 with any offset. A range whose `from` is not before its `to` is
/// empty, not an error: its answer has no rows.
fn parse_time(field: &str, text: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.map(|t| {
        DateTime::parse_from_rfc3339(t)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid(field, "must be an RFC 3339 time, e.g. 2026-12-01T00:00:00Z"))
    })
    .transpose()
}

/// The caller's direct calls created in a time range, oldest first: CSV or JSON lines.
#[utoipa::path(get, path = "/v1/calls/export", tag = "results", params(ExportQuery),
    responses((status = 200, description = "CSV (`extracted_data.<key>` columns), or JSON lines with `format=jsonl`",
        content((String = "text/csv"), (String = "application/jsonl")))),
    security(("api_key" = [])))]
pub async fn calls_export(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = parse_format(query.format.as_deref())?;
    let from = parse_time("from", query.from.as_deref())?.unwrap_or(DateTime::UNIX_EPOCH);
    let to = parse_time("to", query.to.as_deref())?.unwrap_or_else(|| state.calls.config().clock.now());
    let range = CallExportRange { user: user.0.id, from, to };
    let chunks = export::direct_calls(state.pool.clone(), range, format).await?;
    Ok(download(format, "direct-calls", chunks))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// RFC 3339; calls created at or after it (default: the start of this UTC month).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; calls created before it (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `day` (default, UTC days), `agent`, `campaign` or `call_type`.
    pub group_by: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AdminUsageParams {
    /// RFC 3339; calls created at or after it (default: the start of this UTC month).
    #[param(format = DateTime)]
    pub from: Option<String>,
    /// RFC 3339; calls created before it (default: now).
    #[param(format = DateTime)]
    pub to: Option<String>,
    /// `user` (default), `day` (UTC days), `agent`, `campaign` or `call_type`.
    pub group_by: Option<String>,
    /// One user's usage only.
    pub user_id: Option<uuid::Uuid>,
}

/// The groupings users may ask for, and operators (who also have `user`).
pub const USER_GROUPINGS: [UsageGrouping; 4] =
    [UsageGrouping::Day, UsageGrouping::Agent, UsageGrouping::Campaign, UsageGrouping::CallType];
pub const ADMIN_GROUPINGS: [UsageGrouping; 5] = [
    UsageGrouping::User,
    UsageGrouping::Day,
    UsageGrouping::Agent,
    UsageGrouping::Campaign,
    UsageGrouping::CallType,
];

/// The query of a usage request; `allowed[0]` is the default grouping.
fn usage_query(
    state: &AppState,
    (from, to, group_by): (Option<&str>, Option<&str>, Option<&str>),
    user: Option<UserId>,
    allowed: &[UsageGrouping],
) -> Result<UsageQuery, ApiError> {
    let now = state.calls.config().clock.now();
    let month_start = Utc.with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0).single().unwrap_or(now);
    let from = parse_time("from", from)?.unwrap_or(month_start);
    let to = parse_time("to", to)?.unwrap_or(now);
    let group_by = match group_by {
        None => allowed[0],
        Some(text) => UsageGrouping::parse(text).filter(|g| allowed.contains(g)).ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|g| g.as_str()).collect();
            invalid("group_by", &format!("must be one of {}", names.join(", ")))
        })?,
    };
    Ok(UsageQuery { user, from, to, group_by })
}

/// The caller's calls, connected calls, minutes and cost over a time range, grouped one way.
#[utoipa::path(get, path = "/v1/usage", tag = "results", params(UsageParams),
    responses((status = 200, body = UsageReport), (status = 422, description = "A time that is not RFC 3339")),
    security(("api_key" = [])))]
pub async fn own_usage(
    user: AuthenticatedUser,
    state: web::Data<AppState>,
    params: web::Query<UsageParams>,
) -> Result<HttpResponse, ApiError> {
    let text = (params.from.as_deref(), params.to.as_deref(), params.group_by.as_deref());
    let query = usage_query(&state, text, Some(user.0.id), &USER_GROUPINGS)?;
    let mut conn = state.pool.acquire().await?;
    Ok(HttpResponse::Ok().json(usage(&mut conn, query).await?))
}

/// Every user's (or one user's) usage over a time range, grouped one way (default: by user).
#[utoipa::path(get, path = "/v1/admin/usage", tag = "admin", params(AdminUsageParams),
    responses((status = 200, body = UsageReport), (status = 422, description = "A time that is not RFC 3339")),
    security(("admin_token" = [])))]
pub async fn admin_usage(
    _: Admin,
    state: web::Data<AppState>,
    params: web::Query<AdminUsageParams>,
) -> Result<HttpResponse, ApiError> {
    let text = (params.from.as_deref(), params.to.as_deref(), params.group_by.as_deref());
    let query = usage_query(&state, text, params.user_id.map(UserId::from), &ADMIN_GROUPINGS)?;
    let mut conn = state.pool.acquire().await?;
    Ok(HttpResponse::Ok().json(usage(&mut conn, query).await?))
}
