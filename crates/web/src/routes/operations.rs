//! `/metrics` (Prometheus text) and `/v1/admin/diagnostics` (the stuck-call numbers as JSON).

use actix_web::{web, HttpResponse};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Admin;
use crate::problem::ApiError;
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/metrics", web::get().to(metrics))
        .route("/v1/admin/diagnostics", web::get().to(diagnostics));
}

/// Prometheus metrics: slots in use and limits, account lines, queue depth and oldest queued age,
/// Bolna request latency and outcomes, webhook events and lag, reconciler actions.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let body = state.calls.render_metrics().await?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(body))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DiagnosticsQuery {
    /// A non-terminal call unchanged for longer than this counts as stuck (default 3600).
    #[param(minimum = 1, maximum = 2_592_000)]
    pub stale_after_seconds: Option<i64>,
}

/// Stuck slots, slots missing an execution ID, calls non-terminal for too long, unapplied webhook
/// events and webhook lag, the queue and scheduled calls, the account's lines (in use, configured,
/// and Bolna's own `concurrency.max` from `GET /user/me`), Bolna's rate limit and its free send
/// tokens, and the circuit, as numbers.
#[utoipa::path(get, path = "/v1/admin/diagnostics", tag = "admin", params(DiagnosticsQuery),
    responses((status = 200, description = "The numbers; the first two should be 0")),
    security(("admin_token" = [])))]
pub async fn diagnostics(
    _: Admin,
    state: web::Data<AppState>,
    query: web::Query<DiagnosticsQuery>,
) -> Result<HttpResponse, ApiError> {
    let stale_after = query.stale_after_seconds.unwrap_or(3600);
    if !(1..=30 * 24 * 3600).contains(&stale_after) {
        return Err(ApiError::validation(vec![crate::problem::FieldError {
            field: "stale_after_seconds".into(),
            message: "must be between 1 and 2592000".into(),
        }]));
    }
    Ok(HttpResponse::Ok().json(state.calls.diagnostics(stale_after).await?))
}
