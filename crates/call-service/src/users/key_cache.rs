//! API keys seen recently, by their SHA-256, with the users they belong to: a request then costs
//! no database round trip to authenticate (issue 8: it was one of the three round trips of a call
//! start). An entry lives `ttl` (`auth.key_cache_seconds`; zero turns the cache off), so a key
//! revoked in the database stops working within that time on every instance. Only keys that were
//! valid are kept — an unknown key is looked up every time — and at most `capacity` of them.
//!
//! What the cached [`User`] says of the user's name and limits may be up to `ttl` old: handlers
//! use it for the user's identity only. Limits are read from the database where they are enforced
//! (admission) and where they are shown (`GET /v1/concurrency`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::api_key::ApiKeyHash;
use super::repository::{find_user_by_key_hash, User};

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], (User, Instant)>>,
}

impl KeyCache {
    pub fn new(ttl: Duration, capacity: usize) -> Self {
        Self { ttl, capacity: capacity.max(1), entries: Mutex::new(HashMap::new()) }
    }

    /// The user owning `presented`, an unrevoked key: from the cache when seen within `ttl`,
    /// else from the database.
    pub async fn user_for_key(&self, pool: &PgPool, presented: &str) -> sqlx::Result<Option<User>> {
        if !ApiKeyHash::plausible(presented) {
            return Ok(None);
        }
        let hash = ApiKeyHash::of(presented);
        if let Some(user) = self.cached(&hash) {
            return Ok(Some(user));
        }
        let user = find_user_by_key_hash(&mut *pool.acquire().await?, &hash).await?;
        if let Some(user) = &user {
            self.remember(hash, user.clone());
        }
        Ok(user)
    }

    fn cached(&self, hash: &ApiKeyHash) -> Option<User> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.get(&hash.0).filter(|(_, seen)| seen.elapsed() < self.ttl).map(|(user, _)| user.clone())
    }

    fn remember(&self, hash: ApiKeyHash, user: User) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.capacity {
            let ttl = self.ttl;
            entries.retain(|_, (_, seen)| seen.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(hash.0, (user, Instant::now()));
    }

    /// Drops every cached key of `user` (on this instance), e.g. after its limits changed.
    pub fn forget_user(&self, user: crate::UserId) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        entries.retain(|_, (cached, _)| cached.id != user);
    }

    /// Keys cached now (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
