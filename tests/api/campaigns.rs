//! Campaigns through the API, the scheduler and the simulator; time moved by an injected clock.

use std::sync::Arc;
use std::time::Duration;

use bolna_sim::{CallFault, FaultUpdate};
use call_service::clock::ManualClock;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{
    eventually, fresh_database, sim_config, spawn_app, spawn_app_with, spawn_instance,
    spawn_instance_with_clock, TestApp, TestUser,
};

pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
}

pub(crate) async fn app_with_clock(start: DateTime<Utc>, hold: bool) -> (TestApp, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start));
    let mut config = sim_config();
    config.hold_calls = hold;
    let sim = bolna_sim::Simulator::start(config, "127.0.0.1:0").unwrap();
    let app = spawn_instance_with_clock(&fresh_database().await, sim, |_| {}, clock.clone()).await;
    (app, clock)
}

pub(crate) async fn create_campaign(app: &TestApp, user: &TestUser, body: Value) -> Value {
    let response =
        app.client.post(app.url("/v1/campaigns")).bearer_auth(&user.key).json(&body).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"], "draft");
    body
}

pub(crate) async fn add_contacts(app: &TestApp, user: &TestUser, id: &str, numbers: &[String]) -> Value {
    let contacts: Vec<Value> =
        numbers.iter().map(|n| json!({"phone_number": n, "variables": {"ref": n}})).collect();
    post_contacts(app, user, id, &contacts).await
}

