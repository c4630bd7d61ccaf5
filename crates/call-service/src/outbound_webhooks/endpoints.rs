//! `webhook_endpoints`: a user's destinations. Secrets arrive and leave sealed (the caller holds
//! the key); this module never sees one in clear.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::UserId;

/// Endpoints one user may hold: each is a fan-out target for every matching event.
pub const MAX_ENDPOINTS_PER_USER: i64 = 20;

/// An endpoint as stored, secrets sealed.
#[derive(Debug, Clone)]
pub struct EndpointRecord {
    pub id: Uuid,
    pub user_id: UserId,
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub disabled: bool,
    /// `user`, `gone` (it answered 410) or `failing` (every attempt failed for days).
    pub disabled_reason: Option<String>,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A new endpoint, validated by the caller.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub events: Vec<String>,
    pub description: Option<String>,
    pub sealed_secret: Vec<u8>,
}

/// A PATCH: `None` leaves a field as it is; `description: Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct EndpointChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// What the fan-out needs of an endpoint.
#[derive(Debug, Clone)]
pub struct EndpointTarget {
    pub id: Uuid,
    pub user_id: UserId,
    pub events: Vec<String>,
    pub disabled: bool,
}

macro_rules! select_endpoint {
    ($where:literal, $($arg:expr),*) => {
        sqlx::query_as!(
            EndpointRecord,
            r#"SELECT id, user_id AS "user_id: UserId", url, events, description, disabled, disabled_reason,
                      secret, previous_secret, previous_secret_expires_at, failing_since, created_at, updated_at
               FROM webhook_endpoints "# + $where,
            $($arg),*
        )
    };
}

/// Creates an endpoint; `None` when the user already holds [`MAX_ENDPOINTS_PER_USER`]. Counted under
/// the user's row lock, so two concurrent creates cannot both pass the limit.
pub async fn create_endpoint(
    conn: &mut PgConnection,
    user: UserId,
    new: NewEndpoint,
) -> sqlx::Result<Option<EndpointRecord>> {
    sqlx::query!("SELECT id FROM users WHERE id = $1 FOR UPDATE", user as UserId)
        .fetch_optional(&mut *conn)
        .await?;
    let held = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM webhook_endpoints WHERE user_id = $1"#,
        user as UserId
    )
    .fetch_one(&mut *conn)
    .await?;
    if held >= MAX_ENDPOINTS_PER_USER {
        return Ok(None);
    }
    let id = Uuid::now_v7();
    sqlx::query!(
        "INSERT INTO webhook_endpoints (id, user_id, url, events, description, secret) VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        user as UserId,
        new.url,
        &new.events,
        new.description,
        new.sealed_secret,
    )
    .execute(&mut *conn)
    .await?;
    get_endpoint(conn, user, id).await
}

/// One of the user's endpoints.
pub async fn get_endpoint(
    conn: &mut PgConnection,
    user: UserId,
    id: Uuid,
) -> sqlx::Result<Option<EndpointRecord>> {
    select_endpoint!("WHERE id = $1 AND user_id = $2", id, user as UserId).fetch_optional(conn).await
}

/// The user's endpoints, oldest first.
pub async fn list_endpoints(conn: &mut PgConnection, user: UserId) -> sqlx::Result<Vec<EndpointRecord>> {
    select_endpoint!("WHERE user_id = $1 ORDER BY created_at, id", user as UserId).fetch_all(conn).await
}

/// Applies a PATCH. Enabling an endpoint clears its failure history (it starts afresh); disabling
/// it by hand records `user` as the reason.
pub async fn update_endpoint(
    conn: &mut PgConnection,
    user: UserId,
    id: Uuid,
    change: EndpointChange,
) -> sqlx::Result<Option<EndpointRecord>> {
    let updated = sqlx::query!(
        r#"UPDATE webhook_endpoints SET
               url = coalesce($3, url),
               events = coalesce($4, events),
               description = CASE WHEN $5 THEN $6 ELSE description END,
               disabled = coalesce($7, disabled),
               disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                                      WHEN $7 THEN coalesce(disabled_reason, 'user') END,
               failing_since = CASE WHEN $7 = false THEN NULL ELSE failing_since END
           WHERE id = $1 AND user_id = $2"#,
        id,
        user as UserId,
        change.url,
        change.events.as_deref(),
        change.description.is_some(),
        change.description.flatten(),
        change.disabled,
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    get_endpoint(conn, user, id).await
}

/// Deletes an endpoint with its deliveries; `false` when there is none.
pub async fn delete_endpoint(conn: &mut PgConnection, user: UserId, id: Uuid) -> sqlx::Result<bool> {
    let deleted =
        sqlx::query!("DELETE FROM webhook_endpoints WHERE id = $1 AND user_id = $2", id, user as UserId)
            .execute(conn)
            .await?;
    Ok(deleted.rows_affected() > 0)
}

/// Replaces the secret; the current one keeps signing until `previous_until`.
pub async fn rotate_endpoint_secret(
    conn: &mut PgConnection,
    user: UserId,
    id: Uuid,
    sealed_secret: Vec<u8>,
    previous_until: DateTime<Utc>,
) -> sqlx::Result<Option<EndpointRecord>> {
    let updated = sqlx::query!(
        r#"UPDATE webhook_endpoints
              SET previous_secret = secret, previous_secret_expires_at = $4, secret = $3
            WHERE id = $1 AND user_id = $2"#,
        id,
        user as UserId,
        sealed_secret,
        previous_until,
    )
    .execute(&mut *conn)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    get_endpoint(conn, user, id).await
}

/// The endpoints of `users`, disabled ones included (the fan-out's targets).
pub async fn endpoints_of_users(
    conn: &mut PgConnection,
    users: &[Uuid],
) -> sqlx::Result<Vec<EndpointTarget>> {
    sqlx::query_as!(
        EndpointTarget,
        r#"SELECT id, user_id AS "user_id: UserId", events, disabled FROM webhook_endpoints
           WHERE user_id = ANY($1) ORDER BY created_at, id"#,
        users,
    )
    .fetch_all(conn)
    .await
}
