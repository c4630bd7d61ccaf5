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

/// Issue 20: `queued` meant both "waiting for a slot" and "Bolna's queue". Calls (and their event
/// history) in Bolna's pre-dial statuses become `placed`, Bolna's word moving to provider_status;
/// waiting calls and everything else keep their status.
#[tokio::test]
async fn calls_bolna_had_accepted_become_placed_and_waiting_calls_stay_queued() {
    let url = database_at(20261203000008).await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let user: (uuid::Uuid,) =
        sqlx::query_as("INSERT INTO users (id, name) VALUES (gen_random_uuid(), 'old') RETURNING id")
            .fetch_one(&mut conn)
            .await
            .unwrap();
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
