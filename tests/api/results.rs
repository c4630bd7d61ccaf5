//! Results and spend: a campaign's report and export checked against figures worked out by hand,
//! the direct-call export, and usage grouped each way, through the API and the simulator.

use std::collections::BTreeMap;
use std::time::Duration;

use bolna_sim::{CallFault, FaultUpdate};
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::campaigns::{act, app_with_clock, at, create_campaign, post_contacts, wait_for_campaign};
use crate::helpers::{eventually, spawn_app, TestApp, TestUser};

async fn get(app: &TestApp, user: &TestUser, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(&user.key).send().await.unwrap()
}

/// The body of a 200 answer as text.
async fn text(app: &TestApp, user: &TestUser, path: &str) -> String {
    let response = get(app, user, path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.text().await.unwrap()
}

async fn problem(response: reqwest::Response, status: StatusCode, field: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains(field), "{body}");
}

/// CSV text as (header, rows keyed by header).
fn parse_csv(text: &str) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = reader
        .records()
        .map(|record| header.iter().cloned().zip(record.unwrap().iter().map(str::to_owned)).collect())
        .collect();
    (header, rows)
}

fn close(actual: &Value, expected: f64) {
    let actual = actual.as_f64().unwrap_or_else(|| panic!("{actual} is not a number"));
    assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
}

// The simulator's figures: a completed call talks 60 s and costs 60 × 0.086 = 5.16; a voicemail
// talks a quarter of that, 15 s, for 1.29; calls nobody answered have no talk time and no cost.
const TALK: f64 = 60.0;
const COST: f64 = 5.16;
const VOICEMAIL_TALK: f64 = 15.0;
const VOICEMAIL_COST: f64 = 1.29;

