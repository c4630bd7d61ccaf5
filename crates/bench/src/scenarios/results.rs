//! Results at scale: a campaign of N contacts, each with one finished call (a mix of outcomes,
//! loaded straight into the tables as history), its report and its CSV export over HTTP, beside the
//! same-run time of the plain SQL behind each; the server's RSS is read at every chunk while the
//! export streams.

use std::time::Instant;

use anyhow::Context;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::environment::{Stack, AGENT};
use crate::report::percentile;

pub struct Results {
    pub contacts: i64,
    /// Medians, ms.
    pub report_ms: f64,
    pub report_sql_ms: f64,
    /// One full export, s.
    pub export_seconds: f64,
    pub export_sql_seconds: f64,
    pub export_rows: usize,
    pub export_mib: f64,
    pub rss_before_mib: f64,
    pub rss_peak_mib: f64,
}

/// The statements `GET /report` runs (call_service::results::report), as plain SQL.
const REPORT_SQL: [&str; 3] = [
    "SELECT status, attempts, count(*) FROM campaign_contacts WHERE campaign_id = $1 GROUP BY status, attempts",
    "SELECT call_outcome(status, answered_by_voice_mail), count(*), coalesce(sum(conversation_duration), 0),
            coalesce(sum(total_cost), 0), count(total_cost)
     FROM calls WHERE campaign_id = $1 GROUP BY 1",
    "SELECT coalesce(cc.timezone, cp.timezone), date_bin('15 minutes', c.started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
            count(*), count(*) FILTER (WHERE call_outcome(c.status, c.answered_by_voice_mail) = 'completed')
     FROM calls c JOIN campaign_contacts cc ON cc.id = c.contact_id JOIN campaigns cp ON cp.id = c.campaign_id
     WHERE c.campaign_id = $1 AND c.started_at IS NOT NULL GROUP BY 1, 2",
];

/// The export's page query (call_service::results::export) over every contact at once.
const EXPORT_SQL: &str = "SELECT cc.id, cc.phone_number, cc.name, cc.variables, cc.status, cc.attempts, cc.last_outcome,
            spent.talk, spent.cost, lc.extracted_data, lc.recording_url, cc.last_call_id
     FROM campaign_contacts cc
     LEFT JOIN calls lc ON lc.id = cc.last_call_id
     CROSS JOIN LATERAL (SELECT coalesce(sum(conversation_duration), 0) AS talk, coalesce(sum(total_cost), 0) AS cost
                         FROM calls WHERE contact_id = cc.id) spent
     WHERE cc.campaign_id = $1 ORDER BY cc.id";

const ZONES: [&str; 4] = ["Asia/Kolkata", "America/New_York", "Europe/London", "Asia/Kathmandu"];

