//! `spawn_app()` starts the real application on a free port against a fresh database and its own
//! Bolna simulator (webhooks wired back to the app); `TestApp` has one method per endpoint so
//! tests read as user stories.

use std::collections::HashMap;
use std::sync::Once;
use std::time::{Duration, Instant};

use bolna_sim::{OutcomeMix, SimConfig, Simulator, WebhookTarget};
use reqwest::{RequestBuilder, Response, StatusCode};
use secrecy::SecretString;
use serde_json::{json, Value};
use sqlx::PgPool;
use web::settings::{ConfigSource, Settings};
use web::Application;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const WEBHOOK_TOKEN: &str = "test-webhook-token";
pub const BOLNA_KEY: &str = "test-bolna-key";
pub const AGENT: &str = "8f2c1d7e-5a4b-4c39-9e21-6b0f3a9d4c12";

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub database_url: String,
    pub client: reqwest::Client,
    pub sim: Simulator,
    server: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    /// Actix serves on its own threads, which outlive the test's runtime: stop them with the test.
    fn drop(&mut self) {
        drop(self.server.stop(false));
        self.sim.stop_now();
    }
}

/// A user made through the admin API.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub key: String,
}

/// The repository's `config/` folder.
pub fn config_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Settings as a test run sees them: the repository's files, no process environment.
pub fn test_settings(vars: &[(&str, &str)]) -> Settings {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::load_from(&ConfigSource { config_dir: Some(config_dir()), vars }).expect("test settings load")
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            web::telemetry::init(web::settings::Environment::Local);
        }
    });
}

/// A simulator in test speed: a minute-long call takes 60 ms, every call completes.
pub fn sim_config() -> SimConfig {
    SimConfig {
        api_key: Some(BOLNA_KEY.into()),
        speed: 1000.0,
        outcomes: OutcomeMix::always_completed(),
        account_concurrency: 100,
        ..SimConfig::default()
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, |_| {}).await
}

pub async fn fresh_database() -> String {
    local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &schema::MIGRATOR)
        .await
        .expect("a fresh test database")
}

/// Starts the application with settings and simulator changed by the two closures.
pub async fn spawn_app_with(
    settings: impl FnOnce(&mut Settings),
    sim: impl FnOnce(&mut SimConfig),
) -> TestApp {
    let database_url = fresh_database().await;
    let mut config = sim_config();
    sim(&mut config);
    let simulator = Simulator::start(config, "127.0.0.1:0").expect("simulator starts");
    spawn_instance(&database_url, simulator, settings).await
}

/// One more application instance on an existing database and simulator (multi-instance tests).
pub async fn spawn_instance(
    database_url: &str,
    sim: Simulator,
    customise: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_instance_with_clock(
        database_url,
        sim,
        customise,
        std::sync::Arc::new(call_service::clock::SystemClock),
    )
    .await
}

