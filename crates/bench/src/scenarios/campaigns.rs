//! Campaigns at platform scale (issue 18), each beside a same-run baseline:
//! - [`idle`]: CPU of the servers and PostgreSQL with many running campaigns whose windows are
//!   closed, against the same stack before the first campaign; and the scheduler pass's latency as
//!   the running campaigns grow (a curve);
//! - [`windows_open`]: many campaigns whose windows open in the same second: the time until the
//!   account's lines are full, against the lines filled by direct calls sent at once;
//! - [`large_campaign`]: one campaign with contacts across 20 zones, added as the CLI's import adds
//!   them: calls in its first minute against the pacing asked, and none outside a window.
//!
//! Campaigns and their contacts are loaded with SQL (their zone's period closed, so the scheduler's
//! own first visit computes it); the large campaign's contacts go through
//! `call_service::campaigns::add_contacts`.

use std::time::{Duration, Instant};

use anyhow::Context;
use call_service::campaigns::NewContact;
use call_service::PhoneNumber;
use chrono::{TimeDelta, Timelike, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use super::bulk::explain;
use crate::environment::{Stack, AGENT};
use crate::profile;

/// Twenty zones around the globe (a national list spans a few; a global one all of these).
pub const ZONES: [&str; 20] = [
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Kolkata",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
];

/// A user with these campaign slots; returns its id and key.
async fn campaign_user(stack: &Stack, campaign_slots: i64, direct: i64) -> anyhow::Result<(Uuid, String)> {
    stack.user_with_limits(direct, campaign_slots).await
}

/// `POST /v1/campaigns/{id}/{action}` as the campaign's owner.
async fn campaign_action(stack: &Stack, key: &str, id: Uuid, action: &str) -> anyhow::Result<()> {
    let url = format!("{}/v1/campaigns/{id}/{action}", stack.base_url);
    stack.http.post(url).bearer_auth(key).send().await?.error_for_status()?;
    Ok(())
}

/// Inserts `count` running campaigns of `user`, due now, each with a daily UTC window
/// `[start, end)` (seconds of the day) and `contacts` contacts in a zone whose period counts as
/// closed (the scheduler's first visit computes it).
async fn load_campaigns(
    pool: &PgPool,
    user: Uuid,
    count: usize,
    (start, end): (u32, u32),
    contacts: i64,
) -> anyhow::Result<()> {
    let time = |seconds: u32| chrono::NaiveTime::from_num_seconds_from_midnight_opt(seconds % 86_400, 0);
    let mut left = count as i64;
    while left > 0 {
        let batch = left.min(1_000);
        sqlx::query(
            "WITH c AS (
               INSERT INTO campaigns (id, user_id, name, agent_id, timezone, window_days, window_start, window_end,
                                      max_concurrency, status, started_at, next_due_at)
               SELECT gen_random_uuid(), $1, 'bench ' || g, $2, 'UTC', '{0,1,2,3,4,5,6}', $3, $4, 1, 'running', now(), now()
                 FROM generate_series(1, $5) g
               RETURNING id)
             , z AS (INSERT INTO campaign_zones (campaign_id, zone, opens, closes)
                     SELECT id, '', '-infinity', '-infinity' FROM c)
             INSERT INTO campaign_contacts (id, campaign_id, phone_number)
             SELECT gen_random_uuid(), c.id, '+1555' || lpad(k::text, 7, '0')
               FROM c, generate_series(1, $6) k",
        )
        .bind(user)
        .bind(AGENT)
        .bind(time(start))
        .bind(time(end))
        .bind(batch)
        .bind(contacts)
        .execute(pool)
        .await?;
        left -= batch;
    }
    Ok(())
}

