//! Direct calls end to end through the API, the simulator and real PostgreSQL.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{call_body, eventually, spawn_app, spawn_app_with, AGENT};
use bolna_sim::{CallFault, FaultUpdate};

#[tokio::test]
async fn a_started_direct_call_has_its_execution_id_on_the_call_and_on_its_slot() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(2, 5).await;

    let call = app.start_call(&user, "+919812345678", 201).await;

    let id = call["id"].as_str().unwrap();
    let execution = call["bolna_execution_id"].as_str().expect("execution id recorded");
    assert_eq!(call["status"], "placed", "accepted by Bolna, not yet dialled");
    assert_eq!(call["provider_status"], "queued", "Bolna's own word for it");
    assert_eq!(app.slot_of(id).await, Some(Some(execution.to_owned())), "active_calls row carries it");
    let bolna = app.sim.execution(execution).expect("Bolna knows it");
    assert_eq!(bolna.switchboard_call_id(), Some(id), "our call ID rides in user_data");
    assert_eq!(bolna.recipient_data().unwrap()["customer_name"], "Asha");
    app.sim.hang_up_all();
    app.wait_for_status(&user, id, "completed").await;
}

#[tokio::test]
async fn the_line_free_webhook_releases_the_slot_by_execution_id_and_the_call_completes_with_its_data() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;

    let call = app.start_call(&user, "+919812345678", 201).await;
    let id = call["id"].as_str().unwrap();
    let done = app.wait_for_status(&user, id, "completed").await;

    assert_eq!(app.slot_of(id).await, None, "slot released");
    assert!(done["conversation_duration"].as_f64().unwrap() > 0.0);
    assert!(done["recording_url"].as_str().unwrap().contains(done["bolna_execution_id"].as_str().unwrap()));
    assert!(done["transcript"].is_string() && done["total_cost"].as_f64().unwrap() > 0.0);
    assert_eq!(done["hangup_reason"], "Call recipient hung up");
    assert!(done["answered_at"].is_string() && done["ended_at"].is_string());
    let events: Vec<(String, String)> =
        sqlx::query_as("SELECT status, outcome FROM webhook_events WHERE call_id = $1::uuid ORDER BY id")
            .bind(id)
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let statuses: Vec<&str> = events.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["queued", "initiated", "ringing", "in-progress", "call-disconnected", "completed"]);
    // `queued` is applied or a duplicate, depending on whether it beat the recording of Bolna's answer.
    assert!(events.iter().skip(1).all(|(_, outcome)| outcome == "applied"), "{events:?}");
    assert!(["applied", "duplicate"].contains(&events[0].1.as_str()), "{events:?}");
}

/// `queued` means one thing: waiting in Switchboard's queue. A 201 (Bolna has the call) never
/// carries it, a 202 always does, and the list filter tells the two apart.
#[tokio::test]
async fn a_201_never_carries_queued_and_each_status_filter_means_one_thing() {
    // Bolna keeps the calls it accepts in its own queue for the whole test: they stay `placed`.
    let app = spawn_app_with(|_| {}, |sim| sim.timings.queued_to_initiated_ms = 600_000).await;
    let user = app.create_user(3, 5).await;
    let (mut placed, mut waiting) = (Vec::new(), Vec::new());
    for n in 0..6 {
        let response = app.post_call(&user, &call_body(&format!("+1555000010{n}"))).await;
        let status = response.status();
        let call: Value = response.json().await.unwrap();
        match status {
            StatusCode::CREATED => {
                assert_ne!(call["status"], "queued", "a 201 never carries queued: {call}");
                assert_eq!(call["status"], "placed", "{call}");
                assert!(call["bolna_execution_id"].is_string(), "{call}");
                placed.push(call["id"].as_str().unwrap().to_owned());
            }
            StatusCode::ACCEPTED => {
                assert_eq!(call["status"], "queued", "{call}");
                assert!(call["bolna_execution_id"].is_null() && call["provider_status"].is_null(), "{call}");
                waiting.push(call["id"].as_str().unwrap().to_owned());
            }
            other => panic!("unexpected {other}: {call}"),
        }
    }
    assert_eq!((placed.len(), waiting.len()), (3, 3));
    let ids = |page: Value| -> Vec<String> {
        let mut ids: Vec<String> =
            page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
        ids.sort();
        ids
    };
    placed.sort();
    waiting.sort();
    assert_eq!(ids(app.get_json_as(&user, "/v1/calls?status=queued").await), waiting);
    assert_eq!(ids(app.get_json_as(&user, "/v1/calls?status=placed").await), placed);
    let refused =
        app.client.get(app.url("/v1/calls?status=prepared")).bearer_auth(&user.key).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "Bolna's word is not a call status");
    // `scheduled` is Switchboard's own (waiting for a time the client asked for): none here, though
    // Bolna may say `scheduled` of a placed call.
    assert!(ids(app.get_json_as(&user, "/v1/calls?status=scheduled").await).is_empty());
}

