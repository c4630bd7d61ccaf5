//! `switchboard migrate`: apply pending migrations.

use anyhow::Context;
use sqlx::PgPool;

use crate::settings::Settings;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = crate::database::lazy_pool(&settings.database)?;
    crate::database::check_reachable(&settings.database).await?;
    let version = apply(&pool).await?;
    println!("database migrated to version {version}");
    Ok(())
}

/// Applies pending migrations and returns the version the database is at.
pub async fn apply(pool: &PgPool) -> anyhow::Result<i64> {
    schema::MIGRATOR.run(pool).await.context("applying migrations")?;
    Ok(schema::latest_version())
}
