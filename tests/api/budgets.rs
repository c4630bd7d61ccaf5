//! Budgets: a user's monthly budget and a campaign's budget stop new calls from going to Bolna —
//! a direct call answers 422, a queued call stays queued, a campaign pauses with its reason — and
//! a campaign stopped mid-way overshoots its budget by less than the documented bound.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::campaigns::{act, add_contacts, create_campaign, numbers, wait_for_campaign};
use crate::helpers::{eventually, spawn_app_with, TestApp, TestUser};

// A completed call of the simulator costs 5.16 (60 s at 0.086 a second).
const COST: f64 = 5.16;

async fn set_budget(app: &TestApp, user: &TestUser, budget: Value) -> Value {
    let response = app
        .admin(app.client.patch(app.url(&format!("/v1/admin/users/{}", user.id))))
        .json(&json!({ "monthly_budget": budget }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn hang_up(app: &TestApp, execution: &str) {
    let response = app
        .client
        .post(format!("{}/_sim/executions/{execution}/hangup", app.sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn a_spent_monthly_budget_refuses_direct_calls_and_keeps_queued_ones_queued_until_it_is_raised() {
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(1, 0).await;
    let shown = set_budget(&app, &user, json!(100)).await;
    assert_eq!(shown["monthly_budget"], 100.0, "{shown}");

    let live = app.start_call(&user, "+15558000001", 201).await;
    let queued = app.start_call(&user, "+15558000002", 202).await;
    let queued_id = queued["id"].as_str().unwrap();
    // The operator lowers the budget to nothing while a call is live and another waits.
    set_budget(&app, &user, json!(0)).await;

    let refused = app.post_call(&user, &crate::helpers::call_body("+15558000003")).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["code"], "budget_exhausted", "{refused}");
    assert_eq!(refused["budget"], "user", "{refused}");

    // The live call ends and frees its slot: the queued call does not take it.
    hang_up(&app, live["bolna_execution_id"].as_str().unwrap()).await;
    app.wait_for_status(&user, live["id"].as_str().unwrap(), "completed").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // three dispatcher ticks
    let still = app.call_json(&user, queued_id).await;
    assert_eq!(still["status"], "queued", "{still}");
    assert_eq!(app.sim.stats().accepted, 1, "nothing more went to Bolna");

    // A budget lifted (null: none) lets it start at once.
    set_budget(&app, &user, Value::Null).await;
    app.wait_for_call(&user, queued_id, "the queued call to start", |c| c["bolna_execution_id"].is_string())
        .await;
}

#[tokio::test]
async fn a_campaign_that_reaches_its_budget_pauses_with_its_reason_within_the_documented_overshoot() {
    const CONCURRENCY: i64 = 2;
    const BUDGET: f64 = 12.0;
    let app = spawn_app_with(|_| {}, |_| {}).await;
    let user = app.create_user(1, 5).await;
    let created = create_campaign(
        &app,
        &user,
        json!({"name": "Budgeted", "agent_id": uuid::Uuid::new_v4(), "max_concurrency": CONCURRENCY,
               "budget": BUDGET}),
    )
    .await;
    assert_eq!(created["budget"], BUDGET, "{created}");
    assert!(created["pause_reason"].is_null(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    add_contacts(&app, &user, &id, &numbers("5558100", 10)).await;
    assert_eq!(act(&app, &user, &id, "start").await.status(), StatusCode::OK);

    let paused = wait_for_campaign(&app, &user, &id, "paused").await;
    assert_eq!(paused["pause_reason"], "budget_exhausted", "{paused}");
    // Its calls finish; then what they cost is final.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (calls, spent) = loop {
        let (calls, awaiting, spent): (i64, i64, f64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE total_cost IS NULL AND NOT call_status_is_terminal(status)),
                    coalesce(sum(total_cost), 0)
               FROM calls WHERE campaign_id = $1::uuid",
        )
        .bind(&id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        if awaiting == 0 {
            break (calls, spent);
        }
        assert!(std::time::Instant::now() < deadline, "{awaiting} calls still live");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(spent >= BUDGET, "it stopped because the budget was reached: {spent}");
    // The bound: the calls live at the last admission (at most max_concurrency) cost beyond their
    // estimate, each less than the costliest call.
    assert!(spent - BUDGET <= CONCURRENCY as f64 * COST, "overshoot {} over the bound", spent - BUDGET);
    assert!(calls < 10, "paused mid-campaign, not at its end: {calls} calls");
    assert_eq!(app.sim.stats().accepted as i64, calls);
    let pending = app.get_json_as(&user, &format!("/v1/campaigns/{id}/contacts?status=pending")).await;
    assert!(!pending["data"].as_array().unwrap().is_empty(), "contacts wait: {pending}");

    // The pause is an event with its reason.
    let event: Option<String> = sqlx::query_scalar(
        "SELECT status FROM events WHERE kind = 'campaign.updated' AND subject_id = $1::uuid AND status = 'paused'",
    )
    .bind(&id)
    .fetch_optional(&app.pool)
    .await
    .unwrap();
    assert_eq!(event.as_deref(), Some("paused"));
    assert!(app.metric("switchboard_campaigns_paused_by_budget_total").await >= 1.0);

    // Resumed with the budget still spent, it pauses again before dialling anyone.
    assert_eq!(act(&app, &user, &id, "resume").await.status(), StatusCode::OK);
    let again = wait_for_campaign(&app, &user, &id, "paused").await;
    assert_eq!(again["pause_reason"], "budget_exhausted", "{again}");
    assert_eq!(app.sim.stats().accepted as i64, calls, "nobody more was called");

    // A higher budget, and it goes on; a pause by hand says so.
    let raised = app
        .client
        .patch(app.url(&format!("/v1/campaigns/{id}")))
        .bearer_auth(&user.key)
        .json(&json!({"budget": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(raised.status(), StatusCode::OK);
    assert_eq!(act(&app, &user, &id, "resume").await.status(), StatusCode::OK);
    eventually("more contacts were called", || app.sim.stats().accepted as i64 > calls).await;
    let by_hand = act(&app, &user, &id, "pause").await;
    assert_eq!(by_hand.status(), StatusCode::OK);
    assert_eq!(by_hand.json::<Value>().await.unwrap()["pause_reason"], "user");
}

#[tokio::test]
async fn budgets_are_validated() {
    let app = spawn_app_with(|_| {}, |_| {}).await;
    let user = app.create_user(1, 5).await;
    for bad in [json!(-1), json!(1e12), json!("ten")] {
        let response = app
            .admin(app.client.patch(app.url(&format!("/v1/admin/users/{}", user.id))))
            .json(&json!({ "monthly_budget": bad }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let campaign = app
            .client
            .post(app.url("/v1/campaigns"))
            .bearer_auth(&user.key)
            .json(&json!({"name": "x", "agent_id": "a", "max_concurrency": 1, "budget": bad}))
            .send()
            .await
            .unwrap();
        assert_eq!(campaign.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }
    // Left out, a PATCH keeps the budget.
    set_budget(&app, &user, json!(25.5)).await;
    let kept = app
        .admin(app.client.patch(app.url(&format!("/v1/admin/users/{}", user.id))))
        .json(&json!({ "direct_call_limit": 2 }))
        .send()
        .await
        .unwrap();
    assert_eq!(kept.json::<Value>().await.unwrap()["monthly_budget"], 25.5);
}
