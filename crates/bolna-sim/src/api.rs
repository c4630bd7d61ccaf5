//! Bolna's REST API as the simulator speaks it: `POST /call`, `GET /executions/{id}`,
//! `GET /v2/agent/{agent_id}/executions`, `POST /call/{id}/stop`, `GET /user/me`. Errors use
//! Bolna's bodies: `{"error": code, "message": ...}` (401 as documented) or `{"detail": ...}`.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use bolna_client::{parse_timestamp, CallRequest, ExecutionStatus};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::faults::CallFault;
use crate::lifecycle::{self, Ending};
use crate::state::SimState;

type State = web::Data<Arc<SimState>>;

pub fn routes(config: &mut web::ServiceConfig) {
    config
        .route("/call", web::post().to(start_call))
        .route("/call/{id}/stop", web::post().to(stop_call))
        .route("/executions/{id}", web::get().to(get_execution))
        .route("/v2/agent/{agent_id}/executions", web::get().to(list_executions))
        .route("/user/me", web::get().to(user_me));
}

fn error(status: StatusCode, code: u16, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": code, "message": message}))
}

/// The refusal for a request without a valid bearer key, if any.
fn denied(request: &HttpRequest, state: &SimState) -> Option<HttpResponse> {
    let presented = request
        .headers()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match (state.config().api_key, presented) {
        (_, None) => Some(error(StatusCode::UNAUTHORIZED, 401, "Access denied")),
        (Some(key), Some(presented)) if key != presented => {
            Some(HttpResponse::Forbidden().json(json!({"detail": "Invalid API key"})))
        }
        _ => None,
    }
}

fn is_e164(number: &str) -> bool {
    let digits = number.strip_prefix('+').unwrap_or("");
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

fn validate(body: &Value) -> Result<CallRequest, String> {
    let object = body.as_object().ok_or("the body must be a JSON object")?;
    match object.get("agent_id").and_then(Value::as_str) {
        Some(agent) if !agent.trim().is_empty() => {}
        _ => return Err("agent_id is required".into()),
    }
    match object.get("recipient_phone_number").and_then(Value::as_str) {
        None => return Err("recipient_phone_number is required".into()),
        Some(number) if !is_e164(number) => {
            return Err("recipient_phone_number must be in E.164 format".into());
        }
        Some(_) => {}
    }
    if let Some(from) = object.get("from_phone_number").filter(|v| !v.is_null()) {
        if !from.as_str().is_some_and(is_e164) {
            return Err("from_phone_number must be an E.164 number of this account".into());
        }
    }
    if object.get("user_data").is_some_and(|v| !v.is_null() && !v.is_object()) {
        return Err("user_data must be an object".into());
    }
    serde_json::from_value(body.clone()).map_err(|e| e.to_string())
}

async fn start_call(request: HttpRequest, state: State, body: web::Bytes) -> HttpResponse {
    state.stats().call_requests += 1;
    if let Some(denied) = denied(&request, &state) {
        return denied;
    }
    if let Some(limit) = state.config().rate_limit {
        if let Err(retry_after) = state.take_rate(limit) {
            let recipient = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|body| body.get("recipient_phone_number")?.as_str().map(str::to_owned));
            let mut stats = state.stats();
            stats.rate_limited += 1;
            if let Some(recipient) = recipient {
                stats.refused(&recipient);
            }
            drop(stats);
            return HttpResponse::TooManyRequests()
                .insert_header(("Retry-After", retry_after.as_secs_f64().ceil().max(1.0).to_string()))
                .json(json!({"error": 429, "message": "Rate limit exceeded"}));
        }
    }
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(_) => return error(StatusCode::BAD_REQUEST, 1000, "Invalid JSON body"),
    };
    let call = match validate(&parsed) {
        Ok(call) => call,
        Err(message) => return error(StatusCode::BAD_REQUEST, 1001, &message),
    };
    let fault = {
        let mut faults = state.faults();
        if faults.api_down {
            return error(StatusCode::SERVICE_UNAVAILABLE, 503, "Service temporarily unavailable");
        }
        faults.take_call_fault(&call.recipient_phone_number)
    };
    let mut forced = None;
    let mut answer_delay = None;
    let mut answer_status = StatusCode::OK;
    match fault {
        Some(CallFault::RateLimited { retry_after_seconds }) => {
            state.stats().refused(&call.recipient_phone_number);
            let mut response = HttpResponse::TooManyRequests();
            if let Some(seconds) = retry_after_seconds {
                response.insert_header(("Retry-After", seconds.to_string()));
            }
            return response.json(json!({"error": 429, "message": "Rate limit exceeded"}));
        }
        Some(CallFault::ServerError { status }) => {
            state.stats().refused(&call.recipient_phone_number);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, status.as_u16(), "Internal server error");
        }
        Some(CallFault::AcceptThenError { status }) => {
            answer_status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
        }
        Some(CallFault::AcceptThenDelay { delay_ms }) => answer_delay = Some(Duration::from_millis(delay_ms)),
        Some(CallFault::Latency { delay_ms }) => tokio::time::sleep(Duration::from_millis(delay_ms)).await,
        Some(CallFault::Outcome { status }) => forced = Some(Ending::Status(ExecutionStatus::parse(&status))),
        Some(CallFault::Voicemail) => forced = Some(Ending::Voicemail),
        None => {}
    }
    let execution_id = lifecycle::start(&state, &call, forced);
    if let Some(delay) = answer_delay {
        tokio::time::sleep(delay).await;
    }
    if answer_status != StatusCode::OK {
        return HttpResponse::build(answer_status).body("Bad Gateway");
    }
    HttpResponse::Ok().json(json!({"message": "done", "status": "queued", "execution_id": execution_id}))
}

