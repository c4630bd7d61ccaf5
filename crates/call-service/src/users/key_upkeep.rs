//! Keeps an instance's [`KeyCache`] honest: it drops revoked keys within about two seconds and
//! writes when keys were last used about once a minute.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::key_cache::KeyCache;
use super::key_repository::{record_key_uses, revoked_keys_since};

/// How often the revocations are read: a revoked key works at most this long (plus one read).
pub const REVOCATION_POLL: Duration = Duration::from_secs(1);
/// Each read goes this far back before the previous one, so a revocation committed late (its
/// `revoked_at` is its transaction's start) is still seen.
const REVOCATION_OVERLAP: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// How often `last_used_at` is written: its precision.
pub const USE_FLUSH: Duration = Duration::from_secs(60);

/// Runs until `shutdown`, then writes the last uses.
pub async fn run_key_upkeep(pool: PgPool, cache: Arc<KeyCache>, shutdown: CancellationToken) {
    let mut since: Option<DateTime<Utc>> = None;
    let mut last_flush = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(REVOCATION_POLL) => {}
        }
        since = forget_revoked(&pool, &cache, since).await;
        if last_flush.elapsed() >= USE_FLUSH {
            last_flush = tokio::time::Instant::now();
            flush_uses(&pool, &cache).await;
        }
    }
    flush_uses(&pool, &cache).await;
}

/// Reads the revocations since `since` and drops those keys; returns where the next read starts.
async fn forget_revoked(
    pool: &PgPool,
    cache: &KeyCache,
    since: Option<DateTime<Utc>>,
) -> Option<DateTime<Utc>> {
    let read = async {
        let mut conn = pool.acquire().await?;
        revoked_keys_since(&mut conn, since.map(|at| at - REVOCATION_OVERLAP)).await
    };
    match read.await {
        Ok(revoked) => {
            let dropped = cache.forget_keys(&revoked.key_hashes);
            if dropped > 0 {
                tracing::info!(dropped, "revoked API keys dropped from the cache");
            }
            Some(revoked.read_at)
        }
        Err(error) => {
            // Cached keys still expire after auth.key_cache_seconds.
            tracing::warn!(error = %error, "could not read API key revocations");
            since
        }
    }
}

async fn flush_uses(pool: &PgPool, cache: &KeyCache) {
    let uses = cache.take_uses();
    if uses.is_empty() {
        return;
    }
    let written = async { record_key_uses(&mut *pool.acquire().await?, &uses).await };
    if let Err(error) = written.await {
        tracing::warn!(error = %error, keys = uses.len(), "could not record API key uses");
    }
}
