//! What a benchmark runs against: PostgreSQL (`DATABASE_URL`, or a private durable cluster under
//! `target/bench-pg`), the Bolna simulator, and a Switchboard server on loopback.

use std::path::PathBuf;

use anyhow::Context;
use bolna_sim::{OutcomeMix, SimConfig, Simulator, WebhookTarget};
use local_postgres::{Cluster, ClusterOptions};
use secrecy::SecretString;
use serde_json::{json, Value};

pub const ADMIN_TOKEN: &str = "bench-admin-token";
pub const WEBHOOK_TOKEN: &str = "bench-webhook-token";
pub const AGENT: &str = "8f2c1d7e-5a4b-4c39-9e21-6b0f3a9d4c12";

/// The PostgreSQL server to use: its admin URL, and the cluster when it is our own.
pub async fn postgres() -> anyhow::Result<(String, Option<Cluster>)> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return Ok((url, None));
    }
    let dir = PathBuf::from("target/bench-pg");
    let options = ClusterOptions::durable(dir);
    let cluster = tokio::task::spawn_blocking(move || Cluster::ensure_running(&options)).await??;
    Ok((cluster.url("postgres"), Some(cluster)))
}

/// A running Switchboard with its own fresh database and simulator.
pub struct Stack {
    pub base_url: String,
    pub database_url: String,
    pub sim: Simulator,
    pub http: reqwest::Client,
}

impl Stack {
    /// `webhooks`: whether the simulator posts status changes back (throughput runs turn them off
    /// so only the measured requests reach the server).
    pub async fn start(
        admin_url: &str,
        account_lines: u32,
        webhooks: bool,
        sim: impl FnOnce(&mut SimConfig),
    ) -> anyhow::Result<Self> {
        let database_url =
            local_postgres::create_fresh_database(admin_url, &schema::MIGRATOR, "bench").await?;
        let mut config = SimConfig {
            speed: 1000.0,
            outcomes: OutcomeMix::always_completed(),
            account_concurrency: 100_000,
            ..SimConfig::default()
        };
        sim(&mut config);
        let simulator = Simulator::start(config, "127.0.0.1:0")?;
        let mut settings = web::Settings::load_from(&web::settings::ConfigSource {
            config_dir: None,
            vars: Default::default(),
        })?;
        settings.server.port = 0;
        settings.database.url = Some(SecretString::from(database_url.clone()));
        settings.database.max_connections = 40;
        settings.auth.admin_token = Some(SecretString::from(ADMIN_TOKEN));
        settings.webhook.token = Some(SecretString::from(WEBHOOK_TOKEN));
        settings.bolna.base_url = simulator.base_url();
        settings.limits.account_max_concurrent = account_lines;
        let application = web::Application::build(settings).await?;
        let base_url = format!("http://127.0.0.1:{}", application.port());
        tokio::spawn(application.run_until_stopped());
        if webhooks {
            simulator.set_webhook(WebhookTarget {
                url: format!("{base_url}/webhooks/bolna"),
                header: Some(("X-Webhook-Token".into(), WEBHOOK_TOKEN.into())),
            });
        }
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        Ok(Self { base_url, database_url, sim: simulator, http })
    }

    /// A user with these limits; returns its API key.
    pub async fn user(&self, direct: i64) -> anyhow::Result<String> {
        let body: Value = self
            .http
            .post(format!("{}/v1/admin/users", self.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "bench", "direct_call_limit": direct, "campaign_call_limit": 0}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["api_key"].as_str().context("api_key")?.to_owned())
    }

    /// `count` users with `direct` slots each, made `concurrency` at a time; returns their keys.
    pub async fn users(&self, count: usize, direct: i64) -> anyhow::Result<Vec<String>> {
        use futures::StreamExt;
        let keys: Vec<anyhow::Result<String>> =
            futures::stream::iter(0..count).map(|_| self.user(direct)).buffer_unordered(32).collect().await;
        keys.into_iter().collect()
    }

    /// Starts a call; returns (status code, call JSON).
    pub async fn call(&self, key: &str, recipient: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/v1/calls", self.base_url))
            .bearer_auth(key)
            .json(&json!({"agent_id": AGENT, "recipient_phone_number": recipient}))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// Posts a webhook body as Bolna would.
    pub async fn webhook(&self, body: &Value) -> anyhow::Result<u16> {
        let response = self
            .http
            .post(format!("{}/webhooks/bolna", self.base_url))
            .header("X-Webhook-Token", WEBHOOK_TOKEN)
            .json(body)
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}

/// A minimal execution body for `execution_id` in `status`.
pub fn execution_body(execution_id: &str, status: &str) -> Value {
    json!({"id": execution_id, "status": status, "agent_id": AGENT, "conversation_duration": 0, "total_cost": 0})
}
