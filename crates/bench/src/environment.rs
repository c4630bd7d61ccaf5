//! What a benchmark runs against: PostgreSQL (`DATABASE_URL`, or a private durable cluster under
//! `target/bench-pg`), the Bolna simulator, and Switchboard servers — separate release processes
//! running `switchboard serve` — on loopback.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use bolna_sim::{OutcomeMix, SimConfig, Simulator, WebhookTarget};
use local_postgres::{Cluster, ClusterOptions};
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

/// The first argument that makes this binary run as `switchboard` (see [`run_as_switchboard`]).
pub const AS_SWITCHBOARD: &str = "--as-switchboard";

/// How a server process is started: this very executable, in `switchboard` mode. It links the same
/// `web` library as the `switchboard` binary and runs the same `serve` command in its own process;
/// it saves a second `cargo build` whose different feature set would rebuild half the workspace.
pub fn server_binary() -> anyhow::Result<PathBuf> {
    Ok(std::env::current_exe()?)
}

/// `switchboard-bench --as-switchboard serve …` is `switchboard serve …`.
pub async fn run_as_switchboard() -> anyhow::Result<()> {
    use clap::Parser;
    let args = std::iter::once("switchboard".to_owned()).chain(std::env::args().skip(2));
    web::commands::run(web::cli::Cli::parse_from(args)).await
}

/// One `switchboard serve` process (release build, started as [`server_binary`] says); stopped
/// with SIGTERM when dropped.
pub struct Server {
    child: Child,
    pub base_url: String,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port it listens on.
    pub fn port(&self) -> anyhow::Result<u16> {
        Ok(self.base_url.rsplit(':').next().context("port")?.parse()?)
    }

    /// SIGKILL, as a crash: no graceful anything.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// Resident memory now, in MiB (Linux `/proc`).
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .context("VmRSS")?
            .parse()?;
        Ok(kib / 1024.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return; // already gone (killed and reaped): its pid may belong to another process now
        }
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// How a server process is started (kept to restart one as it was).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub database_url: String,
    pub bolna_url: String,
    pub account_lines: u32,
    pub threads: usize,
    /// More settings (`SWITCHBOARD__…`), after the defaults below, so they win.
    pub env: Vec<(String, String)>,
}