#[tokio::test]
async fn a_third_call_queues_while_two_are_active_and_starts_when_one_completes() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(2, 5).await;
    let first = app.start_call(&user, "+15550000001", 201).await;
    let second = app.start_call(&user, "+15550000002", 201).await;

    let third = app.start_call(&user, "+15550000003", 202).await;

    assert_eq!((&first["status"], &second["status"]), (&json!("placed"), &json!("placed")));
    let third_id = third["id"].as_str().unwrap();
    assert_eq!(third["status"], "queued");
    assert!(third["bolna_execution_id"].is_null());
    assert_eq!(app.slot_of(third_id).await, None, "no slot while queued");
    assert_eq!(app.concurrency(&user).await["direct"], json!({"active": 2, "limit": 2, "queued": 1}));

    // The first call ends: its line-free webhook hands the slot to the third.
    let first_execution = first["bolna_execution_id"].as_str().unwrap();
    let client = reqwest::Client::new();
    client
        .post(format!("{}/_sim/executions/{first_execution}/hangup", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    let started = app
        .wait_for_call(&user, third_id, "the queued call to start", |c| c["bolna_execution_id"].is_string())
        .await;

    let execution = started["bolna_execution_id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.slot_of(third_id).await,
        Some(Some(execution)),
        "its execution ID is recorded on its slot"
    );
    assert!(started["queued_at"].is_string());
    assert_eq!(app.call_json(&user, second["id"].as_str().unwrap()).await["status"], "in-progress");
    app.wait_for_call(&user, third_id, "it to be live", |c| c["status"] == "in-progress").await;
    app.sim.hang_up_all();
    app.wait_for_status(&user, third_id, "completed").await;
    app.wait_for_status(&user, second["id"].as_str().unwrap(), "completed").await;
    app.wait_for_no_slots().await;
}

#[tokio::test]
async fn queued_calls_start_in_the_order_they_were_made() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 0).await;
    let first = app.start_call(&user, "+15550000011", 201).await;
    let mut queued = Vec::new();
    for n in 2..=4 {
        queued.push(
            app.start_call(&user, &format!("+1555000001{n}"), 202).await["id"].as_str().unwrap().to_owned(),
        );
    }

    let mut order = Vec::new();
    let mut live = first["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        app.sim.hang_up_all();
        app.wait_for_status(&user, &live, "completed").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let next = loop {
            assert!(std::time::Instant::now() < deadline, "no queued call started after {order:?}");
            let mut found = None;
            for id in &queued {
                if !order.contains(id) && app.call_json(&user, id).await["bolna_execution_id"].is_string() {
                    found = Some(id.clone());
                }
            }
            if let Some(id) = found {
                break id;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        app.wait_for_status(&user, &next, "in-progress").await;
        order.push(next.clone());
        live = next;
    }
    app.sim.hang_up_all();

    assert_eq!(order, queued, "FIFO per user and type");
}

#[tokio::test]
async fn campaign_slots_are_separate_from_direct_slots() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 1).await;
    app.start_call(&user, "+15550000021", 201).await;

    let mut campaign = call_body("+15550000022");
    campaign["call_type"] = json!("campaign");
    let response = app.post_call(&user, &campaign).await;

    assert_eq!(response.status(), StatusCode::CREATED, "the direct slot being full does not block campaigns");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["call_type"], "campaign");
    assert_eq!(app.concurrency(&user).await["campaign"]["active"], 1);
    app.sim.hang_up_all();
}