pub async fn run(stack: &Stack, contacts: i64, samples: usize) -> anyhow::Result<Results> {
    let pool = PgPool::connect(&stack.database_url).await?;
    let (user, key) = stack.user_with_limits(1, 10).await?;
    let created: Value = stack
        .http
        .post(format!("{}/v1/campaigns", stack.base_url))
        .bearer_auth(&key)
        .json(&json!({"name": "results", "agent_id": AGENT, "max_concurrency": 1}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let campaign: Uuid = created["id"].as_str().context("campaign id")?.parse()?;
    load(&pool, user, campaign, contacts).await?;

    let mut http = Vec::with_capacity(samples);
    let mut sql = Vec::with_capacity(samples);
    for _ in 0..samples {
        let (status, ms, _) = stack.timed_get(&format!("/v1/campaigns/{campaign}/report"), &key).await?;
        anyhow::ensure!(status == 200, "the report answered {status}");
        http.push(ms);
        let started = Instant::now();
        for statement in REPORT_SQL {
            sqlx::query(statement).bind(campaign).fetch_all(&pool).await?;
        }
        sql.push(started.elapsed().as_secs_f64() * 1000.0);
    }

    let server = &stack.servers[0];
    let rss_before_mib = server.rss_mib()?;
    let mut rss_peak_mib = rss_before_mib;
    let started = Instant::now();
    let mut response = stack
        .http
        .get(format!("{}/v1/campaigns/{campaign}/results.csv", stack.base_url))
        .bearer_auth(&key)
        .send()
        .await?
        .error_for_status()?;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        rss_peak_mib = rss_peak_mib.max(server.rss_mib()?);
    }
    let export_seconds = started.elapsed().as_secs_f64();
    let bytes = body.len();
    let lines = parse_export(&body, contacts)?;

    let started = Instant::now();
    let rows = sqlx::query(EXPORT_SQL).bind(campaign).fetch_all(&pool).await?.len();
    let export_sql_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(rows as i64 == contacts);

    Ok(Results {
        contacts,
        report_ms: percentile(&mut http, 50.0),
        report_sql_ms: percentile(&mut sql, 50.0),
        export_seconds,
        export_sql_seconds,
        export_rows: lines - 1,
        export_mib: bytes as f64 / (1024.0 * 1024.0),
        rss_before_mib,
        rss_peak_mib,
    })
}

/// Reads the export back with a CSV reader: a row per contact, each as wide as the header, with its
/// variables (one holds a comma and quotes) in their own columns. Returns the rows with the header.
fn parse_export(body: &[u8], contacts: i64) -> anyhow::Result<usize> {
    let mut reader = csv::Reader::from_reader(body);
    let header = reader.headers()?.clone();
    let note = header.iter().position(|name| name == "variables.note").context("no variables.note column")?;
    let mut rows = 0_i64;
    for record in reader.records() {
        let record = record?;
        anyhow::ensure!(record.len() == header.len(), "row {rows} has {} cells", record.len());
        anyhow::ensure!(
            record.get(note) == Some("renewal, \"annual\""),
            "row {rows}: {:?}",
            record.get(note)
        );
        rows += 1;
    }
    anyhow::ensure!(rows == contacts, "{rows} rows for {contacts} contacts");
    Ok(rows as usize + 1)
}

/// Contacts with three variables each and one finished call each: 60 % completed (a tenth of them
/// by voice mail), 20 % no-answer, 10 % busy, 10 % failed. Triggers are skipped: this is history.
async fn load(pool: &PgPool, user: Uuid, campaign: Uuid, contacts: i64) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    sqlx::query("SET session_replication_role = replica").execute(&mut *conn).await?;
    sqlx::query(
        "INSERT INTO campaign_contacts (id, campaign_id, phone_number, name, timezone, variables, status, attempts)
         SELECT gen_random_uuid(), $1, '+1' || (2000000000 + g), 'Contact ' || g, ($3::text[])[1 + g % 4],
                jsonb_build_object('plan', CASE WHEN g % 3 = 0 THEN 'gold' ELSE 'silver' END, 'ref', g,
                                   'note', 'renewal, \"annual\"'),
                'done', 1
         FROM generate_series(1, $2) AS g",
    )
    .bind(campaign)
    .bind(contacts)
    .bind(&ZONES[..])
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "WITH numbered AS (
             SELECT id, phone_number, row_number() OVER (ORDER BY id) AS g FROM campaign_contacts WHERE campaign_id = $1)
         INSERT INTO calls (id, user_id, call_type, campaign_id, contact_id, agent_id, recipient_phone_number, status,
                            bolna_execution_id, created_at, started_at, ended_at, conversation_duration, total_cost,
                            answered_by_voice_mail, extracted_data, recording_url, updated_at)
         SELECT gen_random_uuid(), $2, 'campaign', $1, n.id, $3, n.phone_number,
                CASE WHEN g % 10 < 6 THEN 'completed' WHEN g % 10 < 8 THEN 'no-answer' WHEN g % 10 < 9 THEN 'busy'
                     ELSE 'failed' END,
                'results-' || n.id, now() - make_interval(secs => g::double precision),
                now() - make_interval(secs => g::double precision), now(),
                CASE WHEN g % 10 < 6 THEN 45 + g % 60 END, CASE WHEN g % 10 < 6 THEN (45 + g % 60) * 0.086 END,
                CASE WHEN g % 10 < 6 THEN g % 60 = 0 END,
                CASE WHEN g % 10 < 6 THEN jsonb_build_object('intent', 'renew', 'callback', g % 2 = 0) END,
                CASE WHEN g % 10 < 6 THEN 'https://api.bolna.ai/recordings/call/' || n.id END, now()
         FROM numbered n",
    )
    .bind(campaign)
    .bind(user)
    .bind(AGENT)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE campaign_contacts cc SET last_call_id = c.id, last_outcome = call_outcome(c.status, c.answered_by_voice_mail)
         FROM calls c WHERE c.contact_id = cc.id AND cc.campaign_id = $1",
    )
    .bind(campaign)
    .execute(&mut *conn)
    .await?;
    sqlx::query("SET session_replication_role = origin").execute(&mut *conn).await?;
    sqlx::query("ANALYZE campaign_contacts").execute(&mut *conn).await?;
    sqlx::query("ANALYZE calls").execute(&mut *conn).await?;
    Ok(())
}
