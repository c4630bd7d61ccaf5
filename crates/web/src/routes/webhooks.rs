//! `POST /webhooks/bolna`: Bolna's status changes. Answers 2xx only once the event is stored; a
//! body that is not a webhook is stored as rejected and answered 400. Unauthenticated requests are
//! refused before anything is stored (so strangers cannot fill the table).

use actix_web::{web, HttpRequest, HttpResponse};
use call_service::webhooks::WebhookReceipt;
use serde_json::json;

use crate::extract::read_body;
use crate::problem::ApiError;
use crate::state::AppState;

pub fn routes(config: &mut web::ServiceConfig) {
    config.route("/webhooks/bolna", web::post().to(receive));
}

/// Receive one of Bolna's execution webhooks.
#[utoipa::path(post, path = "/webhooks/bolna", tag = "webhooks",
    params(
        ("X-Webhook-Token" = Option<String>, Header, description = "the shared secret (or use ?token=)"),
        ("token" = Option<String>, Query, description = "the shared secret, where headers cannot be set"),
    ),
    request_body(content = inline(Object), description = "Bolna's execution object"),
    responses(
        (status = 200, description = "Stored (and applied, or kept for later)"),
        (status = 400, description = "Not a webhook body: stored as rejected"),
        (status = 422, description = "`id` or `status` holds a NUL character or is longer than 255 characters: stored as rejected (NUL characters elsewhere are removed before the body is applied; its bytes are stored as received)"),
        (status = 401, description = "Missing or wrong token"),
        (status = 403, description = "Source address not allowed"),
        (status = 413, description = "Body too large"),
    ))]
pub async fn receive(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let client = state.webhook_guard.check(&request)?;
    let body = read_body(payload, state.settings.server.max_body_bytes).await?;
    let source = client.map(|ip| ip.to_string());
    match state.calls.receive_webhook(&body, source.as_deref()).await? {
        WebhookReceipt::Stored { event_id, outcome, call_id } => Ok(HttpResponse::Ok().json(json!({
            "event_id": event_id,
            "outcome": outcome.as_str(),
            "call_id": call_id.map(|id| id.to_string()),
        }))),
        WebhookReceipt::Rejected { event_id, reason } => {
            Err(ApiError::bad_request("invalid_webhook", reason).with("event_id", event_id))
        }
        WebhookReceipt::RejectedField { event_id, field, reason } => {
            Err(ApiError::new(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY, "invalid_character", reason)
                .with("event_id", event_id)
                .with("field", field))
        }
    }
}