#[tokio::test]
async fn invalid_call_requests_get_422_naming_every_bad_field() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;
    let bad = json!({
        "agent_id": "not-a-uuid",
        "recipient_phone_number": "98123",
        "from_phone_number": "+0000",
        "user_data": {"switchboard_call_id": "x"},
        "call_type": "robocall"
    });

    let response = app.post_call(&user, &bad).await;

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "validation_failed");
    let fields: Vec<&str> =
        body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["agent_id", "recipient_phone_number", "from_phone_number", "user_data", "call_type"]);
    assert_eq!(app.sim.stats().call_requests, 0, "nothing reached Bolna");
}

#[tokio::test]
async fn malformed_bodies_and_bad_credentials_get_clear_errors() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;
    let post = |body: &str, content_type: &str, key: Option<&str>| {
        let mut request =
            app.client.post(app.url("/v1/calls")).header("content-type", content_type).body(body.to_owned());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move { request.send().await.expect("sent") }
    };

    let cases = [
        (post("{not json", "application/json", Some(&user.key)).await, 400, "malformed_json"),
        (post(r#"{"agent_id": 5}"#, "application/json", Some(&user.key)).await, 422, "invalid_body"),
        (
            post(
                &json!({"agent_id": AGENT, "recipient_phone_number": "+15550001111", "surprise": 1})
                    .to_string(),
                "application/json",
                Some(&user.key),
            )
            .await,
            422,
            "invalid_body",
        ),
        (post("{}", "text/plain", Some(&user.key)).await, 415, "unsupported_media_type"),
        (post("{}", "application/json", None).await, 401, "unauthorized"),
        (
            post("{}", "application/json", Some("sb_wrongwrongwrongwrongwrongwrongwrongwrong")).await,
            401,
            "unauthorized",
        ),
        (post(&"x".repeat(300_000), "application/json", Some(&user.key)).await, 413, "payload_too_large"),
    ];
    for (response, status, code) in cases {
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], code, "{body}");
    }
}

#[tokio::test]
async fn another_users_call_is_404_and_lists_page_newest_first() {
    let app = spawn_app().await;
    let alice = app.create_user(5, 5).await;
    let bob = app.create_user(5, 5).await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.start_call(&alice, &format!("+1555000003{n}"), 201).await["id"].as_str().unwrap().to_owned(),
        );
    }

    assert_eq!(app.get_call(&bob, &ids[0]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get_call(&alice, "not-a-uuid").await.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/calls?limit=2&cursor={c}"),
            None => "/v1/calls?limit=2".to_owned(),
        };
        let page: Value = app
            .client
            .get(app.url(&path))
            .bearer_auth(&alice.key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        seen.extend(page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, every call once");
    let bobs: Value = app
        .client
        .get(app.url("/v1/calls"))
        .bearer_auth(&bob.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["data"], json!([]));
    let bad = app
        .client
        .get(app.url("/v1/calls?limit=0&status=sleeping"))
        .bearer_auth(&alice.key)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_queued_call_can_be_canceled_and_a_live_one_cannot() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 0).await;
    let live = app.start_call(&user, "+15550000041", 201).await;
    let live_id = live["id"].as_str().unwrap();
    let queued = app.start_call(&user, "+15550000042", 202).await;
    app.wait_for_status(&user, live_id, "in-progress").await;

    let canceled = app.cancel_call(&user, queued["id"].as_str().unwrap()).await;
    let refused = app.cancel_call(&user, live_id).await;

    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(canceled.json::<Value>().await.unwrap()["status"], "canceled");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "call_in_progress");
    app.sim.hang_up_all();
    app.wait_for_status(&user, live_id, "completed").await;
    app.wait_for_no_slots().await;
    assert_eq!(app.sim.stats().accepted, 1, "the canceled call never reached Bolna");
}

#[tokio::test]
async fn a_call_waiting_in_bolnas_queue_is_stopped_at_bolna_when_canceled() {
    // Bolna keeps the call in its queue (before dialling) for the whole test.
    let app = spawn_app_with(|_| {}, |sim| sim.timings.queued_to_initiated_ms = 600_000).await;
    let user = app.create_user(2, 0).await;
    let waiting = app.start_call(&user, "+15550000052", 201).await;
    let id = waiting["id"].as_str().unwrap();

    let canceled = app.cancel_call(&user, id).await;

    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(canceled.json::<Value>().await.unwrap()["status"], "canceled");
    assert_eq!(app.slot_of(id).await, None, "slot freed");
    let execution = waiting["bolna_execution_id"].as_str().unwrap();
    eventually("Bolna to stop it", || {
        app.sim.execution(execution).map(|e| e.status.to_string()) == Some("stopped".into())
    })
    .await;
    app.sim.hang_up_all();
}

