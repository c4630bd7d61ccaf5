//! `/healthz` (the process answers) and `/readyz` (the database answers and has every migration
//! this binary knows).

use std::time::Duration;

use actix_web::{get, web, HttpResponse};
use serde_json::json;

use crate::problem::ApiError;
use crate::state::AppState;

#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let query =
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(&state.pool);
    let applied = match tokio::time::timeout(Duration::from_secs(3), query).await {
        Err(_) => {
            return Err(ApiError::unavailable(
                "database_unreachable",
                "the database did not answer within 3 s",
            ))
        }
        Ok(Err(sqlx::Error::Database(error))) if error.code().as_deref() == Some("42P01") => {
            return Err(ApiError::unavailable(
                "migrations_pending",
                "the database has no migrations applied; run `switchboard migrate`",
            ));
        }
        Ok(Err(error)) => {
            return Err(ApiError::unavailable(
                "database_unreachable",
                format!("the database is unreachable: {error}"),
            ));
        }
        Ok(Ok(applied)) => applied.unwrap_or(0),
    };
    let expected = schema::latest_version();
    if applied < expected {
        return Err(ApiError::unavailable(
            "migrations_pending",
            format!("the database is at migration {applied}, this build needs {expected}; run `switchboard migrate`"),
        ));
    }
    Ok(HttpResponse::Ok().json(json!({"status": "ready", "migration": applied})))
}

/// Process alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers")))]
pub async fn healthz_doc() {}

/// Database reachable and every migration of this build applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, description = "Ready"), (status = 503, description = "`database_unreachable` or `migrations_pending`")))]
pub async fn readyz_doc() {}
