//! The connection pool, built from settings, and the start-up checks around it.

use std::time::Duration;

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgPool};

use crate::settings::DatabaseSettings;

/// Parses `database.url` into connection options; the message names the key, never the password.
pub fn connect_options(settings: &DatabaseSettings) -> anyhow::Result<PgConnectOptions> {
    let url = settings.url.as_ref().context(
        "database.url is not set: set SWITCHBOARD__DATABASE__URL or DATABASE_URL, \
         or run `switchboard dev` for a private database",
    )?;
    url.expose_secret()
        .parse::<PgConnectOptions>()
        .map_err(|error| anyhow::anyhow!("database.url is malformed: {error}"))
}

/// A pool that connects on first use, so the process starts (and `/readyz` can say 503) while the
/// database is down.
pub fn lazy_pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    Ok(pool_options(settings).connect_lazy_with(connect_options(settings)?))
}

/// The pool of the batched hot statements (see `call_service::batch`): admissions, Bolna's answers
/// and live webhooks, each sent for many calls at once. With `database.batch_generic_plans` its
/// connections plan each of those statements once and as index lookups:
/// - `plan_cache_mode = force_generic_plan`: PostgreSQL would otherwise plan them anew on every
///   execution — their arrays make every custom plan look cheaper than the generic one — and
///   planning was most of their database time (issue 8: 1.0 ms of planning against 0.15 ms of
///   execution for the admission's decision query);
/// - `enable_seqscan = off`: a generic plan made while a table is nearly empty (a new database, the
///   first minutes after a deploy) would scan it whole and keep doing so as it grows until
///   autovacuum's next ANALYZE; every one of these statements finds its rows by key, so an index
///   path is always the right one (a statement without one still gets a sequential scan);
/// - `enable_hashjoin = off`, `enable_mergejoin = off`: for the same reason, joins are nested loops
///   over the batch's few rows with an index lookup each. A generic plan cannot know how many rows
///   a batch brings (the planner assumes 100), and made while `calls` was small it hashed the whole
///   table through its primary key on every execution, growing with the table (the record statement:
///   0.8 → 2.7 ms in the benchmark's steady run until this was set).
///
/// Everything else (listings, whose best plans depend on their filters) runs on the main pool with
/// PostgreSQL's defaults. `database.batch_workers` connections per kind (three kinds) plus two for
/// the one-by-one retries of a failed batch; lazy like the main pool.
pub fn lazy_batch_pool(settings: &DatabaseSettings) -> anyhow::Result<PgPool> {
    let mut options = connect_options(settings)?;
    if settings.batch_generic_plans {
        options = options.options([
            ("plan_cache_mode", "force_generic_plan"),
            ("enable_seqscan", "off"),
            ("enable_hashjoin", "off"),
            ("enable_mergejoin", "off"),
        ]);
    }
    let connections =
        u32::try_from(settings.batch_workers.saturating_mul(3).saturating_add(2)).unwrap_or(u32::MAX);
    Ok(pool_options(settings).max_connections(connections).min_connections(0).connect_lazy_with(options))
}

/// Checks that the database answers, with a one-line error naming the target and the cause
/// (refused, unknown host, authentication, missing database) when it does not.
pub async fn check_reachable(settings: &DatabaseSettings) -> anyhow::Result<()> {
    let options = connect_options(settings)?;
    let target = format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("(default)")
    );
    let connection =
        tokio::time::timeout(settings.acquire_timeout() + Duration::from_secs(1), options.connect())
            .await
            .map_err(|_| anyhow::anyhow!("cannot reach the database at {target}: timed out"))?
            .map_err(|error| anyhow::anyhow!("cannot reach the database at {target}: {error}"))?;
    connection.close().await.ok();
    Ok(())
}

/// Pool options. sqlx pings every connection before handing it out by default; here only one that
/// sat idle for `database.ping_idle_after_seconds`, where a dead connection (a restarted server,
/// a proxy's idle cut) is likely. A connection that fails its ping is closed and another one used.
fn pool_options(settings: &DatabaseSettings) -> PgPoolOptions {
    let ping_idle_after = settings.ping_idle_after();
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .min_connections(settings.min_connections)
        .acquire_timeout(settings.acquire_timeout())
        .test_before_acquire(false)
        .before_acquire(move |connection, meta| {
            Box::pin(async move {
                if meta.idle_for >= ping_idle_after {
                    connection.ping().await?;
                }
                Ok(true)
            })
        })
}