#[tokio::test]
async fn a_call_bolna_refuses_fails_with_bolnas_message_and_frees_its_slot() {
    let app = spawn_app().await;
    let user = app.create_user(1, 0).await;
    app.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::ServerError { status: 400 }]),
        ..FaultUpdate::default()
    });

    let response = app.post_call(&user, &call_body("+15550000061")).await;

    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "bolna_rejected");
    let id = body["call_id"].as_str().expect("the call is named");
    let call = app.call_json(&user, id).await;
    assert_eq!(call["status"], "failed");
    assert!(call["error"].as_str().unwrap().contains("Internal server error"), "{call}");
    app.wait_for_no_slots().await;
    app.start_call(&user, "+15550000062", 201).await;
}

#[tokio::test]
async fn when_bolnas_answer_is_lost_the_call_keeps_its_slot_and_is_matched_by_its_webhooks() {
    let app = spawn_app().await;
    let user = app.create_user(1, 0).await;
    app.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::AcceptThenError { status: 502 }]),
        ..FaultUpdate::default()
    });

    let response = app.post_call(&user, &call_body("+15550000071")).await;

    // 202 `initiating` while unknown; 201 when Bolna's first webhook identified it even sooner.
    let status = response.status();
    let accepted: Value = response.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap();
    match status {
        StatusCode::ACCEPTED => assert_eq!(accepted["status"], "initiating"),
        StatusCode::CREATED => assert!(accepted["bolna_execution_id"].is_string()),
        other => panic!("unexpected {other}: {accepted}"),
    }
    let done = app.wait_for_status(&user, id, "completed").await;
    assert!(done["bolna_execution_id"].is_string(), "adopted from the webhook's recipient_data");
    assert_eq!(app.sim.stats().call_requests, 1, "never sent twice");
    app.wait_for_no_slots().await;
}

#[tokio::test]
async fn the_same_idempotency_key_and_body_return_the_same_call_and_another_body_is_409() {
    let app = spawn_app().await;
    let user = app.create_user(2, 0).await;
    let body = call_body("+15550000081");

    let first = app.post_call_with_key(&user, &body, "order-1").await;
    let again = app.post_call_with_key(&user, &body, "order-1").await;
    let other = app.post_call_with_key(&user, &call_body("+15550000082"), "order-1").await;

    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(other.json::<Value>().await.unwrap()["code"], "idempotency_key_reused");
    assert_eq!(app.sim.stats().call_requests, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_make_one_call_and_one_bolna_request() {
    let app = spawn_app().await;
    let user = app.create_user(2, 0).await;
    let body = call_body("+15550000091");

    let responses =
        futures::future::join_all((0..20).map(|_| app.post_call_with_key(&user, &body, "burst-key"))).await;

    let mut ids = Vec::new();
    for response in responses {
        assert!(response.status().is_success(), "{}", response.status());
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one call");
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(&app.pool).await.unwrap();
    assert_eq!(calls, 1);
    assert_eq!(app.sim.stats().call_requests, 1, "one Bolna request");
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_request_does_not_leave_its_call_half_started() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    app.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::Latency { delay_ms: 600 }]),
        ..FaultUpdate::default()
    });
    let user = app.create_user(1, 0).await;
    let impatient =
        reqwest::Client::builder().timeout(std::time::Duration::from_millis(150)).build().unwrap();

    let gave_up = impatient
        .post(app.url("/v1/calls"))
        .bearer_auth(&user.key)
        .json(&call_body("+15550000111"))
        .send()
        .await;

    assert!(gave_up.is_err(), "the client hung up before the answer");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let recorded: Option<String> =
            sqlx::query_scalar("SELECT bolna_execution_id FROM calls").fetch_one(&app.pool).await.unwrap();
        if recorded.is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the call was left half-started");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.sim.stats().call_requests, 1);
    app.sim.hang_up_all();
}