/// Starts a server; on `port` when given and free (a restart at the same address), else any.
pub async fn start_server(options: &ServerOptions, port: Option<u16>) -> anyhow::Result<Server> {
    let binary = server_binary()?;
    let ServerOptions { database_url, bolna_url, account_lines, threads, env } = options;
    let http = reqwest::Client::new();
    for attempt in 0..5 {
        let port = match (attempt, port) {
            (0, Some(port)) => port,
            _ => free_port()?,
        };
        let child = Command::new(&binary)
            .args([AS_SWITCHBOARD, "serve", "--no-migrate"])
            .env_remove("DATABASE_URL")
            .env("SWITCHBOARD_ENVIRONMENT", "local")
            .env("SWITCHBOARD__DATABASE__URL", database_url)
            .env("SWITCHBOARD__DATABASE__MAX_CONNECTIONS", "40")
            // Processes sharing this host's cores split them (docs/capacity.md): HTTP workers and
            // the runtime's threads.
            .env("SWITCHBOARD__SERVER__WORKERS", threads.to_string())
            .env("TOKIO_WORKER_THREADS", threads.to_string())
            .env("SWITCHBOARD__SERVER__PORT", port.to_string())
            .env("SWITCHBOARD__AUTH__ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SWITCHBOARD__WEBHOOK__TOKEN", WEBHOOK_TOKEN)
            .env("SWITCHBOARD__BOLNA__BASE_URL", bolna_url)
            .env("SWITCHBOARD__LIMITS__ACCOUNT_MAX_CONCURRENT", account_lines.to_string())
            // Above the benchmark's peak start rate (about 110,000 a minute), so the send tokens
            // are taken on every start but never hold one back.
            .env("SWITCHBOARD__BOLNA__MAX_CALLS_PER_MINUTE", "200000")
            .env("RUST_LOG", "error")
            .envs(env.iter().map(|(key, value)| (key.as_str(), value.as_str())))
            .stdout(Stdio::null())
            .spawn()
            .context("starting switchboard serve")?;
        let mut server = Server { child, base_url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = server.child.try_wait() {
                break; // exited: most likely the port was taken; try another
            }
            if let Ok(response) = http.get(format!("{}/readyz", server.base_url)).send().await {
                if response.status().is_success() {
                    return Ok(server);
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = server.child.kill();
    }
    anyhow::bail!("switchboard serve did not become ready")
}

/// Running Switchboard servers (separate release processes) on one fresh database, with a simulator.
pub struct Stack {
    pub servers: Vec<Server>,
    pub base_url: String,
    pub database_url: String,
    admin_url: String,
    pub sim: Simulator,
    pub http: reqwest::Client,
}

impl Drop for Stack {
    /// Stops the servers, then drops the stack's database: a full run makes about ten, some with a
    /// million calls, and left behind they filled the disk and kept autovacuum busy in later runs.
    fn drop(&mut self) {
        self.servers.clear();
        let (admin_url, url) = (self.admin_url.clone(), self.database_url.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(local_postgres::drop_database(&admin_url, &url))
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("warning: could not drop the benchmark database: {error:#}");
        }
    }
}

impl Stack {
    /// `webhooks`: whether the simulator posts status changes back (to the first server; throughput
    /// runs turn them off so only the measured requests reach the servers).
    pub async fn start(
        admin_url: &str,
        account_lines: u32,
        webhooks: bool,
        sim: impl FnOnce(&mut SimConfig),
    ) -> anyhow::Result<Self> {
        Self::start_instances(admin_url, account_lines, webhooks, 1, sim).await
    }

    /// As [`Stack::start`] with `instances` server processes sharing the database.
    pub async fn start_instances(
        admin_url: &str,
        account_lines: u32,
        webhooks: bool,
        instances: usize,
        sim: impl FnOnce(&mut SimConfig),
    ) -> anyhow::Result<Self> {
        Self::start_with(admin_url, account_lines, webhooks, instances, sim, Vec::new())
            .await
            .map(|(stack, _)| stack)
    }

    /// As [`Stack::start_instances`], the servers started with more settings in `env`; also returns
    /// how they were started (to restart one).
    pub async fn start_with(
        admin_url: &str,
        account_lines: u32,
        webhooks: bool,
        instances: usize,
        sim: impl FnOnce(&mut SimConfig),
        env: Vec<(String, String)>,
    ) -> anyhow::Result<(Self, ServerOptions)> {
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
        let mut servers = Vec::with_capacity(instances);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let options = ServerOptions {
            database_url: database_url.clone(),
            bolna_url: simulator.base_url(),
            account_lines,
            threads: (cores / instances.max(1)).max(1),
            env,
        };
        for _ in 0..instances.max(1) {
            servers.push(start_server(&options, None).await?);
        }
        let base_url = servers[0].base_url.clone();
        if webhooks {
            simulator.set_webhook(WebhookTarget {
                url: format!("{base_url}/webhooks/bolna"),
                header: Some(("X-Webhook-Token".into(), WEBHOOK_TOKEN.into())),
            });
        }
        let http = reqwest::Client::builder().pool_max_idle_per_host(256).build()?;
        let stack =
            Self { servers, base_url, database_url, admin_url: admin_url.to_owned(), sim: simulator, http };
        Ok((stack, options))
    }

    /// `ANALYZE` of the stack's database: fresh planner statistics, as autovacuum keeps them on a
    /// live database (plans made while a table was empty would otherwise stay in use).
    pub async fn analyze(&self) -> anyhow::Result<()> {
        use sqlx::{Connection, Executor};
        let mut conn = sqlx::PgConnection::connect(&self.database_url).await?;
        conn.execute("ANALYZE").await?;
        conn.close().await?;
        Ok(())
    }

    /// The base URL of server `n` (round robin).
    pub fn server_url(&self, n: usize) -> &str {
        &self.servers[n % self.servers.len()].base_url
    }

    /// A user with these limits; returns its API key.
    pub async fn user(&self, direct: i64) -> anyhow::Result<String> {
        Ok(self.user_with_id(direct).await?.1)
    }

    /// A user with these limits; returns its id and API key.
    pub async fn user_with_id(&self, direct: i64) -> anyhow::Result<(uuid::Uuid, String)> {
        self.user_with_limits(direct, 0).await
    }

    /// A user with these direct and campaign slots; returns its id and API key.
    pub async fn user_with_limits(&self, direct: i64, campaign: i64) -> anyhow::Result<(uuid::Uuid, String)> {
        let body: Value = self
            .http
            .post(format!("{}/v1/admin/users", self.base_url))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({"name": "bench", "direct_call_limit": direct, "campaign_call_limit": campaign}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = body["user"]["id"].as_str().context("user id")?.parse()?;
        Ok((id, body["api_key"].as_str().context("api_key")?.to_owned()))
    }

    /// `count` users with `direct` slots each, made `concurrency` at a time; returns their keys.
    pub async fn users(&self, count: usize, direct: i64) -> anyhow::Result<Vec<String>> {
        use futures::StreamExt;
        let keys: Vec<anyhow::Result<String>> =
            futures::stream::iter(0..count).map(|_| self.user(direct)).buffer_unordered(32).collect().await;
        keys.into_iter().collect()
    }

    /// Starts a call at the first server; returns (status code, call JSON).
    pub async fn call(&self, key: &str, recipient: &str) -> anyhow::Result<(u16, Value)> {
        self.call_at(0, key, recipient).await
    }

    /// Starts a call at server `n` (round robin); returns (status code, call JSON).
    pub async fn call_at(&self, n: usize, key: &str, recipient: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/v1/calls", self.server_url(n)))
            .bearer_auth(key)
            .json(&json!({"agent_id": AGENT, "recipient_phone_number": recipient}))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await?))
    }

    /// `GET path` with a bearer key; returns the status and the milliseconds it took.
    pub async fn timed_get(&self, path: &str, key: &str) -> anyhow::Result<(u16, f64, Value)> {
        let started = Instant::now();
        let response = self.http.get(format!("{}{path}", self.base_url)).bearer_auth(key).send().await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await?;
        Ok((status, started.elapsed().as_secs_f64() * 1000.0, body))
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
