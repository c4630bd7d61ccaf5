//! SQL for `api_keys`. A user holds several keys, each with a name and an optional expiry; a
//! revoked key keeps its row (`revoked_at`), so audits and listings can still name it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::api_key::{ApiKey, ApiKeyHash};
use super::repository::User;
use crate::UserId;

/// Live keys one user may hold at once: enough for every service and rotation a team runs, few
/// enough that a runaway script cannot fill the table.
pub const MAX_KEYS_PER_USER: i64 = 100;

/// A key as listed: never its text, which exists only in the answer that issued it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key was last used, about a minute late at most (uses are written in batches).
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The owner of a presented key that works now.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyOwner {
    pub user: User,
    pub key_id: Uuid,
    pub expires_at: Option<DateTime<Utc>>,
}

impl KeyOwner {
    pub fn expired_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// What issuing a key came to.
#[derive(Debug)]
pub enum IssuedKey {
    Issued {
        key: ApiKey,
        record: ApiKeyRecord,
    },
    /// The user already holds [`MAX_KEYS_PER_USER`] live keys.
    TooManyKeys,
}

/// Issues a key named `name` for `user`; the returned key is the only copy of its text. Revoked
/// keys do not count towards [`MAX_KEYS_PER_USER`]; expired ones do until they are revoked.
#[tracing::instrument(name = "Issue an API key", skip_all, fields(user_id = %user))]
pub async fn issue_api_key(
    conn: &mut PgConnection,
    user: UserId,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> sqlx::Result<IssuedKey> {
    let key = ApiKey::generate();
    let id = Uuid::now_v7();
    let row = sqlx::query!(
        r#"INSERT INTO api_keys (id, user_id, key_hash, key_prefix, name, expires_at)
           SELECT $1, $2, $3, $4, $5, $6
           WHERE (SELECT count(*) FROM api_keys WHERE user_id = $2 AND revoked_at IS NULL) < $7
           RETURNING created_at"#,
        id,
        user as UserId,
        &key.hash().0[..],
        key.display_prefix(),
        name,
        expires_at,
        MAX_KEYS_PER_USER,
    )
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(IssuedKey::TooManyKeys) };
    let record = ApiKeyRecord {
        id,
        user_id: user,
        name: name.to_owned(),
        prefix: key.display_prefix().to_owned(),
        created_at: row.created_at,
        expires_at,
        last_used_at: None,
    };
    Ok(IssuedKey::Issued { key, record })
}

/// The user's live (unrevoked) keys, oldest first; expired keys are listed until revoked.
pub async fn list_api_keys(conn: &mut PgConnection, user: UserId) -> sqlx::Result<Vec<ApiKeyRecord>> {
    sqlx::query_as!(
        ApiKeyRecord,
        r#"SELECT id, user_id AS "user_id: UserId", name, key_prefix AS prefix, created_at, expires_at, last_used_at
           FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at, id"#,
        user as UserId,
    )
    .fetch_all(conn)
    .await
}

/// Revokes the user's key `id`; `None` when the user has no such live key.
#[tracing::instrument(name = "Revoke an API key", skip_all, fields(user_id = %user, key_id = %id))]
pub async fn revoke_api_key(
    conn: &mut PgConnection,
    user: UserId,
    id: Uuid,
) -> sqlx::Result<Option<ApiKeyRecord>> {
    sqlx::query_as!(
        ApiKeyRecord,
        r#"UPDATE api_keys SET revoked_at = now()
           WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
           RETURNING id, user_id AS "user_id: UserId", name, key_prefix AS prefix, created_at, expires_at, last_used_at"#,
        id,
        user as UserId,
    )
    .fetch_optional(conn)
    .await
}

/// Revokes every live key of `user` named `name`; returns how many.
pub async fn revoke_api_keys_named(conn: &mut PgConnection, user: UserId, name: &str) -> sqlx::Result<u64> {
    Ok(sqlx::query!(
        "UPDATE api_keys SET revoked_at = now() WHERE user_id = $1 AND name = $2 AND revoked_at IS NULL",
        user as UserId,
        name,
    )
    .execute(conn)
    .await?
    .rows_affected())
}

/// The owner of the key with this hash, when the key is neither revoked nor expired at `now`.
pub async fn find_key_owner(
    conn: &mut PgConnection,
    hash: &ApiKeyHash,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<KeyOwner>> {
    let row = sqlx::query!(
        r#"SELECT k.id AS key_id, k.expires_at,
                  u.id AS "id: UserId", u.name, u.direct_call_limit, u.campaign_call_limit,
                  u.max_calls_per_number_per_day, u.monthly_budget, u.created_at, u.updated_at
           FROM api_keys k JOIN users u ON u.id = k.user_id
           WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2)"#,
        &hash.0[..],
        now,
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|row| KeyOwner {
        user: User {
            id: row.id,
            name: row.name,
            direct_call_limit: row.direct_call_limit,
            campaign_call_limit: row.campaign_call_limit,
            max_calls_per_number_per_day: row.max_calls_per_number_per_day,
            monthly_budget: row.monthly_budget,
            created_at: row.created_at,
            updated_at: row.updated_at,
        },
        key_id: row.key_id,
        expires_at: row.expires_at,
    }))
}

/// The user owning a presented key that works now (no cache: the CLI and tests).
pub async fn find_user_by_api_key(conn: &mut PgConnection, presented: &str) -> sqlx::Result<Option<User>> {
    if !ApiKeyHash::plausible(presented) {
        return Ok(None);
    }
    Ok(find_key_owner(conn, &ApiKeyHash::of(presented), Utc::now()).await?.map(|owner| owner.user))
}

/// What the key caches' feed of revocations read.
#[derive(Debug, Clone)]
pub struct RevokedKeys {
    pub key_hashes: Vec<[u8; 32]>,
    /// The database's clock when it read them: the next read starts from here (less an overlap).
    pub read_at: DateTime<Utc>,
}

/// Keys revoked at or after `since` (by the database's clock, which stamps revocations); `None`
/// reads none, only the clock (the first read).
pub async fn revoked_keys_since(
    conn: &mut PgConnection,
    since: Option<DateTime<Utc>>,
) -> sqlx::Result<RevokedKeys> {
    let row = sqlx::query!(
        r#"SELECT now() AS "read_at!",
                  coalesce((SELECT array_agg(key_hash) FROM api_keys WHERE revoked_at >= $1), '{}') AS "key_hashes!""#,
        since,
    )
    .fetch_one(conn)
    .await?;
    let key_hashes = row.key_hashes.into_iter().filter_map(|hash| hash.try_into().ok()).collect();
    Ok(RevokedKeys { key_hashes, read_at: row.read_at })
}

/// Records when keys were last used: one statement for every key used since the last write.
pub async fn record_key_uses(conn: &mut PgConnection, uses: &[(Uuid, DateTime<Utc>)]) -> sqlx::Result<u64> {
    let (ids, times): (Vec<Uuid>, Vec<DateTime<Utc>>) = uses.iter().copied().unzip();
    Ok(sqlx::query!(
        r#"UPDATE api_keys k SET last_used_at = u.at
           FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at)
           WHERE k.id = u.id AND (k.last_used_at IS NULL OR k.last_used_at < u.at)"#,
        &ids,
        &times,
    )
    .execute(conn)
    .await?
    .rows_affected())
}
