//! PostgreSQL's own limit, measured with `pgbench` on the same cluster in the same run: what one
//! admission costs at the database (one durable transaction of two inserts) and what one webhook
//! costs (one transaction: an insert and an update).

use std::process::Command;

use anyhow::{bail, Context};
use sqlx::{Connection, Executor, PgConnection};

const ADMISSION: &str = r"\set u random(1, 1000)
BEGIN;
INSERT INTO bench_calls (id, user_id, status, payload) VALUES (gen_random_uuid(), :u, 'initiating', '{}');
INSERT INTO bench_slots (id, user_id, lease) VALUES (gen_random_uuid(), :u, now() + interval '15 minutes');
COMMIT;
";

const WEBHOOK: &str = r#"\set id random(1, 10000)
BEGIN;
INSERT INTO bench_events (call_id, body) VALUES (:id, '{"status": "ringing"}');
UPDATE bench_targets SET status = 'ringing', updated_at = now() WHERE id = :id;
COMMIT;
"#;

/// Transactions per second of both scripts at `clients` clients: the median of the runs, and
/// every run (on a shared machine one run can be a fifth off the next).
pub struct Baseline {
    pub admission_tps: f64,
    pub webhook_tps: f64,
    pub admission_runs: Vec<f64>,
    pub webhook_runs: Vec<f64>,
}

/// Runs each script `repeats` times, alternating, for `seconds` each.
pub async fn run(admin_url: &str, clients: u32, seconds: u32, repeats: usize) -> anyhow::Result<Baseline> {
    let url = local_postgres::ensure_database(admin_url, "switchboard_pgbench").await?;
    let mut conn = PgConnection::connect(&url).await?;
    conn.execute(
        "DROP TABLE IF EXISTS bench_calls, bench_slots, bench_events, bench_targets;
         CREATE TABLE bench_calls (id uuid PRIMARY KEY, user_id int NOT NULL, status text NOT NULL, payload jsonb NOT NULL,
                                   created_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE bench_slots (id uuid PRIMARY KEY, user_id int NOT NULL, lease timestamptz NOT NULL);
         CREATE INDEX ON bench_slots (user_id);
         CREATE TABLE bench_events (id bigserial PRIMARY KEY, call_id int NOT NULL, body jsonb NOT NULL,
                                    received_at timestamptz NOT NULL DEFAULT now());
         CREATE TABLE bench_targets (id int PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
         INSERT INTO bench_targets (id, status) SELECT g, 'initiated' FROM generate_series(1, 10000) g;",
    )
    .await?;
    conn.close().await.ok();
    let (mut admission_runs, mut webhook_runs) = (Vec::new(), Vec::new());
    for _ in 0..repeats.max(1) {
        admission_runs.push(pgbench(&url, ADMISSION, clients, seconds)?);
        webhook_runs.push(pgbench(&url, WEBHOOK, clients, seconds)?);
    }
    Ok(Baseline {
        admission_tps: median(&admission_runs),
        webhook_tps: median(&webhook_runs),
        admission_runs,
        webhook_runs,
    })
}

fn median(runs: &[f64]) -> f64 {
    let mut sorted = runs.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn pgbench(url: &str, script: &str, clients: u32, seconds: u32) -> anyhow::Result<f64> {
    let binaries = local_postgres::Binaries::locate()?;
    let file =
        std::env::temp_dir().join(format!("switchboard-pgbench-{}.sql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, script)?;
    let output = Command::new(binaries.path("pgbench"))
        .args(["-n", "-c", &clients.to_string(), "-j", "2", "-T", &seconds.to_string(), "-f"])
        .arg(&file)
        .arg(url)
        .output()
        .context("running pgbench")?;
    std::fs::remove_file(&file).ok();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!("pgbench failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    stdout
        .lines()
        .find_map(|line| {
            line.strip_prefix("tps = ").and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        })
        .with_context(|| format!("no tps in pgbench's output: {stdout}"))
}