/// Waits until no running campaign is due (the scheduler has visited every loaded one); returns
/// how long that took.
async fn wait_until_nothing_due(pool: &PgPool, limit: Duration) -> anyhow::Result<f64> {
    let started = Instant::now();
    loop {
        let due: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM campaigns WHERE status = 'running' AND next_due_at <= now()",
        )
        .fetch_one(pool)
        .await?;
        if due == 0 {
            return Ok(started.elapsed().as_secs_f64());
        }
        anyhow::ensure!(started.elapsed() < limit, "{due} campaigns still due after {limit:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A metric's value from the first server's `/metrics`.
async fn metric(stack: &Stack, name: &str) -> anyhow::Result<f64> {
    let text = stack.http.get(format!("{}/metrics", stack.base_url)).send().await?.text().await?;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .with_context(|| format!("{name} not in /metrics"))
}

/// The mean scheduler pass and the visits made over `seconds` of waiting.
async fn passes_over(stack: &Stack, seconds: u64) -> anyhow::Result<(f64, f64)> {
    let read = |stack| async move {
        anyhow::Ok((
            metric(stack, "switchboard_campaign_scheduler_pass_seconds_sum").await?,
            metric(stack, "switchboard_campaign_scheduler_pass_seconds_count").await?,
            metric(stack, "switchboard_campaign_visits_total").await?,
        ))
    };
    let before = read(stack).await?;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let after = read(stack).await?;
    let passes = (after.1 - before.1).max(1.0);
    Ok(((after.0 - before.0) * 1000.0 / passes, after.2 - before.2))
}

pub struct Idle {
    pub baseline_cores: f64,
    pub loaded_cores: f64,
    pub campaigns: usize,
    /// Seconds the scheduler took to visit every loaded campaign once (their first visit).
    pub first_visits_seconds: f64,
    /// (running campaigns, mean pass ms, visits in the window).
    pub pass_curve: Vec<(f64, f64, f64)>,
    pub profiles: Vec<profile::Profile>,
    pub plans: Vec<(String, String)>,
}

/// Server and PostgreSQL CPU with no campaign, then pass latency at each step of running campaigns
/// whose windows are closed (they open in 6 hours), then CPU at the last step.
pub async fn idle(stack: &Stack, steps: &[usize], seconds: u64) -> anyhow::Result<Idle> {
    let pool = PgPool::connect(&stack.database_url).await?;
    let (user, _) = campaign_user(stack, 10_000, 0).await?;
    let cores = |profile: &profile::Profile| {
        profile.cores.iter().filter(|(group, _)| group != "client+simulator").map(|(_, c)| c).sum::<f64>()
    };
    let window = profile::Window::start(stack).await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let baseline = window.finish("idle stack, no campaign", Some(stack), None).await;
    let now = Utc::now().num_seconds_from_midnight();
    let closed = (now + 6 * 3_600, now + 8 * 3_600);
    let mut loaded = 0;
    let mut pass_curve = Vec::new();
    let mut first_visits_seconds = 0.0;
    for &step in steps {
        load_campaigns(&pool, user, step - loaded, closed, 1).await?;
        loaded = step;
        first_visits_seconds = wait_until_nothing_due(&pool, Duration::from_secs(600)).await?;
        // As autovacuum would after so many changed rows.
        sqlx::query("ANALYZE campaigns, campaign_contacts").execute(&pool).await?;
        let (pass_ms, visits) = passes_over(stack, seconds.min(5)).await?;
        eprintln!("  {loaded} running campaigns, nothing due: pass {pass_ms:.3} ms, {visits} visits");
        pass_curve.push((loaded as f64, pass_ms, visits));
    }
    let window = profile::Window::start(stack).await;
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let with_campaigns =
        window.finish(&format!("{loaded} running campaigns, nothing due"), Some(stack), None).await;
    let plans = vec![(
        format!("scheduler pass: the running campaigns due now ({loaded} running, none due)"),
        explain(
            &pool,
            "SELECT id, next_due_at FROM campaigns WHERE next_due_at <= now() AND status = 'running'
              ORDER BY next_due_at, id LIMIT 100",
            &[],
        )
        .await?,
    )];
    pool.close().await;
    Ok(Idle {
        baseline_cores: cores(&baseline),
        loaded_cores: cores(&with_campaigns),
        campaigns: loaded,
        first_visits_seconds,
        pass_curve,
        profiles: vec![baseline, with_campaigns],
        plans,
    })
}

pub struct WindowsOpen {
    pub campaigns: usize,
    pub lines: u32,
    /// Seconds from the windows' opening until every line is taken.
    pub campaigns_seconds: f64,
    /// Seconds from sending as many direct calls as there are lines until every line is taken.
    pub direct_seconds: f64,
}

/// Waits until the simulator holds `lines` calls; returns the seconds since `from`.
async fn until_lines_full(stack: &Stack, lines: u32, from: Instant) -> anyhow::Result<f64> {
    loop {
        if stack.sim.stats().open_now >= lines {
            return Ok(from.elapsed().as_secs_f64());
        }
        anyhow::ensure!(from.elapsed() < Duration::from_secs(120), "lines not full after 120 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `campaigns` campaigns (one slot each, three contacts) whose windows open in the same second, on
/// a stack of `lines` account lines that holds calls; the baseline fills the lines with direct calls.
pub async fn windows_open(stack: &Stack, campaigns: usize, lines: u32) -> anyhow::Result<WindowsOpen> {
    use futures::StreamExt;
    let pool = PgPool::connect(&stack.database_url).await?;
    let (_, key) = campaign_user(stack, 0, i64::from(lines)).await?;
    let sent = Instant::now();
    let answers: Vec<anyhow::Result<(u16, Value)>> = futures::stream::iter(0..lines)
        .map(|n| {
            let key = key.clone();
            async move { stack.call(&key, &format!("+1666{n:07}")).await }
        })
        .buffer_unordered(lines as usize)
        .collect()
        .await;
    anyhow::ensure!(answers.iter().all(|a| a.as_ref().is_ok_and(|(s, _)| *s == 201)), "direct calls refused");
    let direct_seconds = until_lines_full(stack, lines, sent).await?;
    stack.sim.hang_up_all();
    let drained = Instant::now();
    while metric(stack, "switchboard_account_lines_in_use").await? > 0.0 {
        anyhow::ensure!(drained.elapsed() < Duration::from_secs(60), "lines not freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Users of 100 campaign slots each, one slot per campaign.
    let users = campaigns.div_ceil(100);
    let lead = 20;
    // A whole second: windows are stored to the second.
    let opens = (Utc::now() + TimeDelta::seconds(lead)).with_nanosecond(0).context("a whole second")?;
    let start = opens.num_seconds_from_midnight();
    for n in 0..users {
        let (user, _) = campaign_user(stack, 100, 0).await?;
        load_campaigns(&pool, user, (campaigns - n * 100).min(100), (start, start + 7_200), 3).await?;
    }
    wait_until_nothing_due(&pool, Duration::from_secs(lead as u64 - 2)).await?;
    let until_open = (opens - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(until_open).await;
    anyhow::ensure!(stack.sim.stats().open_now == 0, "a campaign dialled before its window opened");
    let campaigns_seconds = until_lines_full(stack, lines, Instant::now()).await?;
    stack.sim.hang_up_all();
    pool.close().await;
    Ok(WindowsOpen { campaigns, lines, campaigns_seconds, direct_seconds })
}

pub struct LargeCampaign {
    pub contacts: usize,
    pub load_seconds: f64,
    pub per_minute: i32,
    /// Calls placed in the first 60 seconds after the start.
    pub first_minute: i64,
    /// Calls placed to a contact whose window was closed when the scheduler dialled it (judged by
    /// PostgreSQL's own time zones, not the code under test).
    pub out_of_window: i64,
    /// The most calls started within any 60 seconds.
    pub busiest_minute: i64,
    /// Mean scheduler pass while it ran.
    pub pass_ms: f64,
    /// Seconds a window edit took (every zone's period computed again).
    pub edit_seconds: f64,
    /// Zones whose window (09:00–17:00 local) was open at the start.
    pub open_zones: usize,
}

/// One campaign of `contacts` contacts across [`ZONES`] (window 09:00–17:00 local, every day),
/// `calls_per_minute` = `per_minute`, watched for `seconds` (at least 60 for a first minute).
pub async fn large_campaign(
    stack: &Stack,
    contacts: usize,
    per_minute: i32,
    seconds: u64,
) -> anyhow::Result<LargeCampaign> {
    let pool = PgPool::connect(&stack.database_url).await?;
    let (_, key) = campaign_user(stack, 100, 0).await?;
    let created: Value = stack
        .http
        .post(format!("{}/v1/campaigns", stack.base_url))
        .bearer_auth(&key)
        .json(&json!({
            "name": "a million across twenty zones", "agent_id": AGENT, "max_concurrency": 100,
            "calls_per_minute": per_minute,
            "window": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "start": "09:00", "end": "17:00"}
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id: Uuid = created["id"].as_str().context("campaign id")?.parse()?;
    let loading = Instant::now();
    let all: Vec<NewContact> = (0..contacts)
        .map(|n| {
            Ok(NewContact {
                phone_number: PhoneNumber::parse(&format!("+1{}", 2_000_000_000 + n))
                    .map_err(anyhow::Error::msg)?,
                name: None,
                timezone: Some(ZONES[n % ZONES.len()].to_owned()),
                variables: serde_json::Map::new(),
            })
        })
        .collect::<anyhow::Result<_>>()?;
    for chunk in all.chunks(10_000) {
        let mut tx = pool.begin().await?;
        call_service::campaigns::add_contacts(&mut tx, id, chunk, Utc::now()).await?;
        tx.commit().await?;
    }
    drop(all);
    sqlx::query("ANALYZE campaign_contacts").execute(&pool).await?;
    let load_seconds = loading.elapsed().as_secs_f64();
    let open_zones: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM unnest($1::text[]) z WHERE (now() AT TIME ZONE z)::time >= '09:00' AND (now() AT TIME ZONE z)::time < '17:00'",
    )
    .bind(&ZONES[..])
    .fetch_one(&pool)
    .await?;

    let started_at = Utc::now();
    campaign_action(stack, &key, id, "start").await?;
    let (pass_ms, _) = passes_over(stack, seconds).await?;
    campaign_action(stack, &key, id, "pause").await?;
    let row: (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE c.created_at < $2 + interval '60 seconds'),
                count(*) FILTER (WHERE NOT ((cc.last_attempt_at AT TIME ZONE cc.timezone)::time >= '09:00'
                                            AND (cc.last_attempt_at AT TIME ZONE cc.timezone)::time < '17:00')),
                coalesce((SELECT max(n) FROM (SELECT count(*) OVER (ORDER BY created_at
                                                   RANGE BETWEEN CURRENT ROW AND interval '59.999 seconds' FOLLOWING) AS n
                                                FROM calls WHERE campaign_id = $1) w), 0)
           FROM calls c JOIN campaign_contacts cc ON cc.id = c.contact_id
          WHERE c.campaign_id = $1",
    )
    .bind(id)
    .bind(started_at)
    .fetch_one(&pool)
    .await?;
    // A window edit recomputes every zone's period (what a visit does for a zone whose window closed).
    let editing = Instant::now();
    stack
        .http
        .patch(format!("{}/v1/campaigns/{id}", stack.base_url))
        .bearer_auth(&key)
        .json(&json!({"window": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "10:00", "end": "18:00"}}))
        .send()
        .await?
        .error_for_status()?;
    let edit_seconds = editing.elapsed().as_secs_f64();
    stack.sim.hang_up_all();
    pool.close().await;
    Ok(LargeCampaign {
        edit_seconds,
        contacts,
        load_seconds,
        per_minute,
        first_minute: row.0,
        out_of_window: row.1,
        busiest_minute: row.2,
        pass_ms,
        open_zones: open_zones as usize,
    })
}
