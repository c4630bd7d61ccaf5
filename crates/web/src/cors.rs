//! CORS for browser frontends: only the exact origins in `http.cors_allowed_origins` (none by
//! default) may call the API from a browser, with the headers the API uses.

use actix_cors::Cors;
use actix_web::http::header;

pub fn policy(allowed_origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PATCH", "DELETE", "OPTIONS"])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .allowed_header("idempotency-key")
        .allowed_header("last-event-id")
        .expose_headers(["x-request-id", "location"])
        .max_age(600);
    for origin in allowed_origins {
        cors = cors.allowed_origin(origin.trim_end_matches('/'));
    }
    cors
}
