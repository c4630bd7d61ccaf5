use crate::helpers::{spawn_app, spawn_app_with};
use secrecy::SecretString;

#[tokio::test]
async fn healthz_answers_ok() {
    let app = spawn_app().await;

    let response = app.get("/healthz").await;

    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers().contains_key("x-request-id"), "request id is echoed");
}

#[tokio::test]
async fn readyz_answers_ok_when_the_database_is_migrated() {
    let app = spawn_app().await;

    let response = app.get("/readyz").await;

    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["migration"], schema::latest_version());
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_unreachable() {
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let app = spawn_app_with(
        |settings| {
            settings.database.url =
                Some(SecretString::from(format!("postgres://postgres@127.0.0.1:{port}/nothing")));
            settings.database.acquire_timeout_seconds = 1;
        },
        |_| {},
    )
    .await;

    let response = app.get("/readyz").await;

    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], "database_unreachable");
    assert!(body["detail"].as_str().unwrap_or_default().contains("unreachable"), "{body}");
}

#[tokio::test]
async fn readyz_is_503_when_migrations_are_pending() {
    let app = spawn_app().await;
    sqlx::query("DELETE FROM _sqlx_migrations").execute(&app.pool).await.expect("forget migrations");

    let response = app.get("/readyz").await;

    assert_eq!(response.status().as_u16(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], "migrations_pending");
}

#[tokio::test]
async fn unknown_routes_get_a_problem_json_404() {
    let app = spawn_app().await;

    let response = app.get("/no/such/route").await;

    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["code"], "not_found");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn only_configured_browser_origins_get_cors_headers() {
    let app =
        spawn_app_with(|s| s.http.cors_allowed_origins = vec!["https://app.example.com".into()], |_| {})
            .await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/v1/calls"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header("Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
            .send()
    };

    let allowed = preflight("https://app.example.com").await.expect("sent");
    let other = preflight("https://evil.example.com").await.expect("sent");
    let simple = app
        .client
        .get(app.url("/healthz"))
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .expect("sent");

    assert!(allowed.status().is_success());
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(other.headers().get("access-control-allow-origin").is_none(), "unknown origins get nothing");
    assert_eq!(simple.headers()["access-control-allow-origin"], "https://app.example.com");
    assert!(simple.headers()["access-control-expose-headers"].to_str().unwrap().contains("x-request-id"));
}

#[tokio::test]
async fn connections_the_database_dropped_are_replaced_when_idle_ones_are_pinged() {
    // Ping every pooled connection before use (a threshold of 0 s idle).
    let app = spawn_app_with(|settings| settings.database.ping_idle_after_seconds = 0, |_| {}).await;
    let user = app.create_user(2, 5).await;
    assert_eq!(app.get_json_as(&user, "/v1/calls").await["data"], serde_json::json!([]));

    // The database drops every connection the server holds (a restart, a proxy's idle cut).
    let dropped: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE datname = current_database() AND pid <> pg_backend_pid()) t",
    )
    .fetch_one(&app.pool)
    .await
    .expect("terminate backends");
    assert!(dropped >= 1, "the server held at least one connection");

    // The dead connections fail their ping and are replaced: the requests succeed.
    for _ in 0..3 {
        assert_eq!(app.get_json_as(&user, "/v1/calls").await["data"], serde_json::json!([]));
        assert_eq!(app.concurrency(&user).await["direct"]["limit"], 2);
    }
}