async fn stop_call(request: HttpRequest, state: State, id: web::Path<String>) -> HttpResponse {
    if let Some(denied) = denied(&request, &state) {
        return denied;
    }
    let mut executions = state.executions();
    let Some(execution) = executions.get_mut(id.as_str()) else {
        return HttpResponse::NotFound().json(json!({"detail": "Execution not found"}));
    };
    if !execution.body.status.is_pending() || execution.stop_requested {
        let message = format!("Execution cannot be stopped in status {}", execution.body.status);
        return error(StatusCode::BAD_REQUEST, 1002, &message);
    }
    execution.stop_requested = true;
    execution.wake.notify_one();
    HttpResponse::Ok().json(json!({"message": "done", "status": "stopped", "execution_id": id.as_str()}))
}

async fn get_execution(request: HttpRequest, state: State, id: web::Path<String>) -> HttpResponse {
    if let Some(denied) = denied(&request, &state) {
        return denied;
    }
    match state.executions().get(id.as_str()) {
        Some(execution) => HttpResponse::Ok().json(&execution.body),
        None => HttpResponse::NotFound().json(json!({"detail": "Execution not found"})),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    from: Option<String>,
    to: Option<String>,
    page_number: Option<u32>,
    page_size: Option<u32>,
    status: Option<String>,
}

async fn list_executions(
    request: HttpRequest,
    state: State,
    agent: web::Path<String>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    if let Some(denied) = denied(&request, &state) {
        return denied;
    }
    let (Some(from), Some(to)) = (query.from.as_deref(), query.to.as_deref()) else {
        return error(StatusCode::BAD_REQUEST, 1003, "from and to are required together");
    };
    let (Some(from), Some(to)) = (parse_timestamp(from), parse_timestamp(to)) else {
        return error(StatusCode::BAD_REQUEST, 1003, "from and to must be ISO 8601 UTC timestamps");
    };
    if to <= from || to - from > chrono::TimeDelta::days(7) {
        return error(StatusCode::BAD_REQUEST, 1003, "the window may span at most 7 days");
    }
    let page_number = query.page_number.unwrap_or(1).max(1);
    let page_size = query.page_size.unwrap_or(50);
    if page_size == 0 || page_size > 50 {
        return error(StatusCode::BAD_REQUEST, 1003, "page_size must be between 1 and 50");
    }
    let mut matching: Vec<_> = state
        .executions()
        .values()
        .filter(|e| e.agent_id == *agent)
        .filter(|e| e.body.created_at.is_some_and(|at| at >= from && at < to))
        .filter(|e| query.status.as_deref().is_none_or(|s| e.body.status.as_str() == s))
        .map(|e| e.body.clone())
        .collect();
    matching.sort_by_key(|e| std::cmp::Reverse(e.created_at));
    let total = matching.len();
    let start = ((page_number - 1) * page_size) as usize;
    let data: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(page_size as usize)
        .map(|e| {
            // Listing items are trimmed, as Bolna's are; fetch by id for the full record.
            let telephony = e.telephony_data.clone().unwrap_or_default();
            json!({
                "id": e.id,
                "status": e.status,
                "conversation_duration": e.conversation_duration,
                "created_at": e.created_at,
                "telephony_data": {
                    "to_number": telephony.to_number,
                    "from_number": telephony.from_number,
                    "duration": telephony.duration.map(|d| d.to_string()),
                }
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "page_number": page_number,
        "page_size": page_size,
        "total": total,
        "has_more": start + data.len() < total,
        "data": data,
    }))
}

async fn user_me(request: HttpRequest, state: State) -> HttpResponse {
    if let Some(denied) = denied(&request, &state) {
        return denied;
    }
    let config = state.config();
    let current = state.stats().lines_in_use;
    HttpResponse::Ok().json(json!({
        "id": "a3c5e7f9-1b2d-4f6a-8c0e-2d4f6a8c0e1b",
        "name": "Bolna simulator",
        "email": "sim@example.com",
        "wallet": config.wallet,
        "concurrency": {"max": config.account_concurrency, "current": current},
    }))
}
