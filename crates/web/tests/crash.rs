//! Real processes, real kills. `switchboard serve` runs as a child process against a test database
//! and an in-process Bolna simulator. To see the server's logs when diagnosing, set
//! `CRASH_LOG=info` and `CRASH_LOG_FILE=/path/to/server.log`.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bolna_sim::{CallFault, FaultUpdate, OutcomeMix, SimConfig, Simulator, WebhookFaults, WebhookTarget};
use serde_json::{json, Value};
use sqlx::PgPool;

const ADMIN: &str = "crash-admin";
const TOKEN: &str = "crash-webhook";

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(database_url: &str, sim: &Simulator, port: u16) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("serve")
            .env_remove("DATABASE_URL")
            .env("SWITCHBOARD__DATABASE__URL", database_url)
            .env("SWITCHBOARD__SERVER__PORT", port.to_string())
            .env("SWITCHBOARD__BOLNA__BASE_URL", sim.base_url())
            .env("SWITCHBOARD__BOLNA__API_KEY", "k")
            .env("SWITCHBOARD__BOLNA__TIMEOUT_SECONDS", "10")
            .env("SWITCHBOARD__WEBHOOK__TOKEN", TOKEN)
            .env("SWITCHBOARD__AUTH__ADMIN_TOKEN", ADMIN)
            .env("SWITCHBOARD__RECONCILER__INTERVAL_SECONDS", "1")
            .env("SWITCHBOARD__RECONCILER__INITIATING_TIMEOUT_SECONDS", "1")
            .env("SWITCHBOARD__RECONCILER__LEASE_SECONDS", "2")
            .env("SWITCHBOARD__RECONCILER__NOT_PLACED_GRACE_SECONDS", "30")
            .env("SWITCHBOARD__OUTBOUND_WEBHOOKS__TIMEOUT_SECONDS", "2")
            .env("RUST_LOG", std::env::var("CRASH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdout(match std::env::var("CRASH_LOG_FILE") {
                Ok(path) => {
                    Stdio::from(std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap())
                }
                Err(_) => Stdio::null(),
            })
            .spawn()
            .expect("serve starts");
        Self { child, base: format!("http://127.0.0.1:{port}") }
    }

    async fn ready(&mut self) {
        assert!(self.wait_ready().await, "the server never became ready");
    }

    /// False if the process exited (e.g. its port was taken meanwhile) or did not get ready.
    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = reqwest::get(format!("{}/readyz", self.base)).await {
                if r.status() == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    /// Starts on a free port, trying another if the chosen one was taken before the server bound
    /// it (a port found free can be handed to an outgoing connection meanwhile). Points the
    /// simulator's webhooks at the server.
    async fn start_on_free_port(database_url: &str, sim: &Simulator) -> (Self, u16) {
        for _ in 0..5 {
            let port = free_port();
            sim.set_webhook(WebhookTarget {
                url: format!("http://127.0.0.1:{port}/webhooks/bolna"),
                header: Some(("X-Webhook-Token".into(), TOKEN.into())),
            });
            let mut server = Self::start(database_url, sim, port);
            if server.wait_ready().await {
                return (server, port);
            }
        }
        panic!("the server could not start on a free port");
    }

    fn signal(&self, signal: &str) {
        Command::new("kill").args([signal, &self.child.id().to_string()]).status().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        common::stop(&mut self.child, "-KILL", Duration::from_secs(5));
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn setup(sim_config: SimConfig) -> (String, PgPool, Simulator) {
    let url =
        local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &schema::MIGRATOR).await.unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    let sim = Simulator::start(sim_config, "127.0.0.1:0").unwrap();
    (url, pool, sim)
}

async fn user_key(base: &str, direct: i64) -> String {
    let body: Value = reqwest::Client::new()
        .post(format!("{base}/v1/admin/users"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "crash", "direct_call_limit": direct}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["api_key"].as_str().unwrap().to_owned()
}

fn call_body(n: usize) -> Value {
    json!({"agent_id": "8f2c1d7e-5a4b-4c39-9e21-6b0f3a9d4c12", "recipient_phone_number": format!("+1555{n:07}")})
}

async fn wait_until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_server_killed_between_bolnas_acceptance_and_the_record_is_reconciled_after_restart() {
    let sim_config =
        SimConfig { speed: 1000.0, outcomes: OutcomeMix::always_completed(), ..SimConfig::default() };
    let (url, pool, sim) = setup(sim_config).await;
    let (server, port) = Server::start_on_free_port(&url, &sim).await;
    let key = user_key(&server.base, 1).await;
    // Bolna accepts at once but answers after 5 s; its webhooks are lost: only the reconciler can
    // learn the execution ID.
    sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::AcceptThenDelay { delay_ms: 5_000 }]),
        webhooks: Some(WebhookFaults { drop_probability: 1.0, ..WebhookFaults::default() }),
        ..FaultUpdate::default()
    });
    let base = server.base.clone();
    let pending = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/v1/calls"))
            .bearer_auth(key)
            .json(&call_body(1))
            .send()
            .await
    });
    wait_until("Bolna to accept the call", Duration::from_secs(10), async || sim.stats().accepted == 1).await;

    server.signal("-KILL");
    drop(server);
    assert!(pending.await.unwrap().is_err(), "the client saw the connection die");
    let (status, execution): (String, Option<String>) =
        sqlx::query_as("SELECT status, bolna_execution_id FROM calls").fetch_one(&pool).await.unwrap();
    assert_eq!(
        (status.as_str(), execution),
        ("initiating", None),
        "the crash window: accepted, not recorded"
    );

    let mut restarted = Server::start(&url, &sim, port);
    restarted.ready().await;
    wait_until("the call to be adopted and finished", Duration::from_secs(30), async || {
        let status: String = sqlx::query_scalar("SELECT status FROM calls").fetch_one(&pool).await.unwrap();
        status == "completed"
    })
    .await;

    let (execution, slots): (Option<String>, i64) =
        sqlx::query_as("SELECT bolna_execution_id, (SELECT count(*) FROM active_calls) FROM calls")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(execution.is_some(), "execution ID adopted");
    assert_eq!(slots, 0, "no slot leaked");
    assert_eq!(sim.stats().call_requests, 1, "never dialled twice");
}

