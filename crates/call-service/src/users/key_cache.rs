//! API keys seen recently, by their SHA-256, with their owners: a request then costs no database
//! round trip to authenticate (issue 8: it was one of the three round trips of a call start).
//!
//! How a cached key stops working:
//! - expired: the entry carries the key's expiry, checked on every use;
//! - revoked: every instance reads the revocations of the last seconds once a second
//!   ([`super::key_upkeep`]) and drops those keys, so a revoked key stops working everywhere within
//!   about two seconds;
//! - in any case an entry lives at most `ttl` (`auth.key_cache_seconds`; zero turns the cache
//!   off): the bound when an instance cannot read the revocations.
//!
//! Only keys that worked are kept — an unknown key is looked up every time — and at most
//! `capacity` of them. What the cached user says of the user's name and limits may be up to
//! `ttl` old: handlers use it for the user's identity only. Limits are read from the database where
//! they are enforced (admission) and where they are shown (`GET /v1/concurrency`).
//!
//! The cache also remembers when each key was last used, for [`super::key_upkeep`] to write about
//! once a minute: never a write per request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::api_key::ApiKeyHash;
use super::key_repository::{find_key_owner, KeyOwner};

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], (KeyOwner, Instant)>>,
    /// Keys used since the last write of `last_used_at`, with their latest use.
    uses: Mutex<HashMap<Uuid, DateTime<Utc>>>,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl KeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
            uses: Mutex::new(HashMap::new()),
        }
    }

    /// The owner of `presented`, a key neither revoked nor expired: from the cache when seen within
    /// `ttl`, else from the database. The use is remembered.
    pub async fn owner_of(&self, pool: &PgPool, presented: &str) -> sqlx::Result<Option<KeyOwner>> {
        if !ApiKeyHash::plausible(presented) {
            return Ok(None);
        }
        let hash = ApiKeyHash::of(presented);
        let now = Utc::now();
        let owner = match self.cached(&hash) {
            Some(owner) => Some(owner),
            None => {
                let owner = find_key_owner(&mut *pool.acquire().await?, &hash, now).await?;
                if let Some(owner) = &owner {
                    self.remember(hash, owner.clone());
                }
                owner
            }
        };
        let Some(owner) = owner.filter(|owner| !owner.expired_at(now)) else { return Ok(None) };
        locked(&self.uses).insert(owner.key_id, now);
        Ok(Some(owner))
    }

    fn cached(&self, hash: &ApiKeyHash) -> Option<KeyOwner> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = locked(&self.entries);
        entries.get(&hash.0).filter(|(_, seen)| seen.elapsed() < self.ttl).map(|(owner, _)| owner.clone())
    }

    fn remember(&self, hash: ApiKeyHash, owner: KeyOwner) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = locked(&self.entries);
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (_, seen)| seen.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(hash.0, (owner, Instant::now()));
    }

    /// Drops every cached key of `user` (on this instance), e.g. after its limits changed.
    pub fn forget_user(&self, user: crate::UserId) {
        locked(&self.entries).retain(|_, (cached, _)| cached.user.id != user);
    }

    /// Drops these keys (revoked) from the cache; returns how many were cached.
    pub fn forget_keys(&self, hashes: &[[u8; 32]]) -> usize {
        let mut entries = locked(&self.entries);
        hashes.iter().filter(|hash| entries.remove(*hash).is_some()).count()
    }

    /// The keys used since the last call, with their latest use.
    pub fn take_uses(&self) -> Vec<(Uuid, DateTime<Utc>)> {
        locked(&self.uses).drain().collect()
    }

    /// Keys cached now (for tests and diagnostics).
    pub fn len(&self) -> usize {
        locked(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