#[tokio::test]
async fn a_campaigns_report_and_export_match_figures_worked_out_by_hand_for_every_outcome() {
    let (app, clock) = app_with_clock(at("2026-09-01T10:00:00Z"), false).await;
    let user = app.create_user(2, 5).await;
    let n = |i: u32| format!("+1555600000{i}");
    // 1 completes (its own zone: Kolkata); 2 reaches voice mail twice (retried once, then
    // exhausted); 3 has no answer, then completes on its retry; 4 is busy and 5 fails (not
    // retried); 6 is on the do-not-call list; 7 completes.
    let fault = |status: &str| CallFault::Outcome { status: status.into() };
    app.sim.set_faults(FaultUpdate {
        by_recipient: Some(
            [
                (n(2), CallFault::Voicemail),
                (n(3), fault("no-answer")),
                (n(4), fault("busy")),
                (n(5), fault("failed")),
            ]
            .into(),
        ),
        ..FaultUpdate::default()
    });
    let dnc = app
        .client
        .post(app.url("/v1/dnc"))
        .bearer_auth(&user.key)
        .json(&json!({"phone_numbers": [n(6)]}))
        .send()
        .await
        .unwrap();
    assert_eq!(dnc.status(), StatusCode::OK);
    let created = create_campaign(
        &app,
        &user,
        json!({
            "name": "Renewals", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": 3,
            "timezone": "America/New_York",
            "retry": {"on": ["no-answer", "voicemail"], "delay_seconds": 300, "max_attempts": 2}
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let contacts: Vec<Value> = (1..=7)
        .map(|i| {
            let mut contact = json!({"phone_number": n(i), "name": format!("Contact {i}"),
                                     "variables": {"plan": if i == 1 { "gold" } else { "silver, \"basic\"" }}});
            if i == 1 {
                contact["timezone"] = json!("Asia/Kolkata");
                contact["variables"]["renewal_month"] = json!(9);
            }
            contact
        })
        .collect();
    assert_eq!(post_contacts(&app, &user, &id, &contacts).await["accepted"], 7);
    assert_eq!(act(&app, &user, &id, "start").await.status(), StatusCode::OK);

    // First attempts: 2 and 3 wait for their retry; then 3 will complete.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page =
            app.get_json_as(&user, &format!("/v1/campaigns/{id}/contacts?status=retry_scheduled")).await;
        let finished = app.sim.stats().final_statuses.values().sum::<u64>();
        if page["data"].as_array().unwrap().len() == 2 && finished == 6 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "first attempts never finished: {page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.sim.set_faults(FaultUpdate {
        by_recipient: Some(
            [(n(2), CallFault::Voicemail), (n(4), fault("busy")), (n(5), fault("failed"))].into(),
        ),
        ..FaultUpdate::default()
    });
    clock.advance(TimeDelta::seconds(301));
    wait_for_campaign(&app, &user, &id, "completed").await;

    let report = app.get_json_as(&user, &format!("/v1/campaigns/{id}/report")).await;
    let contacts = &report["contacts"];
    assert_eq!(contacts["total"], 7, "{report}");
    assert_eq!(
        contacts["by_status"],
        json!({"pending": 0, "in_progress": 0, "retry_scheduled": 0, "done": 5, "exhausted": 1,
               "skipped_dnc": 1, "canceled": 0}),
        "{report}"
    );
    assert_eq!(contacts["by_attempts"], json!({"0": 1, "1": 4, "2": 2}), "{report}");
    close(&contacts["average_attempts"], 8.0 / 6.0);
    let calls = &report["calls"];
    assert_eq!(calls["total"], 8, "{report}");
    assert_eq!(calls["finished"], 8);
    assert_eq!(calls["unfinished"], 0);
    assert_eq!(
        calls["by_outcome"],
        json!({"completed": 3, "voicemail": 2, "no-answer": 1, "busy": 1, "failed": 1}),
        "{report}"
    );
    assert_eq!(calls["connected"], 3);
    assert_eq!(calls["voicemail"], 2);
    close(&calls["connect_rate"], 3.0 / 8.0);
    close(&calls["voicemail_rate"], 2.0 / 8.0);
    let talk = 3.0 * TALK + 2.0 * VOICEMAIL_TALK;
    close(&report["talk_time"]["total_seconds"], talk);
    close(&report["talk_time"]["average_seconds"], talk / 5.0);
    let cost = 3.0 * COST + 2.0 * VOICEMAIL_COST;
    close(&report["cost"]["total"], cost);
    // Switchboard records no cost for a call nobody answered: the average is over the five others.
    assert_eq!(report["cost"]["calls_with_cost"], 5, "{report}");
    close(&report["cost"]["average_per_call"], cost / 5.0);

    // Calls by the hour of the contact's day, worked out from each call's own start time.
    let listed = app.get_json_as(&user, &format!("/v1/calls?campaign_id={id}&limit=100")).await;
    let mut hours = [0_i64; 24];
    let mut connected_hours = [0_i64; 24];
    for call in listed["data"].as_array().unwrap() {
        let zone: chrono_tz::Tz = if call["recipient_phone_number"] == n(1) {
            chrono_tz::Asia::Kolkata
        } else {
            chrono_tz::America::New_York
        };
        let started: DateTime<Utc> = call["started_at"].as_str().unwrap().parse().unwrap();
        let hour = started.with_timezone(&zone).hour() as usize;
        hours[hour] += 1;
        if call["status"] == "completed" && call["answered_by_voice_mail"] != true {
            connected_hours[hour] += 1;
        }
    }
    assert_eq!(hours.iter().sum::<i64>(), 8);
    let by_hour = report["calls_by_local_hour"].as_array().unwrap();
    assert_eq!(by_hour.len(), 24);
    for (hour, figures) in by_hour.iter().enumerate() {
        assert_eq!(figures["hour"], hour);
        assert_eq!(figures["calls"], hours[hour], "hour {hour}: {report}");
        assert_eq!(figures["connected"], connected_hours[hour], "hour {hour}: {report}");
    }

    // The export: one row per contact, parsed back by a CSV reader.
    let exported = text(&app, &user, &format!("/v1/campaigns/{id}/results.csv")).await;
    let (header, rows) = parse_csv(&exported);
    assert_eq!(
        header,
        [
            "phone_number",
            "name",
            "variables.plan",
            "variables.renewal_month",
            "status",
            "attempts",
            "last_outcome",
            "talk_time_seconds",
            "cost",
            "extracted_data.simulated",
            "recording_url",
            "last_call_id",
        ]
    );
    assert_eq!(rows.len(), 7);
    let row = |i: u32| rows.iter().find(|r| r["phone_number"] == n(i)).unwrap();
    assert_eq!(row(1)["variables.plan"], "gold");
    assert_eq!(row(1)["variables.renewal_month"], "9");
    assert_eq!(row(2)["variables.plan"], "silver, \"basic\"");
    assert_eq!(row(2)["variables.renewal_month"], "");
    let expected = [
        (1, "done", "1", "completed", TALK, COST),
        (2, "exhausted", "2", "voicemail", 2.0 * VOICEMAIL_TALK, 2.0 * VOICEMAIL_COST),
        (3, "done", "2", "completed", TALK, COST),
        (4, "done", "1", "busy", 0.0, 0.0),
        (5, "done", "1", "failed", 0.0, 0.0),
        (6, "skipped_dnc", "0", "do_not_call", 0.0, 0.0),
        (7, "done", "1", "completed", TALK, COST),
    ];
    for (i, status, attempts, outcome, talk, cost) in expected {
        let r = row(i);
        assert_eq!(
            (r["status"].as_str(), r["attempts"].as_str(), r["last_outcome"].as_str()),
            (status, attempts, outcome),
            "{r:?}"
        );
        assert!((r["talk_time_seconds"].parse::<f64>().unwrap() - talk).abs() < 1e-9, "{r:?}");
        assert!((r["cost"].parse::<f64>().unwrap() - cost).abs() < 1e-9, "{r:?}");
        assert_eq!(r["name"], format!("Contact {i}"));
    }
    assert_eq!(row(1)["extracted_data.simulated"], "true");
    assert!(row(1)["recording_url"].starts_with("https://"), "{:?}", row(1));
    assert!(row(6)["last_call_id"].is_empty() && row(6)["recording_url"].is_empty());
    let last_call = app.call_json(&user, &row(3)["last_call_id"]).await;
    assert_eq!(last_call["status"], "completed");

    // The same as JSON lines.
    let lines = text(&app, &user, &format!("/v1/campaigns/{id}/results.csv?format=jsonl")).await;
    let lines: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 7);
    let first = lines.iter().find(|l| l["phone_number"] == n(1)).unwrap();
    assert_eq!(first["variables"], json!({"plan": "gold", "renewal_month": 9}));
    assert_eq!(first["extracted_data"], json!({"simulated": true}));
    assert_eq!(first["attempts"], 1);

    // Another user's campaign is not found; bad input is named.
    let other = app.create_user(1, 1).await;
    problem(
        get(&app, &other, &format!("/v1/campaigns/{id}/report")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(
        get(&app, &other, &format!("/v1/campaigns/{id}/results.csv")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    problem(get(&app, &user, "/v1/campaigns/nope/report").await, StatusCode::UNPROCESSABLE_ENTITY, "id")
        .await;
    let xml = get(&app, &user, &format!("/v1/campaigns/{id}/results.csv?format=xml")).await;
    problem(xml, StatusCode::UNPROCESSABLE_ENTITY, "format").await;
}

#[tokio::test]
async fn usage_is_grouped_by_day_agent_campaign_and_call_type_and_direct_calls_export_by_range() {
    let app = spawn_app().await;
    let user = app.create_user(3, 5).await;
    let someone_else = app.create_user(1, 1).await;
    let (agent_a, agent_b) = (uuid::Uuid::new_v4().to_string(), uuid::Uuid::new_v4().to_string());
    let mut direct = Vec::new();
    for (i, agent) in [&agent_a, &agent_a, &agent_b].into_iter().enumerate() {
        let body = json!({"agent_id": agent, "recipient_phone_number": format!("+1555700000{i}")});
        let response = app.post_call(&user, &body).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let call: Value = response.json().await.unwrap();
        direct.push(call["id"].as_str().unwrap().to_owned());
    }
    let theirs = app
        .post_call(&someone_else, &json!({"agent_id": agent_a, "recipient_phone_number": "+15557000009"}))
        .await;
    let theirs: Value = theirs.json().await.unwrap();
    let agent_c = uuid::Uuid::new_v4().to_string();
    let campaign =
        create_campaign(&app, &user, json!({"name": "Two", "agent_id": agent_c, "max_concurrency": 2})).await;
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();
    let contacts = [json!({"phone_number": "+15557100001"}), json!({"phone_number": "+15557100002"})];
    post_contacts(&app, &user, &campaign_id, &contacts).await;
    act(&app, &user, &campaign_id, "start").await;
    for id in &direct {
        app.wait_for_status(&user, id, "completed").await;
    }
    app.wait_for_status(&someone_else, theirs["id"].as_str().unwrap(), "completed").await;
    wait_for_campaign(&app, &user, &campaign_id, "completed").await;
    eventually("every call finished", || app.sim.stats().final_statuses.values().sum::<u64>() == 6).await;
    // The agent-b call was made two days ago (history arranged in the table).
    sqlx::query("UPDATE calls SET created_at = created_at - interval '2 days' WHERE id = $1::uuid")
        .bind(&direct[2])
        .execute(&app.pool)
        .await
        .unwrap();

    let now = Utc::now();
    let range = format!(
        "from={}&to={}",
        (now - TimeDelta::days(3)).to_rfc3339(),
        (now + TimeDelta::minutes(5)).to_rfc3339()
    )
    .replace('+', "%2B");
    let usage = |group: &str| {
        let path = format!("/v1/usage?{range}&group_by={group}");
        let (app, user) = (&app, &user);
        async move { app.get_json_as(user, &path).await }
    };
    let figures = |calls: i64| json!({"calls": calls, "connected_calls": calls, "minutes": calls as f64, "cost": calls as f64 * COST});
    let groups = |report: &Value| -> BTreeMap<String, Value> {
        report["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let mut g = g.clone();
                let key = g["key"].as_str().unwrap_or("null").to_owned();
                g.as_object_mut().unwrap().remove("key");
                (key, g)
            })
            .collect()
    };
    let rounded = |groups: BTreeMap<String, Value>| -> BTreeMap<String, Value> {
        groups
            .into_iter()
            .map(|(k, mut v)| {
                let cost = (v["cost"].as_f64().unwrap() * 100.0).round() / 100.0;
                v["cost"] = json!(cost);
                (k, v)
            })
            .collect()
    };
    let expect = |pairs: &[(&str, i64)]| -> BTreeMap<String, Value> {
        pairs
            .iter()
            .map(|(k, n)| {
                let mut f = figures(*n);
                f["cost"] = json!((f["cost"].as_f64().unwrap() * 100.0).round() / 100.0);
                ((*k).to_owned(), f)
            })
            .collect()
    };

    let by_agent = usage("agent").await;
    assert_eq!(
        rounded(groups(&by_agent)),
        expect(&[(agent_a.as_str(), 2), (agent_b.as_str(), 1), (agent_c.as_str(), 2)]),
        "{by_agent}"
    );
    let total = &by_agent["total"];
    assert_eq!(
        (total["calls"].as_i64(), total["connected_calls"].as_i64()),
        (Some(5), Some(5)),
        "{by_agent}"
    );
    close(&total["minutes"], 5.0);
    close(&total["cost"], 5.0 * COST);
    let by_campaign = usage("campaign").await;
    assert_eq!(
        rounded(groups(&by_campaign)),
        expect(&[("null", 3), (campaign_id.as_str(), 2)]),
        "{by_campaign}"
    );
    let by_type = usage("call_type").await;
    assert_eq!(rounded(groups(&by_type)), expect(&[("campaign", 2), ("direct", 3)]), "{by_type}");
    // Days: each call's creation day, in UTC.
    let mut days: BTreeMap<String, i64> = BTreeMap::new();
    let listed = app.get_json_as(&user, "/v1/calls?limit=100").await;
    for call in listed["data"].as_array().unwrap() {
        let created: DateTime<Utc> = call["created_at"].as_str().unwrap().parse().unwrap();
        *days.entry(created.format("%Y-%m-%d").to_string()).or_default() += 1;
    }
    assert_eq!(days.len(), 2, "{listed}");
    let by_day = usage("day").await;
    let day_pairs: Vec<(&str, i64)> = days.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    assert_eq!(rounded(groups(&by_day)), expect(&day_pairs), "{by_day}");
    assert_eq!(by_day["group_by"], "day");

    // Operators: every user, or one.
    let admin = |path: String| {
        let app = &app;
        async move { app.admin(app.client.get(app.url(&path))).send().await.unwrap() }
    };
    let all: Value = admin(format!("/v1/admin/usage?{range}")).await.json().await.unwrap();
    assert_eq!(
        rounded(groups(&all)),
        expect(&[(user.id.as_str(), 5), (someone_else.id.as_str(), 1)]),
        "{all}"
    );
    let one: Value = admin(format!("/v1/admin/usage?{range}&user_id={}&group_by=call_type", someone_else.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rounded(groups(&one)), expect(&[("direct", 1)]), "{one}");
    assert_eq!(admin("/v1/admin/usage".into()).await.status(), StatusCode::OK);
    let no_token = app.client.get(app.url("/v1/admin/usage")).bearer_auth(&user.key).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);

    // Bad input is named.
    problem(get(&app, &user, "/v1/usage?group_by=user").await, StatusCode::UNPROCESSABLE_ENTITY, "group_by")
        .await;
    problem(get(&app, &user, "/v1/usage?from=yesterday").await, StatusCode::UNPROCESSABLE_ENTITY, "from")
        .await;
    let theirs_path = format!("/v1/usage?user_id={}", someone_else.id);
    problem(get(&app, &user, &theirs_path).await, StatusCode::BAD_REQUEST, "user_id").await;
    // A range that ends before it starts is empty, not an error.
    let backwards =
        app.get_json_as(&user, "/v1/usage?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z").await;
    assert_eq!(
        (backwards["groups"].clone(), backwards["total"]["calls"].clone()),
        (json!([]), json!(0)),
        "{backwards}"
    );

    // The direct-call export: this user's direct calls only, oldest first, by range.
    let (header, rows) = parse_csv(&text(&app, &user, "/v1/calls/export").await);
    assert_eq!(header[..3], ["id", "created_at", "agent_id"]);
    assert_eq!(header.last().unwrap(), "extracted_data.simulated");
    let ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [direct[2].as_str(), direct[0].as_str(), direct[1].as_str()]);
    for row in &rows {
        assert_eq!(
            (row["status"].as_str(), row["outcome"].as_str(), row["cost"].as_str()),
            ("completed", "completed", "5.16")
        );
        assert_eq!(row["talk_time_seconds"], "60");
    }
    let since = (now - TimeDelta::days(1)).to_rfc3339().replace('+', "%2B");
    let recent = text(&app, &user, &format!("/v1/calls/export?from={since}&format=jsonl")).await;
    let recent: Vec<Value> = recent.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let recent_ids: Vec<&str> = recent.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(recent_ids, [direct[0].as_str(), direct[1].as_str()]);
    assert_eq!(recent[0]["extracted_data"], json!({"simulated": true}));
    problem(get(&app, &user, "/v1/calls/export?to=soon").await, StatusCode::UNPROCESSABLE_ENTITY, "to").await;
}
