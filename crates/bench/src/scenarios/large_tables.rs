//! Hot paths on large tables. The `calls` table grows in steps (e.g. 10,000 → 1,000,000 rows,
//! one user owning a tenth); at each step the latency of applying a webhook to an existing call is
//! measured, and at the largest size `GET /v1/calls` for the user owning the most rows, beside the
//! same page read straight from the database. `EXPLAIN (ANALYZE, BUFFERS)` of the hot statements
//! on the largest data set goes into the report.

use std::time::Instant;

use anyhow::Context;
use sqlx::PgPool;

use super::bulk::{explain, load_calls, Load};
use crate::environment::{execution_body, Stack};
use crate::report::percentile;

pub struct LargeTables {
    /// (call rows, webhook apply p50 ms, p99 ms).
    pub webhook_curve: Vec<(f64, f64, f64)>,
    /// Rows in the table and owned by the listed user at the end.
    pub rows: i64,
    pub owned: i64,
    /// `GET /v1/calls?limit=20&cursor=…` round trips, ms.
    pub list_http_ms: Vec<f64>,
    /// The same page's query straight from the database, ms.
    pub list_sql_ms: Vec<f64>,
    /// (statement, plan).
    pub plans: Vec<(String, String)>,
}

/// A small deterministic generator (the benchmark needs spread, not secrecy).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: i64) -> i64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n.max(1) as u64) as i64
    }
}

const LIST_SQL: &str =
    "SELECT * FROM calls WHERE user_id = $1::uuid AND (created_at, id) < ($2::timestamptz, $3::uuid) \
                        ORDER BY created_at DESC, id DESC LIMIT 21";

pub async fn run(stack: &Stack, sizes: &[i64], samples: usize) -> anyhow::Result<LargeTables> {
    let pool = PgPool::connect(&stack.database_url).await?;
    let (big, big_key) = stack.user_with_id(1).await?;
    let mut owners = vec![big];
    for _ in 0..9 {
        owners.push(stack.user_with_id(1).await?.0);
    }
    let mut random = Lcg(42);
    let mut loaded = 0;
    let mut webhook_curve = Vec::new();
    for &size in sizes {
        loaded += load_calls(
            &pool,
            &Load { first: loaded, count: size - loaded, owners: &owners, status: "ringing" },
        )
        .await?;
        eprintln!("  {loaded} call rows: webhook latency");
        let mut latencies = Vec::with_capacity(samples);
        for _ in 0..samples {
            let n = random.below(loaded);
            let started = Instant::now();
            let status = stack.webhook(&execution_body(&format!("bulk-{n}"), "in-progress")).await?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(status == 200, "webhook answered {status}");
        }
        webhook_curve.push((
            loaded as f64,
            percentile(&mut latencies, 50.0),
            percentile(&mut latencies, 99.0),
        ));
    }

    eprintln!("  {loaded} call rows: GET /v1/calls");
    let cursors: Vec<(chrono::DateTime<chrono::Utc>, uuid::Uuid)> =
        // Cursors with at least 50 older rows behind them, so every page read is a full one.
        sqlx::query_as(
            "SELECT created_at, id FROM calls TABLESAMPLE SYSTEM (5)
             WHERE user_id = $1
               AND created_at > (SELECT created_at FROM calls WHERE user_id = $1
                                 ORDER BY created_at, id OFFSET 50 LIMIT 1)
             LIMIT $2",
        )
            .bind(big)
            .bind(samples as i64)
            .fetch_all(&pool)
            .await?;
    anyhow::ensure!(!cursors.is_empty(), "no rows sampled for cursors");
    let mut list_http_ms = Vec::new();
    let mut list_sql_ms = Vec::new();
    for (n, (created_at, id)) in cursors.iter().enumerate() {
        // Half the reads are first pages, half jump deep into the history with a cursor.
        let path = if n % 2 == 0 {
            "/v1/calls?limit=20".to_owned()
        } else {
            format!("/v1/calls?limit=20&cursor={}.{}", created_at.timestamp_micros(), id)
        };
        let (status, ms, body) = stack.timed_get(&path, &big_key).await?;
        anyhow::ensure!(status == 200, "GET {path} answered {status}: {body}");
        anyhow::ensure!(body["data"].as_array().context("data")?.len() == 20, "a full page");
        list_http_ms.push(ms);
        let (after_at, after_id) =
            if n % 2 == 0 { (chrono::Utc::now(), uuid::Uuid::max()) } else { (*created_at, *id) };
        let started = Instant::now();
        let rows = sqlx::query(LIST_SQL.replace("$1::uuid", "$1").as_str())
            .bind(big)
            .bind(after_at)
            .bind(after_id)
            .fetch_all(&pool)
            .await?;
        list_sql_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(rows.len() == 21, "the direct query reads the same page");
    }
    let owned: i64 = sqlx::query_scalar("SELECT count(*) FROM calls WHERE user_id = $1")
        .bind(big)
        .fetch_one(&pool)
        .await?;

    let (deep_at, deep_id) = cursors[cursors.len() / 2];
    let big_text = big.to_string();
    let deep_at_text = deep_at.to_rfc3339();
    let deep_id_text = deep_id.to_string();
    let execution = format!("bulk-{}", loaded / 2);
    let mut plans = Vec::new();
    for (name, sql, params) in [
        (
            "GET /v1/calls: a page deep in the user's history",
            LIST_SQL.to_owned(),
            vec![big_text.as_str(), &deep_at_text, &deep_id_text],
        ),
        (
            "webhook: the call by Bolna's execution ID",
            "SELECT id, status FROM calls WHERE bolna_execution_id = $1::text".to_owned(),
            vec![execution.as_str()],
        ),
    ] {
        plans.push((name.to_owned(), explain(&pool, &sql, &params).await?));
    }
    pool.close().await;
    Ok(LargeTables { webhook_curve, rows: loaded, owned, list_http_ms, list_sql_ms, plans })
}
