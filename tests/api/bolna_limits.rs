//! Bolna as it really is: its rate limit on `POST /call` shared by two instances, its account
//! concurrency read from `GET /user/me`, calls scheduled by Switchboard, and calls Bolna
//! reschedules to its agent's calling hours — each against the simulator enforcing the same rule.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bolna_sim::{CallingHours, RateLimit};
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::campaigns::{app_with_clock, at};
use crate::helpers::{
    call_body, eventually, fresh_database, sim_config, spawn_app_with, spawn_instance, TestApp, TestUser,
};

/// One "minute" of Bolna's rate window in this file, in real time.
const WINDOW: Duration = Duration::from_secs(6);
const LIMIT: u32 = 20;

/// Every call of `user`, by id, once it has left `status`.
async fn statuses(app: &TestApp, user: &TestUser) -> BTreeMap<String, String> {
    let page = app.get_json_as(user, "/v1/calls?limit=100").await;
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_owned(), c["status"].as_str().unwrap().to_owned()))
        .collect()
}

#[tokio::test]
async fn two_instances_offered_twice_the_rate_send_at_most_the_limit_per_window_and_every_call_starts() {
    // Time is scaled: Bolna's minute is WINDOW here, for the simulator and for Switchboard alike.
    let database = fresh_database().await;
    let mut config = sim_config();
    config.rate_limit = Some(RateLimit { calls: LIMIT, window_ms: WINDOW.as_millis() as u64 });
    let sim = bolna_sim::Simulator::start(config, "127.0.0.1:0").unwrap();
    let rate = |s: &mut web::settings::Settings| {
        s.bolna.max_calls_per_minute = LIMIT;
        s.bolna.rate_window = WINDOW;
    };
    let first = spawn_instance(&database, sim.clone(), rate).await;
    let second = spawn_instance(&database, sim.clone(), rate).await;
    let user = first.create_user(100, 0).await;

    // Twice the rate for one window: 2 × LIMIT calls, evenly over WINDOW, alternating instances.
    let offered = 2 * LIMIT as usize;
    let started = Instant::now();
    let mut answers = Vec::new();
    for n in 0..offered {
        let app = if n % 2 == 0 { &first } else { &second };
        let response = app.post_call(&user, &call_body(&format!("+1555710{n:04}"))).await;
        answers.push(response.status().as_u16());
        let next = WINDOW.mul_f64((n + 1) as f64 / offered as f64);
        tokio::time::sleep(next.saturating_sub(started.elapsed())).await;
    }
    assert!(answers.iter().all(|code| *code == 201 || *code == 202), "{answers:?}");
    assert!(answers.contains(&202), "calls over the rate waited in the queue: {answers:?}");

    // Every call starts, as the window moves on.
    let deadline = Instant::now() + 4 * WINDOW;
    while sim.stats().accepted < offered as u64 {
        assert!(Instant::now() < deadline, "only {} of {offered} started", sim.stats().accepted);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = sim.stats();
    assert_eq!(stats.rate_limited, 0, "Bolna never had to refuse a call for its rate");
    assert!(stats.double_dials().is_empty(), "{:?}", stats.double_dials());
    // No window of Bolna's length holds more than the limit.
    let mut accepted: Vec<DateTime<Utc>> = stats.first_accepted_at.values().copied().collect();
    accepted.sort();
    let window = TimeDelta::from_std(WINDOW).unwrap();
    let busiest = (0..accepted.len())
        .map(|i| accepted[i..].iter().take_while(|at| **at - accepted[i] < window).count())
        .max()
        .unwrap_or(0);
    assert!(busiest <= LIMIT as usize, "{busiest} calls within one window");
    assert!(
        first.metric("switchboard_bolna_rate_limit_waits_total").await
            + second.metric("switchboard_bolna_rate_limit_waits_total").await
            > 0.0
    );
    assert_eq!(first.metric("switchboard_bolna_rate_limit_per_minute").await, f64::from(LIMIT));
    let tokens_free = first.diagnostics().await["bolna_rate_remaining"].as_i64().unwrap();
    assert!((0..=i64::from(LIMIT)).contains(&tokens_free), "{tokens_free}");
}

#[tokio::test]
async fn an_account_limit_above_bolnas_concurrency_is_clamped_to_it() {
    let app = spawn_app_with(
        |s| s.limits.account_max_concurrent = 50,
        |sim| {
            sim.account_concurrency = 3;
            sim.hold_calls = true;
        },
    )
    .await;
    let mut diagnostics_now = app.diagnostics().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while diagnostics_now["account_lines"] != 3 {
        assert!(Instant::now() < deadline, "not clamped: {diagnostics_now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
        diagnostics_now = app.diagnostics().await;
    }
    assert_eq!(diagnostics_now["account_lines_configured"], 50);
    assert_eq!(diagnostics_now["bolna_account_concurrency_max"], 3);
    assert!(diagnostics_now["bolna_account_checked_at"].is_string(), "{diagnostics_now}");
    assert_eq!(app.metric("switchboard_account_lines").await, 3.0);
    assert_eq!(app.metric("switchboard_account_lines_configured").await, 50.0);
    assert_eq!(app.metric("switchboard_bolna_account_concurrency_max").await, 3.0);

    // Six calls of a user allowed ten: three take Bolna's three lines, three wait here (not at Bolna).
    let user = app.create_user(10, 0).await;
    let mut codes = Vec::new();
    for n in 0..6 {
        codes.push(app.post_call(&user, &call_body(&format!("+1555720{n:04}"))).await.status().as_u16());
    }
    assert_eq!(codes, [201, 201, 201, 202, 202, 202]);
    eventually("three calls live at Bolna", || app.sim.stats().lines_in_use == 3).await;
    assert_eq!(app.sim.stats().accepted, 3, "nothing waits in Bolna's own queue");
    app.sim.hang_up_all();
    eventually("the other three", || app.sim.stats().accepted == 6).await;
    assert!(app.sim.stats().lines_high_water <= 3);
}

#[tokio::test]
async fn a_scheduled_call_waits_holding_nothing_starts_at_its_time_in_order_and_can_be_canceled() {
    let (first, clock) = app_with_clock(at("2026-09-01T10:00:00Z"), true).await;
    let user = first.create_user(1, 0).await;
    let schedule = |recipient: &str, when: &str| {
        let mut body = call_body(recipient);
        body["scheduled_at"] = json!(when);
        body
    };
    // 16:30 in India is 11:00 UTC: any offset is accepted.
    let a = first.post_call(&user, &schedule("+15557300001", "2026-09-01T16:30:00+05:30")).await;
    assert_eq!(a.status(), StatusCode::ACCEPTED);
    let a: Value = a.json().await.unwrap();
    assert_eq!(
        (a["status"].as_str(), a["scheduled_at"].as_str()),
        (Some("scheduled"), Some("2026-09-01T11:00:00Z"))
    );
    let b: Value =
        first.post_call(&user, &schedule("+15557300002", "2026-09-01T11:00:00Z")).await.json().await.unwrap();
    let c: Value =
        first.post_call(&user, &schedule("+15557300003", "2026-09-01T12:00:00Z")).await.json().await.unwrap();
    assert_eq!(b["status"], "scheduled");

    let bad = first.post_call(&user, &schedule("+15557300004", "2026-09-01T11:00:00")).await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = bad.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "scheduled_at", "{problem}");
    let dateless = first.post_call(&user, &schedule("+15557300005", "tomorrow")).await;
    assert_eq!(dateless.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Waiting holds no slot, and Bolna hears nothing.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(first.concurrency(&user).await["direct"]["active"], 0);
    assert_eq!(first.sim.stats().call_requests, 0);
    let listed = first.get_json_as(&user, "/v1/calls?status=scheduled").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3, "{listed}");
    let events: Vec<String> =
        sqlx::query_scalar("SELECT status FROM events WHERE subject_id = $1::uuid ORDER BY id")
            .bind(a["id"].as_str().unwrap())
            .fetch_all(&first.pool)
            .await
            .unwrap();
    assert_eq!(events, ["scheduled"]);

    // Canceled before its time.
    let canceled = first.cancel_call(&user, c["id"].as_str().unwrap()).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    assert_eq!(canceled.json::<Value>().await.unwrap()["status"], "canceled");

    // Survives a restart: a new instance on the same database and clock takes over.
    let second = crate::helpers::spawn_instance_with_clock(
        &first.database_url,
        first.sim.clone(),
        |_| {},
        clock.clone(),
    )
    .await;
    first.stop_server().await;
    clock.set(at("2026-09-01T11:00:00Z"));
    second.wait_for_status(&user, a["id"].as_str().unwrap(), "in-progress").await;
    assert_eq!(
        second.call_json(&user, b["id"].as_str().unwrap()).await["status"],
        "queued",
        "one slot: b waits for it"
    );
    second.sim.hang_up_all();
    second.wait_for_status(&user, b["id"].as_str().unwrap(), "in-progress").await;
    let stats = second.sim.stats();
    assert!(
        stats.first_accepted_at["+15557300001"] < stats.first_accepted_at["+15557300002"],
        "due at once: in order"
    );
    assert_eq!(stats.call_requests, 2, "the canceled call was never sent");
    let all = statuses(&second, &user).await;
    assert_eq!(all[c["id"].as_str().unwrap()], "canceled");
}

#[tokio::test]
async fn a_call_bolna_reschedules_to_its_agents_hours_is_stopped_and_frees_its_slot_for_the_next() {
    // The agent may call for the two hours starting now in London: an Indian number, five and a
    // half hours ahead, is outside them.
    let hour = Utc::now().hour();
    let hours = CallingHours { start_hour: hour, end_hour: (hour + 2).min(24) };
    let app = spawn_app_with(
        |_| {},
        |sim| {
            sim.guardrails = Some(hours);
            sim.hold_calls = true;
        },
    )
    .await;
    let user = app.create_user(1, 0).await;
    let deferred = app.start_call(&user, "+919812300001", 201).await;
    // Queued behind the first (202), or already given its freed slot (201) when the take-back was
    // quicker than this request: either way the limit of one holds, as checked below.
    let response = app.post_call(&user, &call_body("+447700900001")).await;
    assert!([201, 202].contains(&response.status().as_u16()), "{}", response.status());
    let next: Value = response.json().await.unwrap();

    let stopped = app.wait_for_status(&user, deferred["id"].as_str().unwrap(), "stopped").await;
    assert!(stopped["error"].as_str().unwrap().contains("calling hours"), "{stopped}");
    app.wait_for_status(&user, next["id"].as_str().unwrap(), "in-progress").await;

    let stats = app.sim.stats();
    assert_eq!(stats.rescheduled, 1);
    assert_eq!(stats.dialled, 1, "the rescheduled call was never dialled");
    assert_eq!(stats.final_statuses.get("stopped"), Some(&1), "stopped at Bolna: it will not dial it later");
    let highs = &stats.open_by_agent_high_water;
    assert!(highs.values().all(|high| *high <= 1), "the user's limit of one held: {highs:?}");
    assert_eq!(app.held_slots().await, 1, "only the live call holds a slot");
}

#[tokio::test]
async fn a_rescheduled_call_whose_webhooks_are_lost_is_taken_back_when_its_lease_runs_out() {
    let hour = Utc::now().hour();
    let app = spawn_app_with(
        |s| {
            s.reconciler.interval_seconds = 1;
            s.reconciler.lease_seconds = 1;
        },
        |sim| sim.guardrails = Some(CallingHours { start_hour: hour, end_hour: (hour + 2).min(24) }),
    )
    .await;
    app.sim.set_faults(bolna_sim::FaultUpdate {
        webhooks: Some(bolna_sim::WebhookFaults {
            drop_probability: 1.0,
            ..bolna_sim::WebhookFaults::default()
        }),
        ..bolna_sim::FaultUpdate::default()
    });
    let user = app.create_user(1, 0).await;
    let call = app.start_call(&user, "+919812300003", 201).await;

    // No webhook arrives: the reconciler finds the call rescheduled at Bolna and takes it back.
    let stopped = app.wait_for_status(&user, call["id"].as_str().unwrap(), "stopped").await;
    assert!(stopped["error"].as_str().unwrap().contains("calling hours"), "{stopped}");
    app.wait_for_no_slots().await;
    let stats = app.sim.stats();
    assert_eq!((stats.rescheduled, stats.dialled, stats.webhooks_delivered), (1, 0, 0));
}
