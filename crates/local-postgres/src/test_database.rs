//! A fresh, migrated database for one test. Uses the server in `DATABASE_URL` when set; otherwise
//! one private cluster per test run (started by whichever test process comes first, reused by the
//! rest and by later runs, `fsync=off`) under the target directory.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;

use crate::{create_fresh_database, drop_stale_databases, Cluster, ClusterOptions};

const PREFIX: &str = "sbtest";

/// Creates a fresh database migrated by `migrator` and returns its URL. `target_tmp_dir` is where a
/// private cluster may live (pass `env!("CARGO_TARGET_TMPDIR")`).
pub async fn fresh_test_database(target_tmp_dir: &str, migrator: &Migrator) -> anyhow::Result<String> {
    let admin_url = admin_url(Path::new(target_tmp_dir)).await?;
    create_fresh_database(&admin_url, migrator, PREFIX).await
}

async fn admin_url(target_tmp_dir: &Path) -> anyhow::Result<String> {
    static ADMIN_URL: OnceLock<String> = OnceLock::new();
    if let Some(url) = ADMIN_URL.get() {
        return Ok(url.clone());
    }
    let url = match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            let options = ClusterOptions::for_tests(target_tmp_dir.join("switchboard-test-pg"));
            let cluster = tokio::task::spawn_blocking(move || Cluster::ensure_running(&options))
                .await
                .context("starting the test cluster")??;
            cluster.url("postgres")
        }
    };
    // Databases of earlier runs: gone after an hour, so a long-lived cluster does not fill the disk.
    drop_stale_databases(&url, PREFIX, Duration::from_secs(3600)).await?;
    Ok(ADMIN_URL.get_or_init(|| url).clone())
}
