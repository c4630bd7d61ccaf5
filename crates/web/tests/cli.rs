//! The `switchboard` binary as an operator uses it: `migrate`, `users create`, `serve` against an
//! existing PostgreSQL, and the one-line errors for a wrong database URL.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

async fn fresh_database() -> String {
    local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &schema::MIGRATOR)
        .await
        .expect("database")
}

/// A fresh, empty (unmigrated) database on the test server.
async fn empty_database() -> String {
    let migrated = fresh_database().await;
    let pool = sqlx::PgPool::connect(&migrated).await.expect("connect");
    sqlx::raw_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        .execute(&pool)
        .await
        .expect("empty it");
    pool.close().await;
    migrated
}

fn switchboard(database_url: &str, args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD__DATABASE__URL", database_url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the binary runs")
}

#[tokio::test]
async fn migrate_brings_an_empty_database_to_the_latest_version() {
    let url = empty_database().await;

    let output = switchboard(&url, &["migrate"]);

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(&schema::latest_version().to_string()), "{stdout}");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE tablename IN ('users','calls','active_calls','api_keys','webhook_events')")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(tables, 5);
}

#[tokio::test]
async fn users_create_prints_a_working_key_once_and_stores_only_its_hash() {
    let url = fresh_database().await;

    let output = switchboard(&url, &["users", "create", "--name", "Acme", "--direct-limit", "3"]);

    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let key = stdout.split_whitespace().find(|word| word.starts_with("sb_")).expect("a key is printed");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let mut conn = pool.acquire().await.expect("conn");
    let user =
        call_service::users::find_user_by_api_key(&mut conn, key).await.expect("query").expect("key works");
    assert_eq!((user.name.as_str(), user.direct_call_limit, user.campaign_call_limit), ("Acme", 3, 5));
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE key_prefix = $1 AND position($2::bytea in key_hash) = 0",
    )
    .bind(&key[..9])
    .bind(key.as_bytes())
    .fetch_one(&mut *conn)
    .await
    .expect("count");
    assert_eq!(stored, 1, "the key text itself is not stored");
}

#[tokio::test]
async fn serve_runs_against_an_existing_database_and_stops_cleanly_on_sigterm() {
    let url = empty_database().await;
    assert!(switchboard(&url, &["migrate"]).status.success());
    let created = switchboard(&url, &["users", "create", "--name", "Watcher"]);
    let stdout = String::from_utf8_lossy(&created.stdout).into_owned();
    let key = stdout.split_whitespace().find(|word| word.starts_with("sb_")).expect("a key").to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let mut server = Command::new(BINARY)
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD__DATABASE__URL", &url)
        .env("SWITCHBOARD__SERVER__PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("serve starts");
    let ready = wait_for_status(&format!("http://127.0.0.1:{port}/readyz"), 200).await;
    // An open event stream never finishes by itself: shutdown must end it, not wait for it.
    let mut stream = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/v1/events"))
        .bearer_auth(&key)
        .send()
        .await
        .expect("the stream opens");
    assert_eq!(stream.status(), 200);
    assert!(stream.chunk().await.expect("reads").is_some(), "the opening comment");
    let stopping = std::time::Instant::now();
    Command::new("kill").args(["-TERM", &server.id().to_string()]).status().expect("kill");
    let status = common::wait_for_exit(&mut server, Duration::from_secs(20));

    assert!(ready, "/readyz never answered 200");
    assert!(status.success(), "exit status {status:?}");
    assert!(stopping.elapsed() < std::time::Duration::from_secs(10), "took {:?}", stopping.elapsed());
    let rest = tokio::time::timeout(std::time::Duration::from_secs(5), stream.chunk()).await;
    assert!(matches!(rest, Ok(Ok(None)) | Ok(Err(_))), "the stream ended: {rest:?}");
}

#[tokio::test]
async fn a_wrong_database_url_gives_one_line_naming_the_problem() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cases = [
        (format!("postgres://postgres@127.0.0.1:{port}/x"), "cannot reach the database"),
        ("not a url".to_owned(), "database.url"),
    ];
    for (url, expected) in cases {
        for command in ["migrate", "serve"] {
            let output = switchboard(&url, &[command]);
            let stderr = String::from_utf8_lossy(&output.stderr);

            assert_eq!(output.status.code(), Some(1), "{command} with {url}: {stderr}");
            assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
            assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{stderr}");
        }
    }
}

async fn wait_for_status(url: &str, expected: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(url).await {
            if response.status().as_u16() == expected {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test]
async fn campaigns_import_loads_a_hundred_thousand_contacts_reporting_bad_rows() {
    let url = fresh_database().await;
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let user = uuid::Uuid::new_v4();
    let campaign = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO users (id, name) VALUES ($1, 'importer')")
        .bind(user)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO campaigns (id, user_id, name, agent_id, max_concurrency) VALUES ($1, $2, 'big', 'a', 1)",
    )
    .bind(campaign)
    .bind(user)
    .execute(&pool)
    .await
    .unwrap();
    let mut csv = String::from("contact_number,name,order_id\n");
    for n in 0..100_000 {
        csv.push_str(&format!("+1555{n:07},Person {n},ORD-{n}\n"));
    }
    csv.push_str("+15550000007,Again,dup\nnot-a-number,Nobody,x\n");
    let file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("contacts-{campaign}.csv"));
    std::fs::write(&file, csv).unwrap();

    let output = switchboard(
        &url,
        &["campaigns", "import", file.to_str().unwrap(), "--campaign", &campaign.to_string(), "--quiet"],
    );

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("imported 100000 contacts (1 duplicates skipped, 1 rows rejected)"), "{stdout}");
    assert!(stderr.contains("line 100003: `not-a-number`"), "{stderr}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM campaign_contacts WHERE campaign_id = $1")
        .bind(campaign)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(stored, 100_000);
    let variables: serde_json::Value =
        sqlx::query_scalar("SELECT variables FROM campaign_contacts WHERE phone_number = '+15550000042'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(variables["order_id"], "ORD-42");
    std::fs::remove_file(file).ok();
}