/// `POST /v1/campaigns/{id}/contacts` with these contacts; the answer's body.
pub(crate) async fn post_contacts(app: &TestApp, user: &TestUser, id: &str, contacts: &[Value]) -> Value {
    app.client
        .post(app.url(&format!("/v1/campaigns/{id}/contacts")))
        .bearer_auth(&user.key)
        .json(&json!({"contacts": contacts}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub(crate) async fn act(app: &TestApp, user: &TestUser, id: &str, action: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/v1/campaigns/{id}/{action}")))
        .bearer_auth(&user.key)
        .send()
        .await
        .unwrap()
}

pub(crate) async fn campaign(app: &TestApp, user: &TestUser, id: &str) -> Value {
    app.get_json_as(user, &format!("/v1/campaigns/{id}")).await
}

pub(crate) async fn wait_for_campaign(app: &TestApp, user: &TestUser, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = campaign(app, user, id).await;
        if now["status"] == status {
            return now;
        }
        assert!(std::time::Instant::now() < deadline, "campaign never reached {status}: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn numbers(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("+1{prefix}{i:06}")).collect()
}

#[tokio::test]
async fn fifty_contacts_at_concurrency_three_complete_without_exceeding_it_while_direct_calls_keep_their_slots(
) {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;
    let agent = uuid::Uuid::new_v4().to_string();
    let created =
        create_campaign(&app, &user, json!({"name": "Fifty", "agent_id": agent, "max_concurrency": 3})).await;
    let id = created["id"].as_str().unwrap();
    let added = add_contacts(&app, &user, id, &numbers("555100", 50)).await;
    assert_eq!(added["accepted"], 50);

    assert_eq!(act(&app, &user, id, "start").await.status(), StatusCode::OK);
    let direct = app.start_call(&user, "+15559990001", 201).await;
    let done = wait_for_campaign(&app, &user, id, "completed").await;

    assert_eq!(done["stats"]["done"], 50);
    assert_eq!(done["stats"]["by_outcome"]["completed"], 50);
    let stats = app.sim.stats();
    let high = stats.open_by_agent_high_water[&agent];
    assert!(high <= 3, "{high} campaign calls open at once");
    assert_eq!(high, 3, "the campaign used its concurrency");
    assert!(stats.double_dials().is_empty());
    assert_eq!(direct["call_type"], "direct", "a direct call started at once, on its own slot");
    let campaign_calls: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM calls WHERE campaign_id = $1::uuid AND call_type = 'campaign'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(campaign_calls, 50);
    let user_data: Value =
        sqlx::query_scalar("SELECT user_data FROM calls WHERE campaign_id = $1::uuid LIMIT 1")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(user_data["switchboard_campaign_id"], id);
    assert!(user_data["ref"].is_string() && user_data["switchboard_contact_id"].is_string());
    app.wait_for_no_slots().await;
}

#[tokio::test]
async fn nothing_is_dialled_outside_the_window_in_the_contacts_own_time_zone_across_a_dst_change() {
    // Friday 2026-03-06 13:30 UTC = 08:30 in New York (EST): the 09:00–17:00 window is closed.
    let (app, clock) = app_with_clock(at("2026-03-06T13:30:00Z"), false).await;
    let user = app.create_user(2, 5).await;
    let created = create_campaign(&app, &user, json!({
        "name": "Window", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 2, "timezone": "America/New_York",
        "window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
    })).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["window_open"], false);
    assert_eq!(created["next_window_at"], "2026-03-06T14:00:00Z");
    let contacts = json!({"contacts": [
        {"phone_number": "+15552000001"},
        {"phone_number": "+919812000002", "timezone": "Asia/Kolkata"}
    ]});
    app.client
        .post(app.url(&format!("/v1/campaigns/{id}/contacts")))
        .bearer_auth(&user.key)
        .json(&contacts)
        .send()
        .await
        .unwrap();
    act(&app, &user, id, "start").await;

    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.sim.stats().accepted, 0, "closed in New York (08:30) and in Kolkata (19:00)");

    // 14:05 UTC: 09:05 in New York, 19:35 in Kolkata: only the New York contact.
    clock.set(at("2026-03-06T14:05:00Z"));
    eventually("the New York contact", || {
        app.sim.stats().executions_by_recipient.contains_key("+15552000001")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!app.sim.stats().executions_by_recipient.contains_key("+919812000002"));

    // After the spring-forward of 2026-03-08, 13:30 UTC is 09:30 EDT: open (it was closed at the same
    // UTC time before the change).
    clock.set(at("2026-03-09T13:30:00Z"));
    assert_eq!(campaign(&app, &user, id).await["window_open"], true);

    // Monday 04:00 UTC = 09:30 in Kolkata (open), 00:00 in New York.
    clock.set(at("2026-03-10T04:00:00Z"));
    eventually("the Kolkata contact", || {
        app.sim.stats().executions_by_recipient.contains_key("+919812000002")
    })
    .await;
    wait_for_campaign(&app, &user, id, "completed").await;
}

#[tokio::test]
async fn pacing_spaces_dials_evenly_and_the_agent_gets_the_contacts_name() {
    let t0 = at("2026-09-01T10:00:00Z");
    let (app, clock) = app_with_clock(t0, false).await;
    let user = app.create_user(2, 5).await;
    let created = create_campaign(&app, &user, json!({"name": "Paced", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 3, "calls_per_minute": 6})).await;
    let id = created["id"].as_str().unwrap();
    let contacts: Vec<Value> = numbers("555300", 4)
        .iter()
        .enumerate()
        .map(|(n, number)| json!({"phone_number": number, "name": format!("Asha {n}"), "variables": {"plan": "gold"}}))
        .collect();
    assert_eq!(post_contacts(&app, &user, id, &contacts).await["accepted"], 4);
    act(&app, &user, id, "start").await;

    // 6 per minute: one dial every 10 s of the campaign's clock, moved a second at a time.
    eventually("the first dial", || app.sim.stats().accepted == 1).await;
    for _ in 0..32 {
        clock.advance(TimeDelta::seconds(1));
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    let dials: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT last_attempt_at FROM campaign_contacts WHERE campaign_id = $1::uuid ORDER BY last_attempt_at",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let offsets: Vec<i64> = dials.iter().map(|at| (*at - t0).num_milliseconds()).collect();
    assert_eq!(offsets.len(), 4, "{offsets:?}");
    for (n, offset) in offsets.iter().enumerate() {
        let expected = 10_000 * n as i64;
        assert!(
            (offset - expected).abs() <= 1_000,
            "dial {n} at {offset} ms, expected {expected} ± 1,000: {offsets:?}"
        );
    }
    assert_eq!(app.sim.stats().accepted, 4);

    let executions: Vec<String> = sqlx::query_scalar(
        "SELECT bolna_execution_id FROM calls WHERE campaign_id = $1::uuid ORDER BY recipient_phone_number",
    )
    .bind(id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(executions.len(), 4);
    for (n, execution) in executions.iter().enumerate() {
        let at_bolna = app.sim.execution(execution).expect("Bolna has the execution");
        let sent = at_bolna.context_details.and_then(|c| c.recipient_data).expect("user_data reached Bolna");
        assert_eq!(sent["name"], format!("Asha {n}"), "{sent}");
        assert_eq!(sent["plan"], "gold", "{sent}");
        assert_eq!(sent["switchboard_campaign_id"], id, "{sent}");
    }
}

#[tokio::test]
async fn a_no_answer_is_retried_after_the_delay_up_to_the_limit_then_exhausted() {
    let (app, clock) = app_with_clock(at("2026-09-01T10:00:00Z"), false).await;
    let user = app.create_user(2, 5).await;
    let number = "+15554000001".to_owned();
    app.sim.set_faults(FaultUpdate {
        by_recipient: Some([(number.clone(), CallFault::Outcome { status: "no-answer".into() })].into()),
        ..FaultUpdate::default()
    });
    let created = create_campaign(
        &app,
        &user,
        json!({
            "name": "Retry", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 1,
            "retry": {"on": ["no-answer", "busy"], "delay_seconds": 300, "max_attempts": 3}
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    add_contacts(&app, &user, id, std::slice::from_ref(&number)).await;
    act(&app, &user, id, "start").await;
    let dials = || app.sim.stats().executions_by_recipient.get(&number).copied().unwrap_or(0);

    eventually("the first attempt", || dials() == 1).await;
    let contact = wait_for_contact(&app, &user, id, "retry_scheduled").await;
    assert_eq!(contact["attempts"], 1);
    assert_eq!(contact["next_attempt_at"], "2026-09-01T10:05:00Z");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(dials(), 1, "not before the delay");

    clock.advance(TimeDelta::seconds(301));
    eventually("the second attempt", || dials() == 2).await;
    wait_for_contact(&app, &user, id, "retry_scheduled").await;
    clock.advance(TimeDelta::seconds(301));
    eventually("the third attempt", || dials() == 3).await;
    let done = wait_for_campaign(&app, &user, id, "completed").await;

    assert_eq!(done["stats"]["exhausted"], 1);
    assert_eq!(done["stats"]["by_outcome"]["no-answer"], 1);
    clock.advance(TimeDelta::seconds(3600));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(dials(), 3, "never beyond max_attempts");
}

pub(crate) async fn wait_for_contact(app: &TestApp, user: &TestUser, id: &str, status: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let page = app.get_json_as(user, &format!("/v1/campaigns/{id}/contacts")).await;
        if page["data"][0]["status"] == status {
            return page["data"][0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "contact never {status}: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn pause_stops_new_calls_resume_continues_and_cancel_ends_it() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(2, 5).await;
    let created = create_campaign(
        &app,
        &user,
        json!({"name": "Control", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 1}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    add_contacts(&app, &user, id, &numbers("555500", 6)).await;
    assert_eq!(
        act(&app, &user, id, "pause").await.status(),
        StatusCode::CONFLICT,
        "a draft cannot be paused"
    );
    act(&app, &user, id, "start").await;
    eventually("the first call", || app.sim.stats().accepted == 1).await;

    assert_eq!(act(&app, &user, id, "pause").await.status(), StatusCode::OK);
    app.sim.hang_up_all();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(app.sim.stats().accepted, 1, "paused: nothing new");

    act(&app, &user, id, "resume").await;
    eventually("the next call", || app.sim.stats().accepted == 2).await;
    let canceled = act(&app, &user, id, "cancel").await.json::<Value>().await.unwrap();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["stats"]["canceled"], 4);
    app.sim.hang_up_all();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let after = loop {
        let now = campaign(&app, &user, id).await;
        if now["stats"]["done"] == 2 {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "the live call never finished: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(after["status"], "canceled");
    assert_eq!(app.sim.stats().accepted, 2);
    assert_eq!(act(&app, &user, id, "resume").await.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn numbers_on_the_do_not_call_list_are_never_dialled() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;
    let added = app
        .client
        .post(app.url("/v1/dnc"))
        .bearer_auth(&user.key)
        .json(&json!({"phone_numbers": ["+1555600000001", "+1555600000003"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.json::<Value>().await.unwrap()["added"], 2);

    let direct = app.post_call(&user, &crate::helpers::call_body("+1555600000001")).await;
    assert_eq!(direct.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(direct.json::<Value>().await.unwrap()["code"], "do_not_call");

    let created = create_campaign(
        &app,
        &user,
        json!({"name": "DNC", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 2}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    add_contacts(&app, &user, id, &numbers("555600", 4)).await;
    act(&app, &user, id, "start").await;
    let done = wait_for_campaign(&app, &user, id, "completed").await;

    assert_eq!(done["stats"]["skipped_dnc"], 2);
    assert_eq!(done["stats"]["done"], 2);
    let dialled = app.sim.stats().executions_by_recipient;
    assert!(!dialled.contains_key("+1555600000001") && !dialled.contains_key("+1555600000003"));
    let list: Value =
        app.client.get(app.url("/v1/dnc")).bearer_auth(&user.key).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 2);
    let removed =
        app.client.delete(app.url("/v1/dnc/+1555600000001")).bearer_auth(&user.key).send().await.unwrap();
    assert_eq!(removed.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn two_scheduler_instances_never_dial_a_contact_twice() {
    let first = spawn_app().await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), |_| {}).await;
    let user = first.create_user(2, 10).await;
    let created = create_campaign(
        &first,
        &user,
        json!({"name": "Twice", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 8}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    add_contacts(&first, &user, id, &numbers("555700", 60)).await;

    act(&second, &user, id, "start").await;
    let done = wait_for_campaign(&first, &user, id, "completed").await;

    assert_eq!(done["stats"]["done"], 60);
    let stats = first.sim.stats();
    assert_eq!(stats.accepted, 60);
    assert!(stats.double_dials().is_empty(), "{:?}", stats.double_dials());
}

#[tokio::test]
async fn contacts_upload_as_json_or_csv_reporting_bad_rows_and_skipping_duplicates() {
    let app = spawn_app().await;
    let user = app.create_user(2, 5).await;
    let created = create_campaign(
        &app,
        &user,
        json!({"name": "Upload", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 2}),
    )
    .await;
    let id = created["id"].as_str().unwrap();

    let json_body = json!({"contacts": [{"phone_number": "+15557000001"}, {"phone_number": "12"}, {"phone_number": "+15557000001"}]});
    let from_json: Value = app
        .client
        .post(app.url(&format!("/v1/campaigns/{id}/contacts")))
        .bearer_auth(&user.key)
        .json(&json_body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csv = "contact_number,name,plan\n+15557000001,Dup,gold\n+15557000002,Ravi,silver\nnot-a-number,X,y\n";
    let from_csv: Value = app
        .client
        .post(app.url(&format!("/v1/campaigns/{id}/contacts")))
        .bearer_auth(&user.key)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!((from_json["accepted"].as_u64(), from_json["duplicates"].as_u64()), (Some(1), Some(1)));
    assert_eq!(from_json["rejected"][0]["line"], 2);
    assert_eq!((from_csv["accepted"].as_u64(), from_csv["duplicates"].as_u64()), (Some(1), Some(1)));
    assert_eq!(from_csv["rejected"][0]["line"], 4);
    assert_eq!(from_csv["rejected"][0]["value"], "not-a-number");
    let page: Value = app
        .client
        .get(app.url(&format!("/v1/campaigns/{id}/contacts")))
        .bearer_auth(&user.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"][1]["variables"]["plan"], "silver");
    assert_eq!(campaign(&app, &user, id).await["stats"]["total"], 2);
}

#[tokio::test]
async fn campaign_settings_are_validated_and_limited_by_the_users_campaign_slots() {
    let app = spawn_app().await;
    let user = app.create_user(2, 3).await;
    let bad = json!({"name": "", "agent_id": "x", "max_concurrency": 0, "timezone": "Mars/Base",
                     "window": {"days": ["someday"], "start": "9", "end": "17:00"}, "retry": {"on": ["sleepy"], "delay_seconds": -1, "max_attempts": 0}});
    let response =
        app.client.post(app.url("/v1/campaigns")).bearer_auth(&user.key).json(&bad).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<String> = response.json::<Value>().await.unwrap()["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    for expected in [
        "name",
        "agent_id",
        "timezone",
        "window.days",
        "window",
        "max_concurrency",
        "retry.on",
        "retry.delay_seconds",
        "retry.max_attempts",
    ] {
        assert!(fields.iter().any(|f| f == expected), "{expected} not in {fields:?}");
    }
    let too_many = app
        .client
        .post(app.url("/v1/campaigns"))
        .bearer_auth(&user.key)
        .json(&json!({"name": "Big", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 4}))
        .send()
        .await
        .unwrap();
    assert_eq!(too_many.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let created = create_campaign(
        &app,
        &user,
        json!({"name": "Ok", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 3}),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let patched: Value = app
        .client
        .patch(app.url(&format!("/v1/campaigns/{id}")))
        .bearer_auth(&user.key)
        .json(&json!({"calls_per_minute": 10}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((patched["calls_per_minute"].as_i64(), patched["name"].as_str()), (Some(10), Some("Ok")));
}
