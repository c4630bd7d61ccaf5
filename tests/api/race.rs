//! Invariant 1 under fire: hundreds of concurrent call requests for several users through two
//! application instances on one database. The simulator watches, live, how many calls each user
//! (one agent per user) and the whole account have open at Bolna at any instant.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, spawn_instance, TestUser};

const USERS: usize = 6;
const CALLS_PER_USER: usize = 40;
const ACCOUNT_LIMIT: u32 = 7;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hundreds_of_racing_calls_on_two_instances_never_exceed_any_limit_and_all_end() {
    let first = spawn_app_with(
        |s| s.limits.account_max_concurrent = ACCOUNT_LIMIT,
        |sim| sim.account_concurrency = 50,
    )
    .await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), |s| {
        s.limits.account_max_concurrent = ACCOUNT_LIMIT
    })
    .await;
    let mut users: Vec<(TestUser, u32, String)> = Vec::new();
    for n in 0..USERS {
        let limit = 1 + (n % 3) as u32;
        let agent = uuid::Uuid::new_v4().to_string();
        users.push((first.create_user(i64::from(limit), 0).await, limit, agent));
    }

    let mut plan = Vec::new();
    for (u, (user, _, agent)) in users.iter().enumerate() {
        for n in 0..CALLS_PER_USER {
            // Spread each user's calls over both instances.
            let app = if (u + n) % 2 == 0 { &first } else { &second };
            let body = json!({"agent_id": agent, "recipient_phone_number": format!("+1555{u:03}{n:04}")});
            plan.push((app, user, body));
        }
    }
    let responses =
        futures::future::join_all(plan.iter().map(|(app, user, body)| app.post_call(user, body))).await;

    let mut ids = Vec::new();
    for response in responses {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert!(status == 201 || status == 202, "{status}: {body}");
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), USERS * CALLS_PER_USER, "every request made its own call");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let open: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM calls WHERE status NOT IN ('completed','no-answer','busy','failed','canceled','stopped','error','balance-low')",
        )
        .fetch_one(&first.pool)
        .await
        .unwrap();
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} calls still not terminal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stats = first.sim.stats();
    let limits: HashMap<&str, u32> = users.iter().map(|(_, limit, agent)| (agent.as_str(), *limit)).collect();
    for (agent, high) in &stats.open_by_agent_high_water {
        let limit = limits[agent.as_str()];
        assert!(*high <= limit, "agent {agent}: {high} open at once, limit {limit}");
    }
    assert!(stats.open_high_water <= ACCOUNT_LIMIT, "account: {} open at once", stats.open_high_water);
    assert_eq!(stats.open_high_water, ACCOUNT_LIMIT, "the account limit was actually reached");
    assert!(stats.double_dials().is_empty(), "nobody dialled twice: {:?}", stats.double_dials());
    assert_eq!(stats.accepted as usize, USERS * CALLS_PER_USER);
    let completed: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE status = 'completed'")
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert_eq!(completed as usize, USERS * CALLS_PER_USER);
    first.wait_for_no_slots().await;
}