/// An instance whose campaign scheduler reads time from `clock`.
pub async fn spawn_instance_with_clock(
    database_url: &str,
    sim: Simulator,
    customise: impl FnOnce(&mut Settings),
    clock: std::sync::Arc<dyn call_service::clock::Clock>,
) -> TestApp {
    init_logging();
    let mut settings = test_settings(&[]);
    settings.server.port = 0;
    settings.database.url = Some(SecretString::from(database_url.to_owned()));
    settings.database.max_connections = 10;
    settings.auth.admin_token = Some(SecretString::from(ADMIN_TOKEN));
    settings.webhook.token = Some(SecretString::from(WEBHOOK_TOKEN));
    settings.bolna.base_url = sim.base_url();
    settings.bolna.api_key = Some(SecretString::from(BOLNA_KEY));
    settings.bolna.timeout_seconds = 2;
    settings.limits.account_max_concurrent = 50;
    // Tests start calls far faster than Bolna's 500 a minute; the rate-limit tests set their own.
    settings.bolna.max_calls_per_minute = 10_000;
    customise(&mut settings);

    let application = Application::build_with_clock(settings, clock).await.expect("the application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    let server = application.handle();
    tokio::spawn(application.run_until_stopped());
    sim.set_webhook(WebhookTarget {
        url: format!("{address}/webhooks/bolna"),
        header: Some(("X-Webhook-Token".into(), WEBHOOK_TOKEN.into())),
    });
    let pool = PgPool::connect(database_url).await.expect("test pool connects");
    TestApp {
        address,
        pool,
        database_url: database_url.to_owned(),
        client: reqwest::Client::new(),
        sim,
        server,
    }
}

/// A call request body for `recipient`.
pub fn call_body(recipient: &str) -> Value {
    json!({"agent_id": AGENT, "recipient_phone_number": recipient, "user_data": {"customer_name": "Asha"}})
}

impl TestApp {
    /// `GET /v1/admin/diagnostics`.
    pub async fn diagnostics(&self) -> Value {
        let response =
            self.admin(self.client.get(self.url("/v1/admin/diagnostics"))).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    /// A gauge or counter without labels from this instance's `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.expect("metrics text");
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    }

    /// Stops this instance's HTTP server and its background work (as a shutdown would); the
    /// simulator and the database stay.
    pub async fn stop_server(&self) {
        self.server.stop(true).await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.expect("request sent")
    }

    pub fn admin(&self, request: RequestBuilder) -> RequestBuilder {
        request.bearer_auth(ADMIN_TOKEN)
    }

    pub async fn create_user(&self, direct: i64, campaign: i64) -> TestUser {
        let response = self
            .admin(self.client.post(self.url("/v1/admin/users")))
            .json(&json!({"name": "Test user", "direct_call_limit": direct, "campaign_call_limit": campaign}))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        TestUser {
            id: body["user"]["id"].as_str().expect("id").to_owned(),
            key: body["api_key"].as_str().expect("key").to_owned(),
        }
    }

    pub async fn post_call(&self, user: &TestUser, body: &Value) -> Response {
        self.client.post(self.url("/v1/calls")).bearer_auth(&user.key).json(body).send().await.expect("sent")
    }

    pub async fn post_call_with_key(&self, user: &TestUser, body: &Value, key: &str) -> Response {
        self.client
            .post(self.url("/v1/calls"))
            .bearer_auth(&user.key)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    /// Starts a call and returns its JSON, asserting the expected status code.
    pub async fn start_call(&self, user: &TestUser, recipient: &str, expected: u16) -> Value {
        let response = self.post_call(user, &call_body(recipient)).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, expected, "{body}");
        body
    }

    pub async fn get_call(&self, user: &TestUser, id: &str) -> Response {
        self.client
            .get(self.url(&format!("/v1/calls/{id}")))
            .bearer_auth(&user.key)
            .send()
            .await
            .expect("sent")
    }

    pub async fn call_json(&self, user: &TestUser, id: &str) -> Value {
        let response = self.get_call(user, id).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn cancel_call(&self, user: &TestUser, id: &str) -> Response {
        self.client
            .post(self.url(&format!("/v1/calls/{id}/cancel")))
            .bearer_auth(&user.key)
            .send()
            .await
            .expect("sent")
    }

    /// `GET path` as `user`; the body as JSON.
    pub async fn get_json_as(&self, user: &TestUser, path: &str) -> Value {
        let response = self.client.get(self.url(path)).bearer_auth(&user.key).send().await.expect("sent");
        response.json().await.expect("json")
    }

    /// Sends the simulator's webhooks to this instance.
    pub fn route_webhooks_here(&self) {
        self.sim.set_webhook(WebhookTarget {
            url: self.url("/webhooks/bolna"),
            header: Some(("X-Webhook-Token".into(), WEBHOOK_TOKEN.into())),
        });
    }

    /// Opens `GET /v1/events` with the user's key, optionally resuming after `last_event_id`.
    pub async fn open_events(&self, user: &TestUser, last_event_id: Option<i64>) -> crate::sse::EventStream {
        let mut request = self.client.get(self.url("/v1/events")).bearer_auth(&user.key);
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        crate::sse::EventStream::new(request.send().await.expect("sent"))
    }

    /// A browser ticket for the user's event stream.
    pub async fn event_ticket(&self, user: &TestUser) -> String {
        let response = self
            .client
            .post(self.url("/v1/events/tickets"))
            .bearer_auth(&user.key)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.expect("json");
        body["ticket"].as_str().expect("ticket").to_owned()
    }

    pub async fn concurrency(&self, user: &TestUser) -> Value {
        let response =
            self.client.get(self.url("/v1/concurrency")).bearer_auth(&user.key).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    pub async fn post_webhook(&self, body: &str) -> Response {
        self.client
            .post(self.url("/webhooks/bolna"))
            .header("X-Webhook-Token", WEBHOOK_TOKEN)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .expect("sent")
    }

    /// Polls the call until `done` holds for its JSON (10 s at most).
    pub async fn wait_for_call(
        &self,
        user: &TestUser,
        id: &str,
        what: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let call = self.call_json(user, id).await;
            if done(&call) {
                return call;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}: {call}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_for_status(&self, user: &TestUser, id: &str, status: &str) -> Value {
        self.wait_for_call(user, id, status, |c| c["status"] == status).await
    }

    /// Rows in `active_calls` (held slots).
    pub async fn held_slots(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM active_calls").fetch_one(&self.pool).await.expect("count")
    }

    /// The slot row of a call: its execution ID, if the row exists.
    pub async fn slot_of(&self, call_id: &str) -> Option<Option<String>> {
        sqlx::query_scalar::<_, Option<String>>(
            "SELECT bolna_execution_id FROM active_calls WHERE id = $1::uuid",
        )
        .bind(call_id)
        .fetch_optional(&self.pool)
        .await
        .expect("query")
    }

    /// Waits until no slot is held and no account line is claimed.
    pub async fn wait_for_no_slots(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (slots, lines): (i64, i64) = sqlx::query_as(
                "SELECT (SELECT count(*) FROM active_calls), (SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL)",
            )
            .fetch_one(&self.pool)
            .await
            .expect("count");
            if slots == 0 && lines == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "slots still held: {slots} slots, {lines} lines");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// What the simulator saw of `numbers`, each dialled once: every one placed exactly once, never more
/// than `limit` open at once for an agent, and placed in the order given (FIFO, judged at Bolna).
pub fn assert_placed_once_in_order(stats: &bolna_sim::Stats, numbers: &[String], limit: u32) {
    assert!(stats.double_dials().is_empty(), "{:?}", stats.double_dials());
    assert_eq!(stats.accepted as usize, numbers.len());
    let highs = &stats.open_by_agent_high_water;
    assert!(highs.values().all(|high| *high <= limit), "more than {limit} open at once: {highs:?}");
    let mut by_acceptance = numbers.to_vec();
    by_acceptance.sort_by_key(|number| stats.first_accepted_at[number.as_str()]);
    assert_eq!(by_acceptance, numbers, "placed at Bolna in the order they were made (FIFO)");
}

/// Waits until `condition` holds (10 s at most).
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
