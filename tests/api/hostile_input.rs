//! What a fuzzer sends: NUL characters (JSON allows them, PostgreSQL's text and jsonb do not),
//! over-long identifiers, numbers out of range. Always a 4xx problem+json or a stored webhook,
//! never a 500, and never a lost webhook.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{call_body, spawn_app, spawn_app_with, TestApp, AGENT};

async fn stored_events(app: &TestApp) -> Vec<(String, Option<String>, Vec<u8>)> {
    sqlx::query_as("SELECT outcome, execution_id, received FROM webhook_events ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// A real call through the simulator whose `completed` webhook carries U+0000 in its transcript:
/// the bytes are stored as received, the call completes with the transcript less the NUL, and its
/// slot goes back.
#[tokio::test]
async fn a_completed_webhook_with_a_nul_in_its_transcript_is_stored_applied_and_frees_the_slot() {
    let app =
        spawn_app_with(|_| {}, |sim| sim.transcript = "assistant: hello\u{0} there\nuser: bye".into()).await;
    let user = app.create_user(1, 0).await;
    let call = app.start_call(&user, "+919812345678", 201).await;
    let id = call["id"].as_str().unwrap();

    let done = app.wait_for_status(&user, id, "completed").await;

    assert_eq!(done["transcript"], "assistant: hello there\nuser: bye", "the NUL is removed");
    assert_eq!(app.slot_of(id).await, None, "slot released");
    let execution = done["bolna_execution_id"].as_str().unwrap();
    let completed: (String, Vec<u8>, Value) = sqlx::query_as(
        "SELECT outcome, received, body FROM webhook_events WHERE execution_id = $1 AND status = 'completed'",
    )
    .bind(execution)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(completed.0, "applied");
    let received = String::from_utf8(completed.1).unwrap();
    assert!(received.contains("hello\\u0000 there"), "stored exactly as received: {received}");
    assert_eq!(completed.2["transcript"], "assistant: hello there\nuser: bye", "the queryable body has none");
    // The next call gets the freed slot at once.
    app.start_call(&user, "+919812345679", 201).await;
}

#[tokio::test]
async fn api_input_with_a_nul_character_is_stripped_in_free_form_data_and_refused_with_422_elsewhere() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(2, 2).await;
    let mut body = call_body("+919812345678");
    body["user_data"] = json!({"note": "a\u{0}b", "k\u{0}": ["\u{0}"]});
    let call = app.post_call(&user, &body).await;
    assert_eq!(call.status(), StatusCode::CREATED, "user_data is free-form: accepted");
    let call: Value = call.json().await.unwrap();
    assert_eq!(call["user_data"], json!({"note": "ab", "k": [""]}), "stored without the NULs");
    let bolna = app.sim.execution(call["bolna_execution_id"].as_str().unwrap()).unwrap();
    assert_eq!(bolna.recipient_data().unwrap()["note"], "ab", "and passed on to Bolna without them");

    let mut refused = call_body("+919812345678");
    refused["recipient_phone_number"] = json!("+91981234567\u{0}8");
    let refused = app.post_call(&user, &refused).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(
        (problem["code"].as_str(), problem["field"].as_str()),
        (Some("invalid_character"), Some("/recipient_phone_number"))
    );

    let campaign = app
        .client
        .post(app.url("/v1/campaigns"))
        .bearer_auth(&user.key)
        .json(&json!({"name": "Renewals\u{0}", "agent_id": AGENT, "max_concurrency": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(campaign.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(campaign.json::<Value>().await.unwrap()["field"], "/name");

    let admin = app
        .admin(app.client.post(app.url("/v1/admin/users")))
        .json(&json!({"name": "x", "direct_call_limit": 1, "campaign_call_limit": 1, "k\u{0}": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::UNPROCESSABLE_ENTITY, "a key holding one too");
    assert_eq!(admin.json::<Value>().await.unwrap()["field"], "/k\u{0}");

    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(&app.pool).await.unwrap();
    assert_eq!(calls, 1, "only the call with free-form NULs");
    app.sim.hang_up_all();
}

#[tokio::test]
async fn a_webhook_with_a_nul_or_an_overlong_id_is_stored_as_received_and_refused_with_422() {
    let app = spawn_app().await;
    let long_id = "e".repeat(5000);
    let bodies = [
        "{\"id\": \"abc\\u0000def\", \"status\": \"completed\"}".to_owned(),
        format!("{{\"id\": \"{long_id}\", \"status\": \"completed\"}}"),
        format!("{{\"id\": \"x\", \"status\": \"{long_id}\"}}"),
    ];
    for (body, field) in bodies.iter().zip(["id", "id", "status"]) {
        let response = app.post_webhook(body).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(
            (problem["code"].as_str(), problem["field"].as_str()),
            (Some("invalid_character"), Some(field))
        );
    }
    // One NUL byte: not JSON at all.
    let nul = app.post_webhook("\0").await;
    assert_eq!(nul.status(), StatusCode::BAD_REQUEST);
    let events = stored_events(&app).await;
    let stored: Vec<(&str, &[u8])> =
        events.iter().map(|(outcome, _, raw)| (outcome.as_str(), raw.as_slice())).collect();
    let expected: Vec<(&str, &[u8])> =
        bodies.iter().map(|b| ("rejected", b.as_bytes())).chain([("rejected", &b"\0"[..])]).collect();
    assert_eq!(stored, expected, "every body stored byte for byte");
    assert!(events.iter().all(|(_, execution, _)| execution.is_none()));
}

/// Harmless NULs elsewhere in a webhook (a transcript, extracted data, a key) are removed and the
/// webhook is processed like any other.
#[tokio::test]
async fn a_webhook_with_nuls_in_its_data_is_processed() {
    let app = spawn_app().await;
    let body = "{\"id\": \"unknown-exec\", \"status\": \"completed\", \"transcript\": \"a\\u0000b\", \"extracted_data\": {\"k\\u0000\": [\"\\u0000\"]}}";
    let response = app.post_webhook(body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["outcome"], "unmatched", "kept for the reconciler");
    let (stored, received): (Value, Vec<u8>) =
        sqlx::query_as("SELECT body, received FROM webhook_events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored["transcript"], "ab");
    assert_eq!(stored["extracted_data"], json!({"k": [""]}));
    assert_eq!(received, body.as_bytes(), "stored byte for byte");
}

#[tokio::test]
async fn numbers_out_of_range_and_overlong_strings_are_4xx() {
    let app = spawn_app().await;
    let user = app.create_user(2, 2).await;
    let long = "a".repeat(5000);
    let cases = [
        ("/v1/calls", json!({"agent_id": long, "recipient_phone_number": "+919812345678"})),
        ("/v1/calls", json!({"agent_id": AGENT, "recipient_phone_number": format!("+9198{long}")})),
        ("/v1/campaigns", json!({"name": "n", "agent_id": AGENT, "max_concurrency": 99_999_999_999_i64})),
        (
            "/v1/campaigns",
            json!({"name": "n", "agent_id": AGENT, "max_concurrency": 1, "calls_per_minute": 1e300}),
        ),
        ("/v1/campaigns", json!({"name": long, "agent_id": AGENT, "max_concurrency": 1})),
        (
            "/v1/campaigns",
            json!({"name": "n", "agent_id": AGENT, "max_concurrency": 1, "retry": {"on": ["busy"], "delay_seconds": -1, "max_attempts": 99_999_999_999_i64}}),
        ),
    ];
    for (path, body) in cases {
        let response =
            app.client.post(app.url(path)).bearer_auth(&user.key).json(&body).send().await.unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{path} {status}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{path}");
    }
    let key = app
        .client
        .post(app.url("/v1/calls"))
        .bearer_auth(&user.key)
        .header("Idempotency-Key", "k".repeat(1000))
        .json(&call_body("+919812345678"))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let user_limit = app
        .admin(app.client.post(app.url("/v1/admin/users")))
        .json(&json!({"name": "x", "direct_call_limit": 99_999_999_999_i64, "campaign_call_limit": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(user_limit.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_method_a_known_path_does_not_offer_is_405_with_allow_and_an_unknown_path_404() {
    let app = spawn_app().await;
    let put = app.client.put(app.url("/v1/calls")).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    let mut allow: Vec<&str> = put.headers()["allow"].to_str().unwrap().split(", ").collect();
    allow.sort();
    assert_eq!(allow, ["GET", "POST"]);
    assert_eq!(put.headers()["content-type"], "application/problem+json");
    let trace =
        app.client.request(reqwest::Method::TRACE, app.url("/v1/calls/abc/cancel")).send().await.unwrap();
    assert_eq!(
        (trace.status(), trace.headers()["allow"].to_str().unwrap()),
        (StatusCode::METHOD_NOT_ALLOWED, "POST")
    );
    assert_eq!(app.get("/v1/nowhere").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_encoded_nul_in_a_query_or_path_is_422() {
    let app = spawn_app().await;
    let user = app.create_user(1, 1).await;
    for path in ["/v1/dnc?cursor=%1C%00x", "/v1/calls/%00", "/v1/events?ticket=a%00b"] {
        let response = app.client.get(app.url(path)).bearer_auth(&user.key).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}");
        assert_eq!(response.json::<Value>().await.unwrap()["code"], "invalid_character", "{path}");
    }
}

/// Numbers at the edges of what JSON clients send in free-form data come back as they went in:
/// PostgreSQL prints a jsonb number in full (309 digits for the largest double), which must read
/// back to the same double.
#[tokio::test]
async fn extreme_numbers_in_user_data_round_trip_through_the_database() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 1).await;
    let mut body = call_body("+919812345678");
    let numbers = json!({"max": f64::MAX, "min": -f64::MAX, "tiny": 5e-324, "big": 1.2345678901234568e29, "small": -1.493511421131838e-250});
    body["user_data"] = numbers.clone();
    let created = app.post_call(&user, &body).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(app.call_json(&user, &id).await["user_data"], numbers);
    let list = app.get_json_as(&user, "/v1/calls").await;
    assert_eq!(list["data"][0]["user_data"], numbers);
    app.sim.hang_up_all();
}
