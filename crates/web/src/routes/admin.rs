//! `/v1/admin`: users and their limits, the slot table, force-release. Admin token only.

use actix_web::{web, HttpRequest, HttpResponse};
use call_service::audit::record_audit;
use call_service::users::{
    create_user, get_user, issue_api_key, list_users, update_limits, BudgetChange, IssuedKey, LimitsChange,
    NewUser, NumberCapChange, User,
};
use call_service::UserId;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use super::calls::parse_call_id;
use super::campaign_input::MAX_BUDGET;
use crate::auth::Admin;
use crate::extract::{read_json, read_optional_json, PageSize, PatchField};
use crate::problem::{ApiError, FieldError};
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/v1/admin/users", web::post().to(create))
        .route("/v1/admin/users", web::get().to(list))
        .route("/v1/admin/users/{id}", web::patch().to(update))
        .route("/v1/admin/active-calls", web::get().to(held_slots))
        .route("/v1/admin/active-calls/{id}/release", web::post().to(release))
        .route("/v1/admin/campaigns", web::get().to(campaigns))
        .route("/v1/admin/audit-log", web::get().to(audit_log));
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserResource {
    pub id: uuid::Uuid,
    pub name: String,
    pub direct_call_limit: i32,
    pub campaign_call_limit: i32,
    /// The user's own per-number cap: calls to one number, direct and every campaign, in a rolling
    /// 24 hours. `null`: the configured `limits.max_calls_per_number_per_day`; 0: no cap.
    pub max_calls_per_number_per_day: Option<i32>,
    /// In Bolna's currency: once the spend of the user's calls of this UTC month (reported costs,
    /// plus an estimate for live calls) reaches it, no new call is sent to Bolna. `null`: none.
    pub monthly_budget: Option<f64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<User> for UserResource {
    fn from(user: User) -> Self {
        Self {
            id: user.id.into(),
            name: user.name,
            direct_call_limit: user.direct_call_limit,
            campaign_call_limit: user.campaign_call_limit,
            max_calls_per_number_per_day: user.max_calls_per_number_per_day,
            monthly_budget: user.monthly_budget,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub name: String,
    /// Default `limits.default_direct_call_limit` (2).
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub direct_call_limit: Option<i64>,
    /// Default `limits.default_campaign_call_limit` (5).
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub campaign_call_limit: Option<i64>,
    /// The user's own per-number cap (0 = none); absent or `null`: the configured
    /// `limits.max_calls_per_number_per_day`.
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub max_calls_per_number_per_day: Option<i64>,
    /// In Bolna's currency, over the user's calls of each UTC month; absent or `null`: none.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub monthly_budget: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedUser {
    pub user: UserResource,
    /// Shown once: only its hash is stored.
    pub api_key: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLimitsRequest {
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub direct_call_limit: Option<i64>,
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub campaign_call_limit: Option<i64>,
    /// The user's own per-number cap (0 = none); `null`: back to the configured
    /// `limits.max_calls_per_number_per_day`; absent: unchanged.
    #[serde(default, deserialize_with = "crate::extract::patch_whole_number")]
    #[schema(value_type = Option<i64>, minimum = 0, maximum = 10000)]
    pub max_calls_per_number_per_day: PatchField<i64>,
    /// In Bolna's currency, over the user's calls of each UTC month; `null`: none; absent:
    /// unchanged.
    #[serde(default, deserialize_with = "crate::extract::patch_number")]
    #[schema(value_type = Option<f64>, minimum = 0, maximum = 1_000_000_000)]
    pub monthly_budget: PatchField<f64>,
}

/// Page sizes of the admin lists.
pub const USER_PAGE: PageSize = PageSize { default: 50, max: 200 };
pub const ACTIVE_CALL_PAGE: PageSize = PageSize { default: 500, max: 5000 };
pub const CAMPAIGN_PAGE: PageSize = PageSize { default: 50, max: 200 };
pub const AUDIT_PAGE: PageSize = PageSize { default: 100, max: 1000 };

fn budget_value(value: Option<f64>, errors: &mut Vec<FieldError>) -> Option<f64> {
    let value = value?;
    if (0.0..=MAX_BUDGET).contains(&value) {
        return Some(value);
    }
    errors.push(FieldError {
        field: "monthly_budget".into(),
        message: "must be between 0 and 1000000000".into(),
    });
    None
}

fn limit(field: &str, value: Option<i64>, errors: &mut Vec<FieldError>) -> Option<i32> {
    let value = value?;
    match i32::try_from(value) {
        Ok(v) if (0..=10_000).contains(&v) => Some(v),
        _ => {
            errors.push(FieldError { field: field.into(), message: "must be between 0 and 10000".into() });
            None
        }
    }
}

/// Create a user; its API key is shown once.
#[utoipa::path(post, path = "/v1/admin/users", tag = "admin", request_body = CreateUserRequest,
    responses((status = 201, body = CreatedUser), (status = 422, description = "Invalid input")),
    security(("admin_token" = [])))]
pub async fn create(
    admin: Admin,
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: CreateUserRequest = read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let mut errors = Vec::new();
    // At most 200 characters as sent (what /openapi.json's maxLength says), not blank.
    let name = body.name.trim().to_owned();
    if name.is_empty() || body.name.chars().count() > 200 {
        errors.push(FieldError { field: "name".into(), message: "must be 1 to 200 characters".into() });
    }
    let limits = &state.settings.limits;
    let direct = limit("direct_call_limit", body.direct_call_limit, &mut errors)
        .unwrap_or(limits.default_direct_call_limit as i32);
    let campaign = limit("campaign_call_limit", body.campaign_call_limit, &mut errors)
        .unwrap_or(limits.default_campaign_call_limit as i32);
    let number_cap = limit("max_calls_per_number_per_day", body.max_calls_per_number_per_day, &mut errors);
    let monthly_budget = budget_value(body.monthly_budget, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = state.pool.begin().await?;
    let user = create_user(
        &mut tx,
        &NewUser {
            name,
            direct_call_limit: direct,
            campaign_call_limit: campaign,
            max_calls_per_number_per_day: number_cap,
            monthly_budget,
        },
    )
    .await?;
    let IssuedKey::Issued { key, record } = issue_api_key(&mut tx, user.id, "default", None).await? else {
        return Err(ApiError::internal(anyhow::anyhow!("a new user already holds too many keys")));
    };
    let details = json!({"name": user.name, "direct_call_limit": direct, "campaign_call_limit": campaign,
        "max_calls_per_number_per_day": number_cap, "monthly_budget": monthly_budget, "key_id": record.id});
    record_audit(&mut tx, admin.actor(), "create_user", Some(user.id.into()), details).await?;
    tx.commit().await?;
    Ok(HttpResponse::Created().json(CreatedUser { user: user.into(), api_key: key.reveal().to_owned() }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<uuid::Uuid>,
}

/// Users, oldest first.
#[utoipa::path(get, path = "/v1/admin/users", tag = "admin", params(UserListQuery),
    responses((status = 200, description = "`{data: [user], next_cursor}`")),
    security(("admin_token" = [])))]
pub async fn list(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<UserListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = USER_PAGE.of(query.limit)?;
    let mut conn = state.pool.acquire().await?;
    let users = list_users(&mut conn, query.cursor.map(UserId::from), limit).await?;
    let next = (users.len() as i64 == limit).then(|| users.last().map(|u| u.id.to_string())).flatten();
    let data: Vec<UserResource> = users.into_iter().map(UserResource::from).collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data, "next_cursor": next})))
}

