//! Bolna's webhooks, with Bolna played by wiremock answering the documented fixtures: every
//! fixture, duplicates, out-of-order, unknown executions, bad tokens and malformed bodies — each
//! with its stored `webhook_events` row checked.

use reqwest::StatusCode;
use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{spawn_instance, TestApp, TestUser, WEBHOOK_TOKEN};

const EXECUTION: &str = "d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31";

fn fixture(name: &str) -> String {
    let path = format!("{}/crates/bolna-client/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).expect(&path)
}

/// An app whose Bolna is wiremock answering `call_response.json` (execution `d41f7a60…`), and
/// one call already handed to it.
async fn app_with_a_call() -> (TestApp, TestUser, String, MockServer) {
    let bolna = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(200).set_body_string(fixture("call_response.json")))
        .mount(&bolna)
        .await;
    let database = crate::helpers::fresh_database().await;
    let sim = bolna_sim::Simulator::start(crate::helpers::sim_config(), "127.0.0.1:0").unwrap();
    let url = bolna.uri();
    let app = spawn_instance(&database, sim, move |s| s.bolna.base_url = url).await;
    let user = app.create_user(2, 0).await;
    let call = app.start_call(&user, "+919812345678", 201).await;
    assert_eq!(call["bolna_execution_id"], EXECUTION);
    (app, user, call["id"].as_str().unwrap().to_owned(), bolna)
}

async fn event_rows(app: &TestApp) -> Vec<(Option<String>, Option<String>, String, Option<uuid::Uuid>)> {
    sqlx::query_as("SELECT execution_id, status, outcome, call_id FROM webhook_events ORDER BY id")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_documented_delivery_sequence_drives_the_call_to_completed_with_all_its_data() {
    let (app, user, id, _bolna) = app_with_a_call().await;
    let sequence = [
        "webhook_1_queued.json",
        "webhook_2_initiated.json",
        "webhook_3_ringing.json",
        "webhook_4_in-progress.json",
    ];
    for name in sequence {
        assert_eq!(app.post_webhook(&fixture(name)).await.status(), StatusCode::OK, "{name}");
        assert!(app.slot_of(&id).await.is_some(), "slot held through {name}");
    }

    app.post_webhook(&fixture("webhook_5_call-disconnected.json")).await;
    assert_eq!(app.slot_of(&id).await, None, "the slot is freed as soon as the line is free");
    assert_eq!(app.call_json(&user, &id).await["status"], "call-disconnected");
    app.post_webhook(&fixture("webhook_6_completed.json")).await;

    let call = app.call_json(&user, &id).await;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["conversation_duration"], 74.6);
    assert_eq!(call["total_cost"], 6.42);
    assert_eq!(call["recording_url"], format!("https://api.bolna.ai/recordings/call/{EXECUTION}"));
    assert_eq!(call["extracted_data"]["order_confirmed"], true);
    assert!(call["transcript"].as_str().unwrap().starts_with("assistant: Hi Asha"));
    assert_eq!(call["hangup_by"], "Callee");
    let rows = event_rows(&app).await;
    let outcomes: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
    // Bolna's answer to POST /call already said `queued`: the first webhook repeats it.
    assert_eq!(outcomes, ["duplicate", "applied", "applied", "applied", "applied", "applied"]);
    assert!(rows.iter().all(|(execution, _, _, call)| execution.as_deref() == Some(EXECUTION)
        && call.map(|c| c.to_string()) == Some(id.clone())));
}

#[tokio::test]
async fn each_terminal_fixture_ends_the_call_and_frees_its_slot() {
    for (name, status) in [
        ("webhook_terminal_busy.json", "busy"),
        ("webhook_terminal_no-answer.json", "no-answer"),
        ("webhook_terminal_failed.json", "failed"),
        ("webhook_terminal_balance-low.json", "balance-low"),
    ] {
        let (app, user, id, _bolna) = app_with_a_call().await;

        let response = app.post_webhook(&fixture(name)).await;

        assert_eq!(response.status(), StatusCode::OK);
        let call = app.call_json(&user, &id).await;
        assert_eq!(call["status"], status, "{name}");
        assert_eq!(app.slot_of(&id).await, None, "{name}: slot freed");
        if status == "failed" || status == "balance-low" {
            assert!(call["error"].is_string(), "{name}: Bolna's error_message kept");
        }
        assert_eq!(event_rows(&app).await[0].2, "applied");
    }
}

