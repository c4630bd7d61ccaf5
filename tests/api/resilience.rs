//! Nothing stuck, nothing lost: lost webhooks, lost answers, calls Bolna never got, Bolna outages,
//! events that arrived too early — and the metrics and diagnostics that show it.

use std::time::Duration;

use bolna_sim::{CallFault, FaultUpdate, WebhookFaults};
use reqwest::StatusCode;
use serde_json::Value;
use web::Settings;

use crate::helpers::{call_body, eventually, spawn_app_with, TestApp};

/// A reconciler that looks every second, with a one-second lease and timeout.
fn fast_reconciler(settings: &mut Settings) {
    settings.reconciler.interval_seconds = 1;
    settings.reconciler.initiating_timeout_seconds = 1;
    settings.reconciler.lease_seconds = 1;
    settings.reconciler.not_placed_grace_seconds = 1;
}

fn drop_webhooks(app: &TestApp) {
    app.sim.set_faults(FaultUpdate {
        webhooks: Some(WebhookFaults { drop_probability: 1.0, ..WebhookFaults::default() }),
        ..FaultUpdate::default()
    });
}

async fn metric(app: &TestApp, name_and_labels: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| line.starts_with(name_and_labels))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn a_call_whose_webhooks_are_all_lost_ends_with_bolnas_status_and_frees_its_slot() {
    let app = spawn_app_with(fast_reconciler, |_| {}).await;
    drop_webhooks(&app);
    let user = app.create_user(1, 0).await;

    let call = app.start_call(&user, "+15550002001", 201).await;
    let id = call["id"].as_str().unwrap();
    let done = app.wait_for_status(&user, id, "completed").await;

    assert!(done["conversation_duration"].as_f64().unwrap() > 0.0, "data read from Bolna");
    assert!(app.sim.stats().webhooks_dropped >= 6 && app.sim.stats().webhooks_delivered == 0);
    app.wait_for_no_slots().await;
    assert!(
        metric(&app, "switchboard_reconciler_actions_total{kind=\"lease_expired_call_ended\"}").await >= 1.0
    );
}

#[tokio::test]
async fn a_call_whose_final_webhook_is_lost_after_its_line_was_freed_gets_its_final_status_from_bolna() {
    // The line-free webhook arrives (the slot goes back) but `completed` never does.
    let app = spawn_app_with(
        |settings| {
            fast_reconciler(settings);
            settings.reconciler.lease_seconds = 2;
        },
        |_| {},
    )
    .await;
    drop_webhooks(&app);
    let user = app.create_user(1, 0).await;
    let call = app.start_call(&user, "+15550002002", 201).await;
    let (id, execution) = (call["id"].as_str().unwrap(), call["bolna_execution_id"].as_str().unwrap());
    let freed = app.post_webhook(&format!(r#"{{"id": "{execution}", "status": "call-disconnected"}}"#)).await;
    assert!(freed.status().is_success());
    assert_eq!(app.call_json(&user, id).await["status"], "call-disconnected");
    app.wait_for_no_slots().await;

    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let done = loop {
        let now = app.call_json(&user, id).await;
        if now["status"] == "completed" {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "never finished: {now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(done["conversation_duration"].as_f64().unwrap() > 0.0, "the final data read from Bolna");
    assert!(done["transcript"].is_string(), "{done}");
    assert!(metric(&app, "switchboard_reconciler_actions_total{kind=\"final_status_adopted\"}").await >= 1.0);
}

#[tokio::test]
async fn a_call_accepted_by_bolna_but_answered_5xx_is_adopted_and_never_dialled_twice() {
    let app = spawn_app_with(fast_reconciler, |_| {}).await;
    drop_webhooks(&app);
    app.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::AcceptThenError { status: 502 }]),
        ..FaultUpdate::default()
    });
    let user = app.create_user(1, 0).await;

    let accepted = app.start_call(&user, "+15550002101", 202).await;
    let id = accepted["id"].as_str().unwrap();
    assert_eq!(accepted["status"], "initiating");
    let done = app.wait_for_status(&user, id, "completed").await;

    assert!(done["bolna_execution_id"].is_string(), "the execution ID was found at Bolna");
    assert_eq!(app.sim.stats().call_requests, 1, "never sent twice");
    app.wait_for_no_slots().await;
    assert!(metric(&app, "switchboard_reconciler_actions_total{kind=\"initiating_adopted\"}").await >= 1.0);
}