/// A value of the Prometheus text at `/metrics`.
async fn metric(app: &crate::helpers::TestApp, name: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_admitted_in_batches_keeps_each_users_limit_its_fifo_order_and_one_call_per_key() {
    // One batch in flight at a time: the burst queues behind it and goes in large batches.
    let app = spawn_app_with(|s| s.database.batch_workers = 1, |sim| sim.hold_calls = true).await;
    const LIMIT: usize = 3;
    const PER_USER: usize = 15;
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(app.create_user(LIMIT as i64, 0).await);
    }
    let keyed = crate::helpers::call_body("+15550004242");
    let mut bodies = Vec::new();
    for n in 0..PER_USER {
        for (u, user) in users.iter().enumerate() {
            let number = format!("+1555{u:03}{n:04}");
            bodies.push((user, json!({"agent_id": crate::helpers::AGENT, "recipient_phone_number": number})));
        }
    }
    let requests = bodies.iter().map(|(user, body)| app.post_call(user, body));
    let same_key = (0..10).map(|_| app.post_call_with_key(&users[0], &keyed, "one-key-in-a-burst"));
    let (responses, keyed_responses) =
        tokio::join!(futures::future::join_all(requests), futures::future::join_all(same_key));
    for response in responses {
        assert!(matches!(response.status().as_u16(), 201 | 202), "{}", response.status());
    }
    let mut keyed_ids = Vec::new();
    for response in keyed_responses {
        assert!(response.status().is_success(), "{}", response.status());
        keyed_ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    keyed_ids.dedup();
    assert_eq!(keyed_ids.len(), 1, "ten requests with one key made one call");

    for user in &users {
        // In admission order: who got a slot, who waits.
        let calls: Vec<(bool, bool)> = sqlx::query_as(
            "SELECT bolna_execution_id IS NOT NULL, status = 'queued' AND bolna_execution_id IS NULL
             FROM calls WHERE user_id = $1::uuid ORDER BY created_at, id",
        )
        .bind(&user.id)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let started = calls.iter().filter(|(started, _)| *started).count();
        assert_eq!(started, LIMIT, "user {}: {started} calls hold slots", user.id);
        assert!(
            calls[..LIMIT].iter().all(|(started, _)| *started),
            "the first calls got the slots: {calls:?}"
        );
        assert!(calls[LIMIT..].iter().all(|(_, waiting)| *waiting), "the later ones wait: {calls:?}");
    }
    assert_eq!(app.held_slots().await, (users.len() * LIMIT) as i64);
    let (batches, admitted) = (
        metric(&app, "switchboard_db_batch_size_count{kind=\"admit\"}").await,
        metric(&app, "switchboard_db_batch_size_sum{kind=\"admit\"}").await,
    );
    assert!(admitted > batches, "admissions went in batches: {admitted} in {batches} statements");
}

/// Two instances on one database and one simulator, the simulator's webhooks going to the first.
async fn two_instances() -> (crate::helpers::TestApp, crate::helpers::TestApp) {
    let first = spawn_app_with(|_| {}, |_| {}).await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), |_| {}).await;
    first.route_webhooks_here();
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_made_on_two_instances_reach_bolna_in_the_order_they_were_made() {
    let (first, second) = two_instances().await;
    // One slot: every call but the first waits, and each reaches Bolna only after the one before
    // it freed the line — so the simulator's acceptance order is the queue's order. Hand-over
    // runs on the instance that got the webhook, the dispatcher on both.
    let user = first.create_user(1, 0).await;
    let numbers: Vec<String> = (0..10).map(|n| format!("+1555777{n:04}")).collect();
    let mut ids = Vec::new();
    for (n, number) in numbers.iter().enumerate() {
        let app = if n % 2 == 0 { &first } else { &second };
        let response = app.post_call(&user, &crate::helpers::call_body(number)).await;
        assert!(matches!(response.status().as_u16(), 201 | 202), "{}", response.status());
        ids.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while first.sim.stats().final_statuses.values().sum::<u64>() < numbers.len() as u64 {
        assert!(Instant::now() < deadline, "not every call ended: {:?}", first.sim.stats().final_statuses);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    crate::helpers::assert_placed_once_in_order(&first.sim.stats(), &numbers, 1);
    first.wait_for_no_slots().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_idempotency_key_raced_on_two_instances_makes_one_call_dialled_once() {
    let (first, second) = two_instances().await;
    let user = first.create_user(2, 0).await;
    let body = crate::helpers::call_body("+15557770999");
    let requests = (0..20).map(|n| {
        let app = if n % 2 == 0 { &first } else { &second };
        app.post_call_with_key(&user, &body, "raced-on-two-instances")
    });

    let responses = futures::future::join_all(requests).await;

    let mut ids = std::collections::HashSet::new();
    for response in responses {
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        assert!(matches!(status, 201 | 202), "{status}: {answer}");
        ids.insert(answer["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "twenty requests with one key made one call: {ids:?}");
    let other = crate::helpers::call_body("+15557770998");
    let conflict = second.post_call_with_key(&user, &other, "raced-on-two-instances").await;
    assert_eq!(conflict.status().as_u16(), 409, "the key with another request");
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls").fetch_one(&first.pool).await.unwrap();
    assert_eq!(calls, 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while first.sim.stats().accepted == 0 {
        assert!(Instant::now() < deadline, "the call never reached Bolna");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first.sim.stats().call_requests, 1, "dialled once");
}