#[tokio::test]
async fn a_duplicate_changes_nothing_and_is_recorded_as_duplicate() {
    let (app, user, id, _bolna) = app_with_a_call().await;
    app.post_webhook(&fixture("webhook_6_completed.json")).await;
    let before = app.call_json(&user, &id).await;

    let again = app.post_webhook(&fixture("webhook_6_completed.json")).await;

    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["outcome"], "duplicate");
    let after = app.call_json(&user, &id).await;
    assert_eq!(after["status"], before["status"]);
    assert_eq!(after["conversation_duration"], before["conversation_duration"]);
    let outcomes: Vec<String> = event_rows(&app).await.into_iter().map(|r| r.2).collect();
    assert_eq!(outcomes, ["applied", "duplicate"]);
}

#[tokio::test]
async fn a_late_in_progress_after_completed_is_stored_as_stale_and_moves_nothing() {
    let (app, user, id, _bolna) = app_with_a_call().await;
    app.post_webhook(&fixture("webhook_6_completed.json")).await;

    let late = app.post_webhook(&fixture("webhook_4_in-progress.json")).await;

    assert_eq!(late.json::<Value>().await.unwrap()["outcome"], "stale");
    let call = app.call_json(&user, &id).await;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["conversation_duration"], 74.6, "a zero duration in a late event does not erase data");
    assert_eq!(app.held_slots().await, 0);
}

#[tokio::test]
async fn an_unknown_execution_is_stored_as_unmatched_and_answered_200() {
    let (app, _user, _id, _bolna) = app_with_a_call().await;

    let response = app.post_webhook(&fixture("webhook_legacy_shape_completed.json")).await;

    assert_eq!(response.status(), StatusCode::OK, "Bolna must not retry what we stored");
    let rows = event_rows(&app).await;
    assert_eq!(rows[0].0.as_deref(), Some("7432382142914"), "integer id stored as text");
    assert_eq!(rows[0].2, "unmatched");
    assert_eq!(rows[0].3, None);
}

#[tokio::test]
async fn bad_or_missing_tokens_are_refused_and_nothing_is_stored() {
    let (app, _user, _id, _bolna) = app_with_a_call().await;
    let body = fixture("webhook_6_completed.json");
    let send = |token: Option<&str>| {
        let mut request = app.client.post(app.url("/webhooks/bolna")).body(body.clone());
        if let Some(token) = token {
            request = request.header("X-Webhook-Token", token);
        }
        async move { request.send().await.expect("sent") }
    };

    let wrong = send(Some("guess")).await;
    let missing = send(None).await;

    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json::<Value>().await.unwrap()["code"], "unauthorized");
    assert!(event_rows(&app).await.is_empty(), "unauthenticated bodies are not stored");
    let by_query = app
        .client
        .post(app.url(&format!("/webhooks/bolna?token={WEBHOOK_TOKEN}")))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(by_query.status(), StatusCode::OK, "the token may come as a query parameter");
}