#[tokio::test]
async fn a_call_bolna_never_received_is_failed_as_not_placed_and_the_next_one_starts() {
    let app = spawn_app_with(fast_reconciler, |_| {}).await;
    // A 5xx without a call: Switchboard cannot know nothing started, so it waits for the reconciler.
    app.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::ServerError { status: 500 }]),
        ..FaultUpdate::default()
    });
    let user = app.create_user(1, 0).await;
    let lost = app.start_call(&user, "+15550002201", 202).await;
    let waiting = app.start_call(&user, "+15550002202", 202).await;

    let failed = app.wait_for_status(&user, lost["id"].as_str().unwrap(), "failed").await;

    assert!(failed["error"].as_str().unwrap().starts_with("not placed"), "{failed}");
    app.wait_for_status(&user, waiting["id"].as_str().unwrap(), "completed").await;
    assert_eq!(app.sim.stats().accepted, 1, "the lost call was never placed again");
    app.wait_for_no_slots().await;
}

#[tokio::test]
async fn while_bolna_is_down_calls_queue_and_all_start_once_it_is_back() {
    let app = spawn_app_with(|s| s.bolna.circuit_cooldown_seconds = 1, |_| {}).await;
    let user = app.create_user(2, 0).await;
    app.sim.go_down().await;

    let mut ids = Vec::new();
    for n in 0..6 {
        let response = app.post_call(&user, &call_body(&format!("+1555000230{n}"))).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "queued, not failed");
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    // Each try at the absent Bolna fails; after three the breaker holds calls back.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app.diagnostics().await["bolna_circuit_open"] != true {
        assert!(std::time::Instant::now() < deadline, "the circuit never opened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.sim.stats().accepted, 0);
    app.sim.come_back().unwrap();

    for id in &ids {
        app.wait_for_status(&user, id, "completed").await;
    }
    let stats = app.sim.stats();
    assert_eq!(stats.accepted, 6, "every call placed once");
    assert!(stats.double_dials().is_empty());
    assert!(stats.open_by_agent_high_water.values().all(|high| *high <= 2));
    app.wait_for_no_slots().await;
}

#[tokio::test]
async fn an_event_that_arrived_before_its_call_was_known_is_applied_later() {
    let bolna = wiremock::MockServer::start().await;
    let response = std::fs::read_to_string(format!(
        "{}/crates/bolna-client/fixtures/call_response.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_string(response))
        .mount(&bolna)
        .await;
    let url = bolna.uri();
    let app = spawn_app_with(
        move |s| {
            fast_reconciler(s);
            s.bolna.base_url = url;
        },
        |_| {},
    )
    .await;
    let completed = std::fs::read_to_string(format!(
        "{}/crates/bolna-client/fixtures/webhook_6_completed.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let early = app.post_webhook(&completed).await;
    assert_eq!(early.json::<Value>().await.unwrap()["outcome"], "unmatched");
    let user = app.create_user(1, 0).await;

    let call = app.start_call(&user, "+919812345678", 201).await;
    let done = app.wait_for_status(&user, call["id"].as_str().unwrap(), "completed").await;

    assert_eq!(done["conversation_duration"], 74.6);
    let outcome: String =
        sqlx::query_scalar("SELECT outcome FROM webhook_events").fetch_one(&app.pool).await.unwrap();
    assert_eq!(outcome, "applied");
    app.wait_for_no_slots().await;
}

#[tokio::test]
async fn metrics_report_slots_queues_bolna_and_webhooks() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 3).await;
    app.start_call(&user, "+15550002401", 201).await;
    app.start_call(&user, "+15550002402", 202).await;
    eventually("the live call's webhooks", || app.sim.stats().webhooks_delivered >= 4).await;

    let text = app.get("/metrics").await.text().await.unwrap();

    for expected in [
        "switchboard_slots_in_use{call_type=\"direct\"} 1",
        "switchboard_slot_limits{call_type=\"direct\"} 1",
        "switchboard_slot_limits{call_type=\"campaign\"} 3",
        "switchboard_queue_depth{call_type=\"direct\"} 1",
        "switchboard_account_lines_in_use 1",
        "switchboard_account_lines 50",
        "switchboard_bolna_request_seconds_count{operation=\"start_call\",outcome=\"ok\"} 1",
        "switchboard_webhook_events_total{outcome=\"applied\",status=\"in-progress\"} 1",
        "switchboard_admissions_total{call_type=\"direct\",result=\"queued\"} 1",
        "switchboard_bolna_circuit_open 0",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in\n{text}");
    }
    assert!(metric(&app, "switchboard_oldest_queued_seconds{call_type=\"direct\"}").await > 0.0);
    assert!(metric(&app, "switchboard_webhook_lag_seconds_count").await >= 4.0);
    app.sim.hang_up_all();
}

#[tokio::test]
async fn diagnostics_count_stuck_slots_missing_ids_stale_calls_and_unapplied_events() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(2, 0).await;
    let first = app.start_call(&user, "+15550002501", 201).await;
    app.start_call(&user, "+15550002502", 201).await;
    eventually("both calls live (no more webhooks)", || app.sim.stats().webhooks_delivered >= 8).await;
    let healthy = app.diagnostics().await;
    // Age one slot past an hour and strip its execution ID, as a stuck system would look.
    sqlx::query("UPDATE active_calls SET started_at = now() - interval '2 hours', bolna_execution_id = NULL WHERE id = $1::uuid")
        .bind(first["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE calls SET updated_at = now() - interval '3 hours' WHERE id = $1::uuid")
        .bind(first["id"].as_str().unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    app.post_webhook(r#"{"id": "nobody-knows", "status": "ringing"}"#).await;

    let stuck = app.diagnostics().await;

    assert_eq!(healthy["slots_held_over_an_hour"], 0);
    assert_eq!(healthy["slots_missing_execution_id"], 0);
    assert_eq!(stuck["slots_held_over_an_hour"], 1);
    assert_eq!(stuck["slots_missing_execution_id"], 1);
    assert_eq!(stuck["calls_non_terminal_too_long"], 1);
    assert_eq!(stuck["unapplied_webhook_events"], 1);
    assert_eq!(stuck["account_lines_in_use"], 2);
    let anonymous = app.client.get(app.url("/v1/admin/diagnostics")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.sim.hang_up_all();
}

#[tokio::test]
async fn a_429_with_retry_after_pauses_dispatch_for_that_long_then_the_calls_start_in_order() {
    let app = spawn_app_with(|_| {}, |_| {}).await;
    // Bolna's client retries a 429 itself (four attempts); the last answer carries Retry-After:
    // the call goes back to the queue and dispatch pauses that long. Three seconds is well above
    // the breaker's own one-second pause for a 429 without the header.
    const PAUSE: Duration = Duration::from_secs(3);
    let busy = CallFault::RateLimited { retry_after_seconds: None };
    let last = CallFault::RateLimited { retry_after_seconds: Some(PAUSE.as_secs_f64()) };
    app.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![busy.clone(), busy.clone(), busy, last]),
        ..FaultUpdate::default()
    });
    // One slot: the two calls then reach Bolna one after the other, so their order there is FIFO's.
    let user = app.create_user(1, 0).await;

    let limited = app.start_call(&user, "+15550002401", 202).await;
    let answered_at = chrono::Utc::now();
    assert_eq!(limited["status"], "queued", "re-queued, not failed: {limited}");
    assert_eq!(app.sim.stats().call_requests, 4, "the client's own retries");
    let behind = app.start_call(&user, "+15550002402", 202).await;
    assert_eq!(behind["status"], "queued", "{behind}");
    assert_eq!(app.sim.stats().call_requests, 4, "nothing sent while paused");

    let first = app.wait_for_call(&user, limited["id"].as_str().unwrap(), "a start", |c| {
        c["bolna_execution_id"].is_string()
    });
    let first = tokio::time::timeout(PAUSE * 3, first).await.expect("started after the pause");
    app.wait_for_call(&user, behind["id"].as_str().unwrap(), "a start", |c| {
        c["bolna_execution_id"].is_string()
    })
    .await;

    let stats = app.sim.stats();
    let accepted_at = |number: &str| stats.first_accepted_at[number];
    let waited = accepted_at("+15550002401") - answered_at;
    // The last 429 came a few milliseconds before the answer to the client.
    let pause = chrono::TimeDelta::from_std(PAUSE).unwrap() - chrono::TimeDelta::milliseconds(100);
    assert!(waited >= pause, "sent again {waited} after the 429, before its Retry-After");
    assert!(accepted_at("+15550002401") <= accepted_at("+15550002402"), "the refused call keeps its place");
    assert_eq!(stats.call_requests, 6, "four refusals, then each call once");
    assert!(first["error"].is_null(), "{first}");
}
