//! Migrations that convert data: rows written before them read the way the code today expects.

use sqlx::migrate::Migrator;
use sqlx::{Connection, PgConnection};

/// A database migrated up to (and including) `version`, then the rest applied by the caller.
async fn database_at(version: i64) -> String {
    let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("migrations-to-{version}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&folder).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let number: i64 = name.split('_').next().unwrap().parse().unwrap();
        if number <= version {
            std::fs::copy(&path, folder.join(&name)).unwrap();
        }
    }
    let older = Migrator::new(folder.as_path()).await.unwrap();
    let url = local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &older).await.unwrap();
    std::fs::remove_dir_all(&folder).unwrap();
    url
}

/// A user written as the older schema has them.
async fn old_user(conn: &mut PgConnection) -> (uuid::Uuid,) {
    sqlx::query_as("INSERT INTO users (id, name) VALUES (gen_random_uuid(), 'old') RETURNING id")
        .fetch_one(conn)
        .await
        .unwrap()
}

/// Issue 20: `queued` meant both "waiting for a slot" and "Bolna's queue". Calls (and their event
/// history) in Bolna's pre-dial statuses become `placed`, Bolna's word moving to provider_status;
/// waiting calls and everything else keep their status.
#[tokio::test]
async fn calls_bolna_had_accepted_become_placed_and_waiting_calls_stay_queued() {
    let url = database_at(20261203000008).await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let user = old_user(&mut conn).await;
    let rows = [
        ("queued", None, "queued", None),
        ("queued", Some("e-1"), "placed", Some("queued")),
        ("scheduled", Some("e-2"), "placed", Some("scheduled")),
        ("rescheduled", Some("e-3"), "placed", Some("rescheduled")),
        ("ringing", Some("e-4"), "ringing", None),
        ("completed", Some("e-5"), "completed", None),
    ];
    for (n, (status, execution, _, _)) in rows.iter().enumerate() {
        sqlx::query(
            "INSERT INTO calls (id, user_id, call_type, agent_id, recipient_phone_number, status, bolna_execution_id, created_at)
             VALUES (gen_random_uuid(), $1, 'direct', 'agent', '+15550001111', $2, $3, now() + make_interval(secs => $4))",
        )
        .bind(user.0)
        .bind(status)
        .bind(execution)
        .bind(n as f64)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    let events_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events").fetch_one(&mut conn).await.unwrap();

    schema::MIGRATOR.run(&mut conn).await.unwrap();

    let calls: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT status, provider_status FROM calls ORDER BY created_at")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let expected: Vec<(String, Option<String>)> = rows
        .iter()
        .map(|(_, _, status, provider)| (status.to_string(), provider.map(str::to_owned)))
        .collect();
    assert_eq!(calls, expected);
    let history: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT status, payload->>'status', payload->>'provider_status' FROM events WHERE kind = 'call.updated' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(history.len() as i64, events_before, "the conversion itself is not an event");
    let converted: Vec<(String, String, Option<String>)> = expected
        .iter()
        .zip(&rows)
        .map(|((status, provider), (old, _, _, _))| {
            (
                status.clone(),
                status.clone(),
                provider.clone().or_else(|| (status == "placed").then(|| old.to_string())),
            )
        })
        .collect();
    assert_eq!(history, converted, "the event history speaks today's names");
    // The queue is only the waiting call.
    let waiting: i64 =
        sqlx::query_scalar("SELECT count(*) FROM slot_queue").fetch_one(&mut conn).await.unwrap();
    assert_eq!(waiting, 1);
    let refused =
        sqlx::query("UPDATE calls SET status = 'scheduled' WHERE status = 'placed'").execute(&mut conn).await;
    assert!(refused.is_err(), "Bolna's pre-dial words are no longer call statuses");
}

/// Issue 18: the zones of contacts waiting before the scheduler kept due instants get their period
/// at their campaign's first visit (the migration marks it closed), so nothing is dialled outside a
/// window after the upgrade; a retry keeps its time; a running campaign is due at once, any other
/// not at all.
#[tokio::test]
async fn contacts_waiting_before_zone_periods_wait_for_their_window_after_the_first_visit() {
    use chrono::{TimeDelta, Utc};

    use crate::helpers::{eventually, sim_config, spawn_instance_with_clock};

    // The test's clock runs after the real one (the migration writes the real now()): 20:00 UTC two
    // days ahead, 01:30 the next morning in Kolkata (closed until 03:30 UTC).
    let evening = (Utc::now().date_naive() + TimeDelta::days(2)).and_hms_opt(20, 0, 0).unwrap().and_utc();
    let opening = evening + TimeDelta::minutes(7 * 60 + 30);
    let retry_at = evening + TimeDelta::hours(9);

    let url = database_at(20261203000010).await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let user = old_user(&mut conn).await;
    let mut campaigns = Vec::new();
    for status in ["running", "paused"] {
        let id: (uuid::Uuid,) = sqlx::query_as(
            "INSERT INTO campaigns (id, user_id, name, agent_id, timezone, window_days, window_start, window_end,
                                    max_concurrency, status)
             VALUES (gen_random_uuid(), $1, 'old', 'agent', 'Asia/Kolkata', '{0,1,2,3,4,5,6}', '09:00', '17:00', 2, $2)
             RETURNING id",
        )
        .bind(user.0)
        .bind(status)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "INSERT INTO campaign_contacts (id, campaign_id, phone_number, status, next_attempt_at)
             VALUES (gen_random_uuid(), $1, '+919800000001', 'pending', NULL),
                    (gen_random_uuid(), $1, '+919800000002', 'retry_scheduled', $2)",
        )
        .bind(id.0)
        .bind(retry_at)
        .execute(&mut conn)
        .await
        .unwrap();
        campaigns.push(id.0);
    }

    schema::MIGRATOR.run(&mut conn).await.unwrap();
    let due: Vec<Option<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_scalar("SELECT next_due_at FROM campaigns ORDER BY status DESC")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(due[0].is_some() && due[1].is_none(), "running: due at once; paused: not due ({due:?})");

    let clock = std::sync::Arc::new(call_service::clock::ManualClock::new(evening));
    let sim = bolna_sim::Simulator::start(sim_config(), "127.0.0.1:0").unwrap();
    let app = spawn_instance_with_clock(&url, sim, |_| {}, clock.clone()).await;
    let periods = || async {
        sqlx::query_as::<_, (String, chrono::DateTime<chrono::Utc>)>(
            "SELECT zone, opens FROM campaign_zones WHERE campaign_id = $1 AND closes > $2 ORDER BY zone",
        )
        .bind(campaigns[0])
        .bind(evening)
        .fetch_all(&app.pool)
        .await
        .unwrap()
    };
    // The first visit computes the zone's period.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while periods().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the first visit did not compute the period");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(periods().await, vec![("".to_owned(), opening)], "09:00 in Kolkata, the campaign's zone");
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(app.sim.stats().accepted, 0, "closed in Kolkata");
    clock.set(opening + TimeDelta::minutes(1));
    eventually("the pending contact, once its window opens", || app.sim.stats().accepted == 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(app.sim.stats().accepted, 1, "the retry waits for its own time");
    clock.set(retry_at);
    eventually("the retry", || app.sim.stats().accepted == 2).await;
}
