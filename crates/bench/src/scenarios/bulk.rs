//! Loads many call rows straight into the database (the benchmark's large data sets). Triggers
//! are skipped for the load (`session_replication_role = replica`): the rows are history, not
//! changes anyone streams. Needs a superuser connection, which the benchmark's cluster provides.

use sqlx::PgPool;
use uuid::Uuid;

use crate::environment::AGENT;

/// Which users own the loaded rows and in what state they are.
pub struct Load<'a> {
    /// Rows numbered `first..first + count` (numbers make execution IDs and phone numbers unique).
    pub first: i64,
    pub count: i64,
    /// Row `n` goes to `owners[n % owners.len()]`.
    pub owners: &'a [Uuid],
    /// `queued` (no execution ID) or a Bolna status (with an execution ID `bulk-<n>`).
    pub status: &'a str,
}

/// Inserts the rows in batches of 100,000; returns how many were inserted.
pub async fn load_calls(pool: &PgPool, load: &Load<'_>) -> anyhow::Result<i64> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await?;
    let queued = load.status == "queued";
    let mut done = 0;
    while done < load.count {
        let batch = (load.count - done).min(100_000);
        let from = load.first + done;
        sqlx::query(
            "INSERT INTO calls (id, user_id, call_type, agent_id, recipient_phone_number, status,
                                bolna_execution_id, created_at, queued_at, updated_at)
             SELECT gen_random_uuid(), ($1::uuid[])[1 + (g % cardinality($1::uuid[]))::int], 'direct', $2,
                    '+1555' || lpad((g % 10000000)::text, 7, '0'), $3,
                    CASE WHEN $4 THEN NULL ELSE 'bulk-' || g END,
                    now() - make_interval(secs => (($5 + $6 - g) / 1000.0)::double precision),
                    CASE WHEN $4 THEN now() END, now()
             FROM generate_series($5, $5 + $6 - 1) AS g",
        )
        .bind(load.owners)
        .bind(AGENT)
        .bind(load.status)
        .bind(queued)
        .bind(from)
        .bind(batch)
        .execute(&mut *conn)
        .await?;
        done += batch;
    }
    sqlx::query("SET session_replication_role = origin").execute(&mut *conn).await?;
    sqlx::query("ANALYZE calls").execute(&mut *conn).await?;
    Ok(done)
}

/// `EXPLAIN (ANALYZE, BUFFERS)` of `sql` with text parameters, as one string.
pub async fn explain(pool: &PgPool, sql: &str, params: &[&str]) -> anyhow::Result<String> {
    let statement = format!("EXPLAIN (ANALYZE, BUFFERS) {sql}");
    let mut query = sqlx::query_scalar::<_, String>(&statement).persistent(false);
    for param in params {
        query = query.bind(*param);
    }
    Ok(query.fetch_all(pool).await?.join("\n"))
}