#[tokio::test]
async fn sigterm_under_load_exits_cleanly_and_leaves_no_call_unaccounted_for() {
    let sim_config =
        SimConfig { speed: 1000.0, outcomes: OutcomeMix::always_completed(), ..SimConfig::default() };
    let (url, pool, sim) = setup(sim_config).await;
    sim.set_faults(FaultUpdate {
        call_rates: Some(bolna_sim::CallFaultRates { latency_ms: 150, ..Default::default() }),
        ..FaultUpdate::default()
    });
    let (server, _) = Server::start_on_free_port(&url, &sim).await;
    let key = user_key(&server.base, 3).await;
    let client = reqwest::Client::new();
    let load: Vec<_> = (0..30)
        .map(|n| {
            let request =
                client.post(format!("{}/v1/calls", server.base)).bearer_auth(&key).json(&call_body(100 + n));
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.signal("-TERM");
    let mut server = server;
    let status = tokio::task::spawn_blocking(move || {
        let status = common::wait_for_exit(&mut server.child, Duration::from_secs(30));
        (server, status)
    })
    .await
    .unwrap()
    .1;
    let answered =
        futures::future::join_all(load).await.into_iter().filter(|r| matches!(r, Ok(Ok(_)))).count();

    assert!(status.success(), "exit status {status:?}");
    assert!(answered > 0, "requests in flight were answered");
    // Judged against Bolna's side, not the service's own bookkeeping: every call the simulator
    // accepted is a call whose execution ID was recorded before exit, or one marked for the
    // reconciler (Bolna's answer lost); no call claims an execution Bolna never accepted.
    let stats = sim.stats();
    let recorded: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT recipient_phone_number, bolna_execution_id, reconcile_reason FROM calls ORDER BY recipient_phone_number",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(stats.double_dials().is_empty(), "nobody dialled twice: {:?}", stats.double_dials());
    for recipient in stats.executions_by_recipient.keys() {
        let call = recorded.iter().find(|(number, ..)| number == recipient);
        assert!(
            matches!(call, Some((_, Some(_), _)) | Some((_, None, Some(_)))),
            "Bolna accepted a call to {recipient}, but the service recorded {call:?}"
        );
    }
    for (recipient, execution, _) in &recorded {
        if let Some(execution) = execution {
            let known = sim.execution(execution).is_some();
            assert!(
                known && stats.executions_by_recipient.contains_key(recipient),
                "{recipient}: {execution} unknown to Bolna"
            );
        }
    }
    let unaccounted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM calls WHERE status = 'initiating' AND bolna_execution_id IS NULL AND reconcile_reason IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unaccounted, 0, "no call left holding a slot without its request's outcome");
    let with_execution = recorded.iter().filter(|(_, execution, _)| execution.is_some()).count();
    assert!(
        with_execution > 0 && with_execution as u64 <= stats.accepted,
        "{with_execution} recorded, {} accepted",
        stats.accepted
    );
    let (held, held_recorded): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM active_calls), (SELECT count(*) FROM active_calls WHERE bolna_execution_id IS NOT NULL)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(held, held_recorded, "every held slot knows its execution");
}

