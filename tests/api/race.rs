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
    assert_eq!(ids.len(), USERS * CALLS_PER_USER);

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