#[tokio::test]
async fn malformed_bodies_are_stored_as_rejected_and_answered_400() {
    let (app, _user, _id, _bolna) = app_with_a_call().await;

    let broken = app.post_webhook("{\"id\": \"abc\", \"status\": ").await;
    let shapeless = app.post_webhook("{\"hello\": \"world\"}").await;

    assert_eq!(broken.status(), StatusCode::BAD_REQUEST);
    let problem: Value = broken.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_webhook");
    assert!(problem["event_id"].is_i64());
    assert_eq!(shapeless.status(), StatusCode::BAD_REQUEST);
    let rows: Vec<(String, Option<Vec<u8>>, Option<Value>)> =
        sqlx::query_as("SELECT outcome, received, body FROM webhook_events ORDER BY id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(rows[0].0, "rejected");
    assert_eq!(rows[0].1.as_deref(), Some(&b"{\"id\": \"abc\", \"status\": "[..]), "the bytes are kept");
    assert_eq!(rows[1].0, "rejected");
    assert_eq!(rows[1].2, Some(serde_json::json!({"hello": "world"})));
}

#[tokio::test]
async fn the_source_allow_list_trusts_forwarded_addresses_only_from_trusted_proxies() {
    let database = crate::helpers::fresh_database().await;
    let sim = bolna_sim::Simulator::start(crate::helpers::sim_config(), "127.0.0.1:0").unwrap();
    let app = spawn_instance(&database, sim, |s| {
        s.webhook.allowed_ips = vec!["13.203.39.153".into()];
        s.webhook.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let body = fixture("webhook_6_completed.json");
    let send = |forwarded: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/webhooks/bolna"))
            .header("X-Webhook-Token", WEBHOOK_TOKEN)
            .body(body.clone());
        if let Some(forwarded) = forwarded {
            request = request.header("X-Forwarded-For", forwarded);
        }
        async move { request.send().await.expect("sent") }
    };

    let direct = send(None).await;
    let via_proxy = send(Some("13.203.39.153")).await;
    let spoofed = send(Some("13.203.39.153, 10.9.9.9")).await;

    assert_eq!(direct.status(), StatusCode::FORBIDDEN, "127.0.0.1 itself is not allowed");
    assert_eq!(via_proxy.status(), StatusCode::OK);
    assert_eq!(spoofed.status(), StatusCode::FORBIDDEN, "the right-most untrusted hop counts");
    let sources: Vec<Option<String>> =
        sqlx::query_scalar("SELECT source_ip FROM webhook_events").fetch_all(&app.pool).await.unwrap();
    assert_eq!(sources, [Some("13.203.39.153".to_owned())]);
}

#[tokio::test]
async fn the_word_bolna_in_the_allow_list_admits_bolnas_addresses_only() {
    let database = crate::helpers::fresh_database().await;
    let sim = bolna_sim::Simulator::start(crate::helpers::sim_config(), "127.0.0.1:0").unwrap();
    let app = spawn_instance(&database, sim, |s| {
        s.webhook.allowed_ips = vec!["bolna".into()];
        s.webhook.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let body = fixture("webhook_6_completed.json");
    let mut answers = Vec::new();
    for from in ["13.203.39.153", "13.126.9.249", "13.202.133.53", "13.203.39.154", "10.0.0.1", "127.0.0.1"] {
        let response = app
            .client
            .post(app.url("/webhooks/bolna"))
            .header("X-Webhook-Token", WEBHOOK_TOKEN)
            .header("X-Forwarded-For", from)
            .body(body.clone())
            .send()
            .await
            .expect("sent");
        answers.push((from, response.status().as_u16()));
    }
    assert_eq!(
        answers,
        [
            ("13.203.39.153", 200),
            ("13.126.9.249", 200),
            ("13.202.133.53", 200),
            ("13.203.39.154", 403),
            ("10.0.0.1", 403),
            ("127.0.0.1", 403)
        ]
    );
}

#[tokio::test]
async fn a_webhook_naming_our_call_for_another_execution_is_not_applied_to_it() {
    let app = crate::helpers::spawn_app().await;
    let user = app.create_user(1, 0).await;
    let call = app.start_call(&user, "+15550000101", 201).await;
    let id = call["id"].as_str().unwrap();
    app.wait_for_status(&user, id, "completed").await;
    // A body for a new execution that names our call: it conflicts with the recorded execution.
    let mut foreign: Value = serde_json::from_str(&fixture("webhook_6_completed.json")).unwrap();
    foreign["id"] = "another-execution".into();
    foreign["context_details"]["recipient_data"]["switchboard_call_id"] = id.into();

    let response = app.post_webhook(&foreign.to_string()).await;

    assert_eq!(
        response.json::<Value>().await.unwrap()["outcome"],
        "unmatched",
        "never re-pointed to another execution"
    );
}

#[tokio::test]
async fn racing_live_webhooks_for_the_same_calls_are_each_stored_once_and_move_each_call_once_per_status() {
    // Live statuses take the lock-free path (read, then a write guarded by the status read); a
    // second webhook for a call already in the batch goes again with the next batch, and a write
    // that lost a race falls back to the row lock. Race many of them on a few calls.
    let app = crate::helpers::spawn_app().await;
    // The simulator's own webhooks go nowhere: only the raced ones reach the app.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    app.sim.set_webhook(bolna_sim::WebhookTarget {
        url: format!("http://127.0.0.1:{port}/nowhere"),
        header: None,
    });
    let user = app.create_user(10, 0).await;
    let mut executions = Vec::new();
    for n in 0..5 {
        let call = app.start_call(&user, &format!("+91981234{n:04}"), 201).await;
        executions.push((
            call["id"].as_str().unwrap().to_owned(),
            call["bolna_execution_id"].as_str().unwrap().to_owned(),
        ));
    }
    let names = ["webhook_2_initiated.json", "webhook_3_ringing.json", "webhook_4_in-progress.json"];
    let mut bodies = Vec::new();
    for (_, execution) in &executions {
        for _round in 0..4 {
            for name in names {
                bodies.push(fixture(name).replace(EXECUTION, execution));
            }
        }
    }

    let responses = futures::future::join_all(bodies.iter().map(|body| app.post_webhook(body))).await;

    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let rows = event_rows(&app).await;
    assert_eq!(rows.len(), bodies.len(), "every webhook stored exactly once");
    for (id, execution) in &executions {
        let call = app.call_json(&user, id).await;
        assert_eq!(call["status"], "in-progress", "the furthest status wins whatever the order");
        assert!(call["answered_at"].is_string());
        let mine: Vec<_> = rows.iter().filter(|r| r.0.as_deref() == Some(execution.as_str())).collect();
        assert_eq!(mine.len(), 12);
        assert!(mine.iter().all(|r| r.3.map(|c| c.to_string()).as_deref() == Some(id.as_str())));
        let applied_in_progress =
            mine.iter().filter(|r| r.1.as_deref() == Some("in-progress") && r.2 == "applied").count();
        assert_eq!(applied_in_progress, 1, "in-progress applied exactly once; the rest duplicates");
        assert!(mine.iter().all(|r| ["applied", "duplicate", "stale"].contains(&r.2.as_str())), "{mine:?}");
        assert!(app.slot_of(id).await.is_some(), "a live call keeps its slot");
    }
    let extended: i64 =
        sqlx::query_scalar("SELECT count(*) FROM active_calls WHERE lease_expires_at > now()")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(extended, 5, "each live call's lease is current");
}

#[tokio::test]
async fn a_live_webhook_renews_a_lease_that_is_half_gone_and_leaves_a_fresh_one_alone() {
    let (app, _user, id, _bolna) = app_with_a_call().await;
    let lease_of = || async {
        sqlx::query_scalar::<_, f64>(
            "SELECT extract(epoch FROM lease_expires_at - now())::float8 FROM active_calls WHERE id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
    };
    // reconciler.lease_seconds is 900: 800 s left is more than half.
    sqlx::query(
        "UPDATE active_calls SET lease_expires_at = now() + interval '800 seconds' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    app.post_webhook(&fixture("webhook_2_initiated.json")).await;
    let fresh = lease_of().await;
    assert!((795.0..=800.0).contains(&fresh), "a fresh lease is left alone: {fresh}");

    sqlx::query(
        "UPDATE active_calls SET lease_expires_at = now() + interval '60 seconds' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .unwrap();
    app.post_webhook(&fixture("webhook_3_ringing.json")).await;
    let renewed = lease_of().await;
    assert!(renewed > 890.0, "a lease with less than half left is renewed to the full 900 s: {renewed}");
}

#[tokio::test]
async fn duplicate_out_of_order_and_late_webhooks_raced_on_a_freed_line_release_it_once_and_hand_it_over_once(
) {
    // The release-and-hand-over path under fire: many line-free webhooks (duplicates of
    // `completed`, `call-disconnected` arriving around it) and late live ones for the same call,
    // all at once. The slot must be freed once and given to exactly one queued call, the head.
    let app = crate::helpers::spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    // The simulator's own webhooks go nowhere: only the raced ones reach the app.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    app.sim.set_webhook(bolna_sim::WebhookTarget {
        url: format!("http://127.0.0.1:{port}/nowhere"),
        header: None,
    });
    let user = app.create_user(1, 0).await;
    let live = app.start_call(&user, "+919812340001", 201).await;
    let (live_id, execution) =
        (live["id"].as_str().unwrap().to_owned(), live["bolna_execution_id"].as_str().unwrap().to_owned());
    let mut queued = Vec::new();
    for n in 2..=4 {
        queued.push(
            app.start_call(&user, &format!("+91981234000{n}"), 202).await["id"].as_str().unwrap().to_owned(),
        );
    }
    let mut bodies = Vec::new();
    for _ in 0..8 {
        for name in ["webhook_6_completed.json", "webhook_5_call-disconnected.json"] {
            bodies.push(fixture(name).replace(EXECUTION, &execution));
        }
    }
    for name in ["webhook_3_ringing.json", "webhook_4_in-progress.json", "webhook_2_initiated.json"] {
        for _ in 0..3 {
            bodies.push(fixture(name).replace(EXECUTION, &execution));
        }
    }

    let responses = futures::future::join_all(bodies.iter().map(|body| app.post_webhook(body))).await;

    assert!(responses.iter().all(|r| r.status() == StatusCode::OK));
    let ended = app.call_json(&user, &live_id).await;
    assert_eq!(ended["status"], "completed", "terminal whatever the order: {ended}");
    let rows = event_rows(&app).await;
    assert_eq!(rows.len(), bodies.len(), "every webhook stored exactly once");
    let applied_completed =
        rows.iter().filter(|r| r.1.as_deref() == Some("completed") && r.2 == "applied").count();
    assert_eq!(applied_completed, 1, "completed applied exactly once");
    // The head of the queue got the slot (its start may still be in flight), and nobody else.
    let head = app
        .wait_for_call(&user, &queued[0], "the head to start", |c| c["bolna_execution_id"].is_string())
        .await;
    assert_eq!(head["status"], "placed", "accepted by Bolna: {head}");
    for id in &queued[1..] {
        let call = app.call_json(&user, id).await;
        assert!(call["status"] == "queued" && call["bolna_execution_id"].is_null(), "still waiting: {call}");
    }
    assert_eq!(app.held_slots().await, 1, "one slot, handed over once");
    let stats = app.sim.stats();
    assert_eq!(stats.accepted, 2, "the freed slot started one call");
    assert!(stats.open_by_agent_high_water.values().all(|high| *high <= 2), "{stats:?}");
    app.sim.hang_up_all();
}

#[tokio::test]
async fn with_bolnas_webhooks_duplicated_reordered_and_cut_off_for_a_while_every_call_ends_in_order_within_its_limit(
) {
    let app = crate::helpers::spawn_app().await;
    app.sim.set_faults(bolna_sim::FaultUpdate {
        webhooks: Some(bolna_sim::WebhookFaults {
            duplicate_probability: 0.5,
            out_of_order_probability: 0.5,
            ..Default::default()
        }),
        ..Default::default()
    });
    // One slot: each call reaches Bolna only once the one before it has freed its line, so the
    // simulator's acceptance order is the queue's order.
    const LIMIT: u32 = 1;
    let user = app.create_user(i64::from(LIMIT), 0).await;
    let numbers: Vec<String> = (0..10).map(|n| format!("+9198123410{n:02}")).collect();
    let mut ids = Vec::new();
    for (n, number) in numbers.iter().enumerate() {
        if n == 3 {
            // The receiving end is down for a while: Bolna retries its deliveries afterwards.
            app.sim.set_faults(bolna_sim::FaultUpdate { webhook_outage_ms: Some(400), ..Default::default() });
        }
        let response = app.post_call(&user, &crate::helpers::call_body(number)).await;
        assert!(response.status().is_success(), "{}", response.status());
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }

    for id in &ids {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let call = app.call_json(&user, id).await;
            if call["status"] == "completed" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "never completed: {call}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    let stats = app.sim.stats();
    assert!(stats.webhooks.iter().any(|w| w.answer.is_none()), "the outage was felt");
    crate::helpers::assert_placed_once_in_order(&stats, &numbers, LIMIT);
    app.wait_for_no_slots().await;
}
