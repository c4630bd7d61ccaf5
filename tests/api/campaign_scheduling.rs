//! The campaign scheduler's work follows what is due (issue 18): contacts in a closed zone never
//! hold back contacts in an open one, the next-due instants stay right across daylight-saving
//! changes, midnight-crossing windows and window edits, a full campaign is not looked at until
//! one of its calls frees a line, and two instances share the work.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::campaigns::{act, app_with_clock, at, campaign, create_campaign, numbers, wait_for_campaign};
use crate::helpers::{eventually, spawn_app, spawn_instance, TestApp, TestUser};

/// A counter from the instance's `/metrics`.
async fn counter(app: &TestApp, name: &str) -> u64 {
    app.metric(name).await as u64
}

async fn add_zoned(app: &TestApp, user: &TestUser, id: &str, numbers: &[String], zone: &str) {
    for chunk in numbers.chunks(1_000) {
        let contacts: Vec<Value> =
            chunk.iter().map(|n| json!({"phone_number": n, "timezone": zone})).collect();
        let response = app
            .client
            .post(app.url(&format!("/v1/campaigns/{id}/contacts")))
            .bearer_auth(&user.key)
            .json(&json!({"contacts": contacts}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["accepted"].as_u64(), Some(chunk.len() as u64), "{body}");
    }
}

/// The campaign's zones and their periods.
async fn periods(pool: &PgPool, campaign: &str) -> Vec<(String, DateTime<Utc>, Option<DateTime<Utc>>)> {
    sqlx::query_as(
        "SELECT zone, opens, closes FROM campaign_zones WHERE campaign_id = $1::uuid ORDER BY zone",
    )
    .bind(campaign)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn weekdays_nine_to_five() -> Value {
    json!({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"})
}

#[tokio::test]
async fn open_zone_contacts_are_dialled_in_one_visit_behind_thousands_whose_zone_closed() {
    // Wednesday 2026-09-02 20:00 UTC: 15:00 in Bogota (open), 01:30 Thursday in Kolkata (closed).
    let (app, clock) = app_with_clock(at("2026-09-02T20:00:00Z"), true).await;
    let user = app.create_user(2, 5).await;
    let created = create_campaign(&app, &user, json!({
        "name": "Zones", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 5, "window": weekdays_nine_to_five()
    }))
    .await;
    let id = created["id"].as_str().unwrap();
    // 2,500 contacts in Bogota, due from now (their window is open) and so ahead of anything added
    // later: more than any batch the scheduler or the upload uses.
    let bogota = numbers("5730010", 2_500);
    add_zoned(&app, &user, id, &bogota, "America/Bogota").await;

    // Thursday 05:00 UTC: 00:00 in Bogota (closed since 22:00 UTC), 10:30 in Kolkata (open).
    clock.set(at("2026-09-03T05:00:00Z"));
    let kolkata = numbers("9198100", 5);
    add_zoned(&app, &user, id, &kolkata, "Asia/Kolkata").await;
    let (visits, rearmed) = (
        counter(&app, "switchboard_campaign_visits_total").await,
        counter(&app, "switchboard_campaign_zones_rearmed_total").await,
    );
    act(&app, &user, id, "start").await;

    eventually("the five Kolkata contacts", || app.sim.stats().accepted == 5).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stats = app.sim.stats();
    assert_eq!(stats.accepted, 5, "nobody in Bogota, at midnight there");
    assert!(kolkata.iter().all(|n| stats.executions_by_recipient.contains_key(n)));
    // One visit moved Bogota's zone (not its 2,500 contacts) to its next opening and dialled
    // Kolkata; the campaign, now full (held calls free no line), was not visited again.
    assert_eq!(counter(&app, "switchboard_campaign_visits_total").await - visits, 1);
    assert_eq!(counter(&app, "switchboard_campaign_zones_rearmed_total").await - rearmed, 1);
    // Thursday 09:00 in Bogota (UTC-5) = 14:00 UTC, until 22:00 UTC; Kolkata open until 11:30 UTC.
    assert_eq!(
        periods(&app.pool, id).await,
        vec![
            ("America/Bogota".to_owned(), at("2026-09-03T14:00:00Z"), Some(at("2026-09-03T22:00:00Z"))),
            ("Asia/Kolkata".to_owned(), at("2026-09-03T03:30:00Z"), Some(at("2026-09-03T11:30:00Z"))),
        ]
    );
    let waiting: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM campaign_contacts WHERE campaign_id = $1::uuid AND status = 'pending'",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(waiting, 2_500);
}

#[tokio::test]
async fn next_due_instants_follow_daylight_saving_midnight_crossing_windows_and_window_edits() {
    // Friday 2026-03-06 22:00 UTC: 17:00 in New York (EST), just closed; 03:30 Saturday in Kolkata.
    let (app, clock) = app_with_clock(at("2026-03-06T22:00:00Z"), true).await;
    let user = app.create_user(2, 5).await;
    let created = create_campaign(
        &app,
        &user,
        json!({
            "name": "Instants", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 2,
            "timezone": "America/New_York", "window": weekdays_nine_to_five()
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap();
    let new_york = "+15552100001".to_owned();
    let kolkata = "+919812100002".to_owned();
    add_zoned(&app, &user, id, std::slice::from_ref(&kolkata), "Asia/Kolkata").await;
    let response = app
        .client
        .post(app.url(&format!("/v1/campaigns/{id}/contacts")))
        .bearer_auth(&user.key)
        .json(&json!({"contacts": [{"phone_number": new_york}]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());

    // New York (the campaign's zone, '') springs forward on Sunday the 8th: Monday 09:00 EDT is
    // 13:00 UTC, not 14:00. Kolkata: Monday 09:00 IST = 03:30 UTC.
    assert_eq!(
        periods(&app.pool, id).await,
        vec![
            ("".to_owned(), at("2026-03-09T13:00:00Z"), Some(at("2026-03-09T21:00:00Z"))),
            ("Asia/Kolkata".to_owned(), at("2026-03-09T03:30:00Z"), Some(at("2026-03-09T11:30:00Z"))),
        ]
    );

    // A window edit moves every zone: Saturday nights, 22:00 to 02:00 (crossing midnight).
    let edited = app
        .client
        .patch(app.url(&format!("/v1/campaigns/{id}")))
        .bearer_auth(&user.key)
        .json(&json!({"window": {"days": ["sat"], "start": "22:00", "end": "02:00"}}))
        .send()
        .await
        .unwrap();
    assert!(edited.status().is_success(), "{}", edited.text().await.unwrap());
    assert_eq!(
        periods(&app.pool, id).await,
        vec![
            // Saturday 22:00 EST (UTC-5) = Sunday 03:00 UTC, to Sunday 02:00 EST = 07:00 UTC (the
            // change to EDT comes at 02:00 local, the moment this period closes).
            ("".to_owned(), at("2026-03-08T03:00:00Z"), Some(at("2026-03-08T07:00:00Z"))),
            // Saturday 22:00 IST = 16:30 UTC, to Sunday 02:00 IST = 20:30 UTC.
            ("Asia/Kolkata".to_owned(), at("2026-03-07T16:30:00Z"), Some(at("2026-03-07T20:30:00Z"))),
        ]
    );

    // Running: Kolkata's period comes first; New York's contact waits for its own.
    act(&app, &user, id, "start").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.sim.stats().accepted, 0, "Friday night: no Saturday window open yet");
    clock.set(at("2026-03-07T16:31:00Z"));
    eventually("the Kolkata contact", || app.sim.stats().executions_by_recipient.contains_key(&kolkata))
        .await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!app.sim.stats().executions_by_recipient.contains_key(&new_york));
    // After Kolkata's window closed and before New York's opened: still nothing for New York.
    clock.set(at("2026-03-08T01:00:00Z"));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!app.sim.stats().executions_by_recipient.contains_key(&new_york));
    clock.set(at("2026-03-08T03:00:00Z"));
    eventually("the New York contact", || app.sim.stats().executions_by_recipient.contains_key(&new_york))
        .await;
    assert_eq!(campaign(&app, &user, id).await["stats"]["in_progress"], 2);
}

#[tokio::test]
async fn a_full_campaign_is_woken_by_a_line_freed_on_another_instance_and_never_exceeds_its_concurrency() {
    // Webhooks reach the first instance; the campaign is started on the second. Each freed line
    // wakes the campaign in the webhook's transaction, whichever instance then visits it.
    let first = spawn_app().await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), |_| {}).await;
    let user = first.create_user(2, 10).await;
    let agent = uuid::Uuid::new_v4().to_string();
    let created =
        create_campaign(&first, &user, json!({"name": "Wake", "agent_id": agent, "max_concurrency": 2}))
            .await;
    let id = created["id"].as_str().unwrap();
    add_zoned(&first, &user, id, &numbers("555810", 16), "UTC").await;

    act(&second, &user, id, "start").await;
    let done = wait_for_campaign(&first, &user, id, "completed").await;

    assert_eq!(done["stats"]["done"], 16);
    let stats = first.sim.stats();
    assert_eq!(stats.accepted, 16);
    assert!(stats.double_dials().is_empty(), "{:?}", stats.double_dials());
    assert!(stats.open_by_agent_high_water[&agent] <= 2, "{:?}", stats.open_by_agent_high_water);
    // Visits followed the work: about one per freed line and per ended call, not one per pass.
    let visits = counter(&first, "switchboard_campaign_visits_total").await
        + counter(&second, "switchboard_campaign_visits_total").await;
    assert!(visits <= 16 * 3 + 2, "{visits} visits for 16 calls");
}