/// Counts each `webhook-id` a receiver acknowledged (it answers 200 after `delay`).
struct CountingReceiver {
    seen: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    delay: Duration,
}

impl wiremock::Respond for CountingReceiver {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let id = request.headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        *self.seen.lock().unwrap().entry(id).or_default() += 1;
        wiremock::ResponseTemplate::new(200).set_delay(self.delay)
    }
}

#[tokio::test]
async fn outbound_webhooks_with_a_backlog_are_all_delivered_after_a_sigkill_and_restart() {
    let sim_config =
        SimConfig { speed: 1000.0, outcomes: OutcomeMix::always_completed(), ..SimConfig::default() };
    let (url, pool, sim) = setup(sim_config).await;
    let receiver = wiremock::MockServer::start().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::new()));
    // A slow receiver: 4 deliveries in flight at 150 ms each, so a backlog builds.
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(CountingReceiver { seen: seen.clone(), delay: Duration::from_millis(150) })
        .mount(&receiver)
        .await;
    let (server, port) = Server::start_on_free_port(&url, &sim).await;
    let key = user_key(&server.base, 5).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/v1/webhook-endpoints", server.base))
        .bearer_auth(&key)
        .json(&json!({"url": format!("{}/hook", receiver.uri()), "events": ["call.updated", "call.ended"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(created["secret"].is_string(), "{created}");
    for n in 0..10 {
        let response = client
            .post(format!("{}/v1/calls", server.base))
            .bearer_auth(&key)
            .json(&call_body(n))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
    wait_until("every call to finish", Duration::from_secs(30), async || {
        let open: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE status <> 'completed'")
            .fetch_one(&pool)
            .await
            .unwrap();
        open == 0
    })
    .await;
    wait_until("some deliveries", Duration::from_secs(30), async || seen.lock().unwrap().len() >= 5).await;
    server.signal("-KILL");
    drop(server);
    let backlog: i64 =
        sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status IN ('pending', 'sending')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(backlog > 10, "the kill left a backlog: {backlog}");
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&pool).await.unwrap();

    let mut restarted = Server::start(&url, &sim, port);
    restarted.ready().await;
    wait_until("the backlog to drain", Duration::from_secs(60), async || {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'")
                .fetch_one(&pool)
                .await
                .unwrap();
        left == 0
    })
    .await;
    let messages: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM webhook_messages").fetch_all(&pool).await.unwrap();
    assert_eq!(
        messages.len() as i64,
        events,
        "one message per event, none lost, none doubled by the restart"
    );
    let seen = seen.lock().unwrap().clone();
    for id in &messages {
        assert!(seen.contains_key(&format!("msg_{id}")), "msg_{id} never arrived");
    }
    // Only the deliveries in flight when the server died may arrive twice (their lease ran out).
    let repeated = seen.values().filter(|n| **n > 1).count();
    assert!(repeated <= 4, "{repeated} deliveries arrived more than once: {seen:?}");
}
