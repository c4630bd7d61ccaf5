//! Fresh, migrated databases on demand (one per test), made by copying a migrated template.
//!
//! The template's name carries a digest of the migrations, so a changed migration gets a new
//! template instead of a stale one. Parallel processes serialise the template's creation with an
//! advisory lock; copies are then cheap (`CREATE DATABASE ... TEMPLATE`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::{Connection, Executor, PgConnection};

/// Creates a new database migrated by `migrator`, named `<prefix>_<unix seconds>_<random>`, on the
/// server at `admin_url` (a URL whose user may create databases), and returns its URL.
pub async fn create_fresh_database(
    admin_url: &str,
    migrator: &Migrator,
    prefix: &str,
) -> anyhow::Result<String> {
    let template = template_name(migrator);
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {}", redact(admin_url)))?;
    ensure_template(&mut admin, admin_url, migrator, &template).await?;

    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let name = format!("{prefix}_{seconds}_{}", &suffix[..12]);
    admin
        .execute(format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#).as_str())
        .await
        .with_context(|| format!("creating database {name}"))?;
    admin.close().await.ok();
    Ok(with_database(admin_url, &name))
}

/// Creates `database` on the server at `admin_url` unless it exists, and returns its URL.
pub async fn ensure_database(admin_url: &str, database: &str) -> anyhow::Result<String> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {}", redact(admin_url)))?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut admin)
        .await?;
    if !exists {
        admin.execute(format!(r#"CREATE DATABASE "{database}""#).as_str()).await?;
    }
    admin.close().await.ok();
    Ok(with_database(admin_url, database))
}

/// Drops the database `url` names, with its connections, through the server at `admin_url`.
pub async fn drop_database(admin_url: &str, url: &str) -> anyhow::Result<()> {
    let name = url.rsplit('/').next().and_then(|rest| rest.split('?').next()).unwrap_or_default();
    anyhow::ensure!(!name.is_empty() && !name.contains('"'), "no database name in {}", redact(url));
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {}", redact(admin_url)))?;
    admin.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str()).await?;
    admin.close().await.ok();
    Ok(())
}

/// Drops databases named `<prefix>_<unix seconds>_...` that are older than `age` (left behind by
/// earlier test runs). Returns how many were dropped.
pub async fn drop_stale_databases(admin_url: &str, prefix: &str, age: Duration) -> anyhow::Result<usize> {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {}", redact(admin_url)))?;
    let names: Vec<String> = sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE $1")
        .bind(format!("{prefix}\\_%"))
        .fetch_all(&mut admin)
        .await?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let mut dropped = 0;
    for name in names {
        let created = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('_'))
            .and_then(|rest| rest.split('_').next())
            .and_then(|seconds| seconds.parse::<u64>().ok());
        if matches!(created, Some(created) if now.saturating_sub(created) > age.as_secs()) {
            admin.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str()).await?;
            dropped += 1;
        }
    }
    admin.close().await.ok();
    Ok(dropped)
}

async fn ensure_template(
    admin: &mut PgConnection,
    admin_url: &str,
    migrator: &Migrator,
    template: &str,
) -> anyhow::Result<()> {
    // Any constant works as the lock key, as long as every process uses the same one.
    const TEMPLATE_LOCK: i64 = 0x5357_4954_4348;
    sqlx::query("SELECT pg_advisory_lock($1)").bind(TEMPLATE_LOCK).execute(&mut *admin).await?;
    let result = async {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(template)
            .fetch_one(&mut *admin)
            .await?;
        if !exists {
            let building = format!("{template}_building");
            admin.execute(format!(r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#).as_str()).await?;
            admin.execute(format!(r#"CREATE DATABASE "{building}""#).as_str()).await?;
            let mut conn = PgConnection::connect(&with_database(admin_url, &building)).await?;
            migrator.run(&mut conn).await.context("migrating the template database")?;
            conn.close().await?;
            admin.execute(format!(r#"ALTER DATABASE "{building}" RENAME TO "{template}""#).as_str()).await?;
        }
        anyhow::Ok(())
    }
    .await;
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(TEMPLATE_LOCK).execute(&mut *admin).await?;
    result
}

fn template_name(migrator: &Migrator) -> String {
    // FNV-1a over every migration's version and checksum: stable across processes and builds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for migration in migrator.iter() {
        for byte in migration.version.to_le_bytes().iter().chain(migration.checksum.iter()) {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("switchboard_template_{hash:016x}")
}

/// `admin_url` with its database name replaced by `database` (query string kept).
pub(crate) fn with_database(admin_url: &str, database: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