/// Change a user's limits. Lowering a limit never ends live calls.
#[utoipa::path(patch, path = "/v1/admin/users/{id}", tag = "admin", request_body = UpdateLimitsRequest,
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = UserResource), (status = 404), (status = 422)),
    security(("admin_token" = [])))]
pub async fn update(
    admin: Admin,
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body: UpdateLimitsRequest =
        read_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let id: UserId = id.parse().map_err(|_| {
        ApiError::validation(vec![FieldError { field: "id".into(), message: "must be a uuid".into() }])
    })?;
    let mut errors = Vec::new();
    let direct = limit("direct_call_limit", body.direct_call_limit, &mut errors);
    let campaign = limit("campaign_call_limit", body.campaign_call_limit, &mut errors);
    let number_cap = match body.max_calls_per_number_per_day {
        PatchField::Absent => NumberCapChange::Keep,
        PatchField::Null => NumberCapChange::UseDefault,
        PatchField::Value(cap) => match limit("max_calls_per_number_per_day", Some(cap), &mut errors) {
            Some(cap) => NumberCapChange::Set(cap),
            None => NumberCapChange::Keep,
        },
    };
    let monthly_budget = match body.monthly_budget {
        PatchField::Absent => BudgetChange::Keep,
        PatchField::Null => BudgetChange::Clear,
        PatchField::Value(budget) => match budget_value(Some(budget), &mut errors) {
            Some(budget) => BudgetChange::Set(budget),
            None => BudgetChange::Keep,
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut tx = state.pool.begin().await?;
    let before = get_user(&mut tx, id).await?.ok_or_else(|| ApiError::not_found("no such user"))?;
    let user = update_limits(&mut tx, id, &LimitsChange { direct, campaign, number_cap, monthly_budget })
        .await?
        .ok_or_else(|| ApiError::not_found("no such user"))?;
    let details = json!({
        "before": {"direct": before.direct_call_limit, "campaign": before.campaign_call_limit,
                   "per_number": before.max_calls_per_number_per_day, "monthly_budget": before.monthly_budget},
        "after": {"direct": user.direct_call_limit, "campaign": user.campaign_call_limit,
                  "per_number": user.max_calls_per_number_per_day, "monthly_budget": user.monthly_budget}
    });
    record_audit(&mut tx, admin.actor(), "update_limits", Some(id.into()), details).await?;
    tx.commit().await?;
    state.keys.forget_user(id);
    Ok(HttpResponse::Ok().json(UserResource::from(user)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActiveCallsQuery {
    pub user_id: Option<uuid::Uuid>,
    pub limit: Option<i64>,
}

/// The slot table: every held slot, oldest first, with its execution ID and age.
#[utoipa::path(get, path = "/v1/admin/active-calls", tag = "admin", params(ActiveCallsQuery),
    operation_id = "active_calls", // the name clients generated code from; the handler is named for what it lists
    responses((status = 200, description = "`{data: [slot]}`")),
    security(("admin_token" = [])))]
pub async fn held_slots(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<ActiveCallsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = ACTIVE_CALL_PAGE.of(query.limit)?;
    let mut conn = state.pool.acquire().await?;
    let rows = concurrency::list_held_slots(&mut conn, query.user_id.map(UserId::from), limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": rows})))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseRequest {
    /// Why (kept in the audit log).
    pub reason: Option<String>,
}

/// Force-release one slot (audited). The call is marked `failed` unless it already ended.
#[utoipa::path(post, path = "/v1/admin/active-calls/{id}/release", tag = "admin",
    params(("id" = uuid::Uuid, Path, description = "call id (= slot id)")),
    responses((status = 200, description = "Released"), (status = 404, description = "The call holds no slot")),
    security(("admin_token" = [])))]
pub async fn release(
    admin: Admin,
    request: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_call_id(&id)?;
    let body: Option<ReleaseRequest> =
        read_optional_json(&request, payload, state.settings.server.max_body_bytes).await?;
    let reason = body.and_then(|b| b.reason).unwrap_or_else(|| "no reason given".into());
    match state.calls.force_release(id, admin.actor(), &reason).await? {
        Some(released) => Ok(HttpResponse::Ok().json(serde_json::json!({"released": released}))),
        None => Err(ApiError::not_found("this call holds no slot")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AdminCampaignsQuery {
    /// 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<uuid::Uuid>,
}

/// Every user's campaigns with their progress, newest first.
#[utoipa::path(get, path = "/v1/admin/campaigns", tag = "admin", params(AdminCampaignsQuery),
    responses((status = 200, description = "`{data: [campaign], next_cursor}`"), (status = 422)),
    security(("admin_token" = [])))]
pub async fn campaigns(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<AdminCampaignsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = CAMPAIGN_PAGE.of(query.limit)?;
    let found = {
        let mut conn = state.pool.acquire().await?;
        call_service::campaigns::list_all_campaigns(&mut conn, query.cursor, limit).await?
    };
    let next = (found.len() as i64 == limit).then(|| found.last().map(|c| c.id)).flatten();
    let mut data = Vec::with_capacity(found.len());
    for campaign in found {
        data.push(super::campaigns::campaign_resource(&state, campaign).await?);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"data": data, "next_cursor": next})))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only actions on this user, key or call.
    pub subject_id: Option<uuid::Uuid>,
    /// 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<i64>,
}

/// The audit log, newest first: who created users, changed limits, issued or revoked keys, or
/// force-released slots (`actor` is `admin:<token fingerprint>`, `user:<id>` or `cli`).
#[utoipa::path(get, path = "/v1/admin/audit-log", tag = "admin", params(AuditQuery),
    responses((status = 200, description = "`{data: [entry], next_cursor}`")),
    security(("admin_token" = [])))]
pub async fn audit_log(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = AUDIT_PAGE.of(query.limit)?;
    if query.cursor.is_some_and(|cursor| cursor < 1) {
        return Err(ApiError::validation(vec![FieldError {
            field: "cursor".into(),
            message: "must be a `next_cursor` this API returned (1 or more)".into(),
        }]));
    }
    let mut conn = state.pool.acquire().await?;
    let entries = call_service::audit::list_audit(&mut conn, query.subject_id, query.cursor, limit).await?;
    let next = (entries.len() as i64 == limit).then(|| entries.last().map(|e| e.id)).flatten();
    Ok(HttpResponse::Ok().json(json!({"data": entries, "next_cursor": next})))
}
