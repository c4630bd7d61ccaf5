//! The operator's API: users and limits, the slot table, force-release, and the API description.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with, ADMIN_TOKEN};

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;

    let anonymous = app.client.get(app.url("/v1/admin/users")).send().await.unwrap();
    let with_user_key =
        app.client.get(app.url("/v1/admin/users")).bearer_auth(&user.key).send().await.unwrap();
    let with_admin =
        app.client.get(app.url("/v1/admin/users")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();

    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(with_user_key.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(with_admin.status(), StatusCode::OK);
    let body: Value = with_admin.json().await.unwrap();
    assert_eq!(body["data"][0]["id"], user.id.as_str());
}

#[tokio::test]
async fn users_get_default_limits_and_invalid_limits_are_refused() {
    let app = spawn_app().await;

    let created = app
        .admin(app.client.post(app.url("/v1/admin/users")))
        .json(&json!({"name": "Acme"}))
        .send()
        .await
        .unwrap();
    let invalid = app
        .admin(app.client.post(app.url("/v1/admin/users")))
        .json(&json!({"name": " ", "direct_call_limit": -1}))
        .send()
        .await
        .unwrap();

    let created: Value = created.json().await.unwrap();
    assert_eq!(
        (created["user"]["direct_call_limit"].as_i64(), created["user"]["campaign_call_limit"].as_i64()),
        (Some(2), Some(5))
    );
    assert!(created["api_key"].as_str().unwrap().starts_with("sb_"));
    assert_eq!(invalid.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = invalid.json::<Value>().await.unwrap()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["name", "direct_call_limit"]);
}

#[tokio::test]
async fn raising_a_limit_starts_queued_calls_and_lowering_it_ends_none() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 0).await;
    let live = app.start_call(&user, "+15550000201", 201).await;
    let queued = app.start_call(&user, "+15550000202", 202).await;

    let raised = app
        .admin(app.client.patch(app.url(&format!("/v1/admin/users/{}", user.id))))
        .json(&json!({"direct_call_limit": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(raised.status(), StatusCode::OK);
    app.wait_for_call(&user, queued["id"].as_str().unwrap(), "the queued call to start", |c| {
        c["bolna_execution_id"].is_string()
    })
    .await;

    app.wait_for_status(&user, live["id"].as_str().unwrap(), "in-progress").await;
    let lowered = app
        .admin(app.client.patch(app.url(&format!("/v1/admin/users/{}", user.id))))
        .json(&json!({"direct_call_limit": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(lowered.json::<Value>().await.unwrap()["direct_call_limit"], 0);
    assert_eq!(
        app.call_json(&user, live["id"].as_str().unwrap()).await["status"],
        "in-progress",
        "live calls go on"
    );
    assert_eq!(app.concurrency(&user).await["direct"], json!({"active": 2, "limit": 0, "queued": 0}));
    let audits: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'update_limits'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(audits, 2);
    app.sim.hang_up_all();
}

#[tokio::test]
async fn an_operator_sees_the_slot_table_and_can_force_release_a_slot() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 0).await;
    let stuck = app.start_call(&user, "+15550000301", 201).await;
    let waiting = app.start_call(&user, "+15550000302", 202).await;
    let stuck_id = stuck["id"].as_str().unwrap();

    let table: Value = app
        .admin(app.client.get(app.url("/v1/admin/active-calls")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(table["data"][0]["id"], stuck_id);
    assert_eq!(table["data"][0]["bolna_execution_id"], stuck["bolna_execution_id"]);
    assert!(table["data"][0]["age_seconds"].as_f64().unwrap() >= 0.0);

    let released = app
        .admin(app.client.post(app.url(&format!("/v1/admin/active-calls/{stuck_id}/release"))))
        .json(&json!({"reason": "stuck in test"}))
        .send()
        .await
        .unwrap();
    let again = app
        .admin(app.client.post(app.url(&format!("/v1/admin/active-calls/{stuck_id}/release"))))
        .send()
        .await
        .unwrap();

    assert_eq!(released.status(), StatusCode::OK);
    assert_eq!(again.status(), StatusCode::NOT_FOUND, "released exactly once");
    let call = app.call_json(&user, stuck_id).await;
    assert_eq!(call["status"], "failed");
    assert!(call["error"].as_str().unwrap().contains("stuck in test"));
    app.wait_for_call(&user, waiting["id"].as_str().unwrap(), "the next call to get the slot", |c| {
        c["bolna_execution_id"].is_string()
    })
    .await;
    let audit: (String, Value) =
        sqlx::query_as("SELECT action, details FROM audit_log WHERE subject_id = $1::uuid")
            .bind(stuck_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(audit.0, "force_release");
    assert_eq!(audit.1["reason"], "stuck in test");
    app.sim.hang_up_all();
}

#[tokio::test]
async fn the_api_is_described_at_openapi_json_and_browsable_at_docs() {
    let app = spawn_app().await;

    let spec: Value = app.get("/openapi.json").await.json().await.unwrap();
    let docs = app.get("/docs").await;

    for path in [
        "/v1/calls",
        "/v1/calls/{id}",
        "/v1/calls/{id}/cancel",
        "/v1/concurrency",
        "/v1/admin/users",
        "/webhooks/bolna",
        "/readyz",
    ] {
        assert!(spec["paths"][path].is_object(), "{path} is described");
    }
    assert!(spec["components"]["schemas"]["CallResource"]["properties"]["bolna_execution_id"].is_object());
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("/openapi.json") && !html.contains("https://"), "self-contained");
}

#[tokio::test]
async fn limits_shown_to_a_user_are_current_even_with_a_cached_key() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;
    assert_eq!(app.concurrency(&user).await["direct"]["limit"], 2);

    // Changed behind the service's back (another instance, or SQL): the key stays cached for 30 s.
    sqlx::query("UPDATE users SET direct_call_limit = 7 WHERE id = $1::uuid")
        .bind(&user.id)
        .execute(&app.pool)
        .await
        .unwrap();

    assert_eq!(app.concurrency(&user).await["direct"]["limit"], 7);
}
