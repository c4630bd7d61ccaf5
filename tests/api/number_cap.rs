//! The per-number cap (`limits.max_calls_per_number_per_day`, or the user's own figure): raced by
//! concurrent requests on two instances it admits exactly the cap; a campaign contact over it
//! waits instead of failing; the user's own figure overrides the configured one.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::campaigns::{act, create_campaign, post_contacts};
use crate::helpers::{eventually, spawn_app_with, spawn_instance, TestApp, TestUser};

async fn set_cap(app: &TestApp, user: &TestUser, cap: Value) -> Value {
    let response = app
        .admin(app.client.patch(app.url(&format!("/v1/admin/users/{}", user.id))))
        .json(&json!({ "max_calls_per_number_per_day": cap }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap_or_else(|| panic!("{value} is not a time")))
        .unwrap()
        .with_timezone(&Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_calls_to_one_number_on_two_instances_admit_exactly_the_cap() {
    const CAP: i64 = 5;
    const REQUESTS: usize = 20;
    let first = spawn_app_with(|_| {}, |_| {}).await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), |_| {}).await;
    let user = first.create_user(2, 0).await;
    let updated = set_cap(&first, &user, json!(CAP)).await;
    assert_eq!(updated["max_calls_per_number_per_day"], CAP, "{updated}");

    let number = "+15557000001";
    let body = json!({"agent_id": uuid::Uuid::new_v4(), "recipient_phone_number": number});
    let requests = (0..REQUESTS).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        app.post_call(&user, &body)
    });
    let responses = futures::future::join_all(requests).await;
    let mut admitted = 0;
    let mut capped = Vec::new();
    for response in responses {
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        match status.as_u16() {
            201 | 202 => admitted += 1,
            422 => {
                assert_eq!(body["code"], "number_call_cap", "{body}");
                capped.push(body);
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(admitted, CAP, "exactly the cap was admitted");
    assert_eq!(capped.len(), REQUESTS - CAP as usize);
    // Under the cap again when the oldest of the five leaves the 24 hours.
    let oldest: DateTime<Utc> =
        sqlx::query_scalar("SELECT min(created_at) FROM calls WHERE recipient_phone_number = $1")
            .bind(number)
            .fetch_one(&first.pool)
            .await
            .unwrap();
    for problem in &capped {
        let retry_at = time(&problem["retry_at"]);
        assert!((retry_at - (oldest + TimeDelta::hours(24))).num_milliseconds().abs() <= 1, "{problem}");
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE recipient_phone_number = $1")
        .bind(number)
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert_eq!(stored, CAP);
    // Another number is not capped by this one.
    let other = json!({"agent_id": uuid::Uuid::new_v4(), "recipient_phone_number": "+15557000002"});
    assert!(second.post_call(&user, &other).await.status().is_success());
    // The five go to Bolna (two slots, three queued behind them) and nobody else does.
    eventually("the capped number's five calls were all dialled", || {
        first.sim.stats().executions_by_recipient.get(number).copied() == Some(CAP as u32)
    })
    .await;

    // Back to the configured figure (none here), the number takes calls again.
    set_cap(&first, &user, Value::Null).await;
    assert!(first.post_call(&user, &body).await.status().is_success());
    let cleared = set_cap(&first, &user, json!(0)).await;
    assert_eq!(cleared["max_calls_per_number_per_day"], 0, "{cleared}");
}

#[tokio::test]
async fn a_canceled_queued_call_does_not_count_and_a_replay_is_answered_over_the_cap() {
    let app =
        spawn_app_with(|s| s.limits.max_calls_per_number_per_day = 1, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 0).await;
    let agent = uuid::Uuid::new_v4();
    // The one slot is held by a call to another number, so the next call queues.
    let blocker = app.start_call(&user, "+15557100000", 201).await;
    let number = "+15557100001";
    let body = json!({"agent_id": agent, "recipient_phone_number": number});
    let request = |key: &'static str| {
        app.client
            .post(app.url("/v1/calls"))
            .bearer_auth(&user.key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let queued = request("first").await.unwrap();
    assert_eq!(queued.status(), StatusCode::ACCEPTED);
    let queued: Value = queued.json().await.unwrap();
    // The same request again is its replay, not a second call over the cap.
    let replay = request("first").await.unwrap();
    assert!(replay.status().is_success(), "{}", replay.status());
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], queued["id"]);
    let over = request("second").await.unwrap();
    assert_eq!(over.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let over: Value = over.json().await.unwrap();
    assert_eq!(over["code"], "number_call_cap", "{over}");
    assert!(over["detail"].as_str().unwrap().contains("24 hours"), "{over}");

    // Canceled before it reached Bolna, the queued call no longer counts.
    let canceled = app.cancel_call(&user, queued["id"].as_str().unwrap()).await;
    assert_eq!(canceled.status(), StatusCode::OK);
    let third = request("third").await.unwrap();
    assert_eq!(third.status(), StatusCode::ACCEPTED, "the cap has room again");
    assert!(blocker["id"].is_string());
}

#[tokio::test]
async fn a_campaign_contact_at_the_cap_waits_until_it_is_under_it_instead_of_failing() {
    let app = spawn_app_with(|s| s.limits.max_calls_per_number_per_day = 1, |_| {}).await;
    let user = app.create_user(2, 5).await;
    let capped = "+15557200001";
    let free = "+15557200002";
    let direct = app.start_call(&user, capped, 201).await;
    let direct_created = time(&direct["created_at"]);

    let campaign = create_campaign(
        &app,
        &user,
        json!({"name": "Capped", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 2}),
    )
    .await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let contacts = [json!({"phone_number": capped}), json!({"phone_number": free})];
    assert_eq!(post_contacts(&app, &user, &id, &contacts).await["accepted"], 2);
    assert_eq!(act(&app, &user, &id, "start").await.status(), StatusCode::OK);

    eventually("the free number was called", || {
        app.sim.stats().executions_by_recipient.get(free).copied() == Some(1)
    })
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let contact = loop {
        let page = app.get_json_as(&user, &format!("/v1/campaigns/{id}/contacts")).await;
        let contact = page["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|contact| contact["phone_number"] == capped)
            .cloned()
            .unwrap();
        if !contact["next_attempt_at"].is_null() {
            break contact;
        }
        assert!(std::time::Instant::now() < deadline, "the capped contact was never deferred: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(contact["status"], "pending", "{contact}");
    assert_eq!(contact["attempts"], 0, "deferring uses no attempt: {contact}");
    let next = time(&contact["next_attempt_at"]);
    assert!(
        (next - (direct_created + TimeDelta::hours(24))).num_milliseconds().abs() <= 1,
        "due when the direct call leaves the 24 hours: {contact}"
    );
    assert_eq!(app.sim.stats().executions_by_recipient.get(capped).copied(), Some(1), "dialled once");
    assert!(app.metric("switchboard_campaign_contacts_deferred_by_number_cap_total").await >= 1.0);
    let shown = app.get_json_as(&user, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(shown["status"], "running", "the campaign waits for its contact: {shown}");
}
