//! Running for months: API keys with a lifecycle (several per user, expiry, revocation that reaches
//! every instance), several admin tokens, per-key request limits, and the retention of webhook
//! bodies.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::{
    fresh_database, sim_config, spawn_app, spawn_app_with, spawn_instance, TestApp, TestUser, ADMIN_TOKEN,
};

async fn status_with(app: &TestApp, key: &str) -> StatusCode {
    app.client.get(app.url("/v1/calls")).bearer_auth(key).send().await.unwrap().status()
}

/// `DELETE /v1/api-keys/{id}` with `key`.
async fn revoke_with(app: &TestApp, id: &str, key: &str) -> StatusCode {
    let url = app.url(&format!("/v1/api-keys/{id}"));
    app.client.delete(url).bearer_auth(key).send().await.unwrap().status()
}

async fn issue_key(app: &TestApp, user: &TestUser, body: Value) -> (StatusCode, Value) {
    let response =
        app.client.post(app.url("/v1/api-keys")).bearer_auth(&user.key).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_user_issues_lists_and_revokes_its_own_keys_and_every_change_is_audited() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;

    let (status, created) = issue_key(&app, &user, json!({"name": "crm-sync"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let second = created["api_key"].as_str().unwrap().to_owned();
    assert!(second.starts_with(created["key"]["prefix"].as_str().unwrap()), "the prefix is the key's start");
    assert_eq!(created["key"]["name"], "crm-sync");
    assert!(created["key"]["expires_at"].is_null() && created["key"]["last_used_at"].is_null());
    assert_eq!(status_with(&app, &second).await, StatusCode::OK, "the new key works");

    let listed: Value = app
        .client
        .get(app.url("/v1/api-keys"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["default", "crm-sync"], "oldest first");
    assert!(!listed.to_string().contains(&second), "a listing never shows a key's text");

    // Bad input: a clear 422 naming each field.
    let (status, problem) = issue_key(&app, &user, json!({"name": "  ", "expires_at": "yesterday"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "expires_at"], "{problem}");
    let (status, _) =
        issue_key(&app, &user, json!({"name": "past", "expires_at": "2020-01-01T00:00:00Z"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an expiry in the past");

    // The first key revokes the second; the second stops; another user's key id is not found.
    let second_id = created["key"]["id"].as_str().unwrap();
    let other = app.create_user(1, 1).await;
    let foreign = revoke_with(&app, second_id, &other.key).await;
    assert_eq!(foreign, StatusCode::NOT_FOUND, "a user cannot revoke another's key");
    let revoked = revoke_with(&app, second_id, &user.key).await;
    assert_eq!(revoked, StatusCode::NO_CONTENT);
    assert_eq!(
        status_with(&app, &second).await,
        StatusCode::UNAUTHORIZED,
        "refused at once on this instance"
    );
    assert_eq!(status_with(&app, &user.key).await, StatusCode::OK, "the other key still works");
    let again = revoke_with(&app, second_id, &user.key).await;
    assert_eq!(again, StatusCode::NOT_FOUND, "revoked once");

    // Operators do the same for any user, under their token's fingerprint in the audit log.
    let path = format!("/v1/admin/users/{}/api-keys", user.id);
    let by_admin: Value = app
        .admin(app.client.post(app.url(&path)))
        .json(&json!({"name": "ops"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ops_key = by_admin["api_key"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&app, &ops_key).await, StatusCode::OK);
    let listed: Value = app.admin(app.client.get(app.url(&path))).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "default and ops: the revoked key is not listed");
    let ops_id = by_admin["key"]["id"].as_str().unwrap();
    let gone = app.admin(app.client.delete(app.url(&format!("{path}/{ops_id}")))).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let missing = app
        .admin(app.client.get(app.url("/v1/admin/users/0190a0a0-0000-7000-8000-000000000000/api-keys")))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // The audit log, as operators read it (newest first, two to a page here).
    let mut audits: Vec<(String, String)> = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = app.url(&format!("/v1/admin/audit-log?subject_id={}&limit=2{cursor}", user.id));
        let page: Value = app.admin(app.client.get(url)).send().await.unwrap().json().await.unwrap();
        for entry in page["data"].as_array().unwrap() {
            assert!(entry["details"].is_object() && entry["at"].is_string(), "{entry}");
            audits.push((entry["actor"].as_str().unwrap().into(), entry["action"].as_str().unwrap().into()));
        }
        match page["next_cursor"].as_i64() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    audits.reverse();
    let bad_cursor = app.admin(app.client.get(app.url("/v1/admin/audit-log?cursor=0"))).send().await.unwrap();
    assert_eq!(bad_cursor.status(), StatusCode::UNPROCESSABLE_ENTITY, "a cursor is one the API returned");
    let admin = format!("admin:{}", &sha256_hex(ADMIN_TOKEN)[..8]);
    let me = format!("user:{}", user.id);
    let expected = [
        (admin.as_str(), "create_user"),
        (me.as_str(), "issue_api_key"),
        (me.as_str(), "revoke_api_key"),
        (admin.as_str(), "issue_api_key"),
        (admin.as_str(), "revoke_api_key"),
    ];
    let audits: Vec<(&str, &str)> = audits.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(audits, expected);
    assert!(!audits.iter().any(|(actor, _)| actor.contains(ADMIN_TOKEN)), "never the token itself");

    // Last use is written from memory (at least once a minute, and when the instance stops).
    app.stop_server().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let used: Option<chrono::DateTime<Utc>> =
            sqlx::query_scalar("SELECT last_used_at FROM api_keys WHERE key_hash = sha256($1::bytea)")
                .bind(user.key.as_bytes())
                .fetch_one(&app.pool)
                .await
                .unwrap();
        if let Some(used) = used {
            assert!(Utc::now() - used < chrono::TimeDelta::seconds(60), "recent: {used}");
            break;
        }
        assert!(Instant::now() < deadline, "last_used_at was never written");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sha256_hex(text: &str) -> String {
    call_service::users::ApiKeyHash::of(text).0.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bound the README states: a revoked key stops working on every instance within 2 s (the
/// caches read revocations every second), although keys are cached for 30 s.
const REVOCATION_BOUND: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_revoked_key_is_refused_on_two_instances_within_the_stated_bound() {
    let database = fresh_database().await;
    let sim = bolna_sim::Simulator::start(sim_config(), "127.0.0.1:0").unwrap();
    let cached_long = |settings: &mut web::Settings| settings.auth.key_cache_seconds = 30;
    let first = spawn_instance(&database, sim.clone(), cached_long).await;
    let second = spawn_instance(&database, sim.clone(), cached_long).await;
    let user = first.create_user(2, 5).await;
    let (_, created) = issue_key(&first, &user, json!({"name": "leaked"})).await;
    let leaked = created["api_key"].as_str().unwrap().to_owned();
    // Both instances now hold the key in their caches.
    assert_eq!(status_with(&first, &leaked).await, StatusCode::OK);
    assert_eq!(status_with(&second, &leaked).await, StatusCode::OK);

    let id = created["key"]["id"].as_str().unwrap();
    let revoked_at = Instant::now();
    let answer = revoke_with(&first, id, &user.key).await;
    assert_eq!(answer, StatusCode::NO_CONTENT);
    for app in [&first, &second] {
        while status_with(app, &leaked).await != StatusCode::UNAUTHORIZED {
            assert!(revoked_at.elapsed() < REVOCATION_BOUND, "{} still accepts the revoked key", app.address);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let took = revoked_at.elapsed();
    assert!(took < REVOCATION_BOUND, "refused everywhere after {took:?}");
    assert_eq!(status_with(&second, &user.key).await, StatusCode::OK, "the user's other key works");
}

#[tokio::test]
async fn an_expired_key_is_refused_even_while_cached() {
    let app = spawn_app_with(|settings| settings.auth.key_cache_seconds = 30, |_| {}).await;
    let user = app.create_user(2, 5).await;
    let expires_at = Utc::now() + chrono::TimeDelta::milliseconds(1500);
    let (status, created) =
        issue_key(&app, &user, json!({"name": "short", "expires_at": expires_at.to_rfc3339()})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let short = created["api_key"].as_str().unwrap().to_owned();
    assert_eq!(status_with(&app, &short).await, StatusCode::OK, "works (and is cached) before its expiry");
    tokio::time::sleep((expires_at - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50))
        .await;
    let refused = app.client.get(app.url("/v1/calls")).bearer_auth(&short).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = refused.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("expired"), "{problem}");
    // Still listed, with its expiry, until revoked.
    let listed = app.get_json_as(&user, "/v1/api-keys").await;
    assert_eq!(listed["data"][1]["name"], "short");
    assert!(listed["data"][1]["expires_at"].is_string());
}

#[tokio::test]
async fn two_admin_tokens_both_work_and_a_removed_one_stops() {
    let database = fresh_database().await;
    let sim = bolna_sim::Simulator::start(sim_config(), "127.0.0.1:0").unwrap();
    let both = |settings: &mut web::Settings| {
        settings.auth.admin_token = Some(SecretString::from("old-admin-token"));
        settings.auth.admin_tokens = vec![SecretString::from("new-admin-token")];
    };
    let before = spawn_instance(&database, sim.clone(), both).await;
    let users = |app: &TestApp, token: &'static str| {
        let request = app.client.get(app.url("/v1/admin/users")).bearer_auth(token);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(users(&before, "old-admin-token").await, StatusCode::OK);
    assert_eq!(users(&before, "new-admin-token").await, StatusCode::OK);
    assert_eq!(users(&before, "another-token").await, StatusCode::UNAUTHORIZED);

    // The rotation's last step: the instance restarts with only the new token.
    before.stop_server().await;
    let after = spawn_instance(&database, sim.clone(), |settings| {
        settings.auth.admin_token = None;
        settings.auth.admin_tokens = vec![SecretString::from("new-admin-token")];
    })
    .await;
    assert_eq!(users(&after, "new-admin-token").await, StatusCode::OK);
    assert_eq!(users(&after, "old-admin-token").await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_over_its_request_rate_gets_429_with_the_fields_while_other_keys_and_webhooks_go_on() {
    let app = spawn_app_with(
        |settings| {
            settings.http.rate_limit.requests_per_second = 1.0;
            settings.http.rate_limit.burst = 3;
        },
        |_| {},
    )
    .await;
    let busy = app.create_user(2, 5).await;
    let calm = app.create_user(2, 5).await;

    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(app.client.get(app.url("/v1/calls")).bearer_auth(&busy.key).send().await.unwrap());
    }
    let first = &answers[0];
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()["ratelimit-policy"], "\"per-key\";q=3;w=3");
    assert_eq!(first.headers()["ratelimit"], "\"per-key\";r=2;t=1");
    let refused = answers.pop().unwrap();
    assert!(answers.iter().all(|a| a.status() == StatusCode::OK), "the burst of 3 passes");
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(refused.headers()["ratelimit"], "\"per-key\";r=0;t=3");
    assert!(refused.headers().contains_key("ratelimit-policy"));
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "rate_limited", "{problem}");

    // Another key is unaffected; so are Bolna's webhooks, on the same instance at the same time.
    assert_eq!(status_with(&app, &calm.key).await, StatusCode::OK);
    let call = app.start_call(&calm, "+919812345001", 201).await;
    // Followed in the database: the calm key has only a burst of three requests.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status: String = sqlx::query_scalar("SELECT status FROM calls WHERE id = $1::uuid")
            .bind(call["id"].as_str().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
        if status == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "the call's webhooks were not applied: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for _ in 0..10 {
        let webhook = app.post_webhook(r#"{"id": "unknown-execution", "status": "completed"}"#).await;
        assert!(webhook.status().is_success(), "webhooks are never limited: {}", webhook.status());
    }
    // A second later the busy key has a token again.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(status_with(&app, &busy.key).await, StatusCode::OK);
    assert!(app.metric("switchboard_requests_rate_limited_total").await >= 1.0);
}

#[tokio::test]
async fn retention_deletes_only_processed_bodies_past_the_window_in_batches_while_webhooks_keep_being_applied(
) {
    let app = spawn_app().await;
    let user = app.create_user(10, 5).await;
    // 2,500 processed bodies 40 days old, plus old ones still waiting, plus a recent one.
    sqlx::query(
        "INSERT INTO webhook_events (received_at, execution_id, status, body, outcome, processed_at)
         SELECT now() - interval '40 days', 'old-' || n, 'completed', '{}'::jsonb,
                (ARRAY['applied','duplicate','stale','rejected'])[1 + n % 4], now() - interval '40 days'
         FROM generate_series(1, 2500) n",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO webhook_events (received_at, execution_id, status, body, outcome)
         VALUES (now() - interval '40 days', 'waiting-1', 'completed', '{}', 'pending'),
                (now() - interval '40 days', 'waiting-2', 'completed', '{}', 'unmatched'),
                (now() - interval '1 day', 'recent', 'completed', '{}', 'applied')",
    )
    .execute(&app.pool)
    .await
    .unwrap();

    // Calls run (and their webhooks are applied) while retention works through the old rows.
    let calls: Vec<String> = futures::future::join_all((0..10).map(|n| {
        let number = format!("+91981234{n:04}");
        let (app, user) = (&app, &user);
        async move { app.start_call(user, &number, 201).await }
    }))
    .await
    .iter()
    .map(|call| call["id"].as_str().unwrap().to_owned())
    .collect();
    let keep = Duration::from_secs(30 * 86_400);
    let mut batches = Vec::new();
    loop {
        let mut conn = app.pool.acquire().await.unwrap();
        let deleted = call_service::webhooks::delete_processed_bodies(&mut conn, keep, 1000).await.unwrap();
        batches.push(deleted);
        if deleted < 1000 {
            break;
        }
    }
    assert_eq!(batches, [1000, 1000, 500], "in batches of at most 1000");
    for id in &calls {
        app.wait_for_status(&user, id, "completed").await;
    }
    app.wait_for_no_slots().await;

    // The rows still waiting stay however old (the reconciler may have tried them meanwhile).
    let left: Vec<String> = sqlx::query_scalar(
        "SELECT execution_id FROM webhook_events WHERE execution_id IN ('waiting-1','waiting-2','recent') ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(left, ["recent", "waiting-1", "waiting-2"]);
    let old: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE execution_id LIKE 'old-%'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(old, 0);
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_events WHERE call_id = ANY($1::uuid[]) AND outcome = 'applied'",
    )
    .bind(&calls)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(live >= 10 * 3, "today's webhooks are kept: {live}");
}
