//! SQL for `users`. Functions take a connection so callers can compose them inside
//! one transaction.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;

use crate::UserId;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub id: UserId,
    pub name: String,
    pub direct_call_limit: i32,
    pub campaign_call_limit: i32,
    /// The user's own per-number cap (calls to one number in 24 hours); `None`: the configured
    /// `limits.max_calls_per_number_per_day`; 0: no cap for this user.
    pub max_calls_per_number_per_day: Option<i32>,
    /// In Bolna's currency, over the user's calls of each UTC month; `None`: no budget.
    pub monthly_budget: Option<f64>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What it takes to make a user; limits already validated (≥ 0).
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub direct_call_limit: i32,
    pub campaign_call_limit: i32,
    pub max_calls_per_number_per_day: Option<i32>,
    pub monthly_budget: Option<f64>,
}

/// A change to a user's own per-number cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberCapChange {
    Keep,
    /// Back to the configured figure.
    UseDefault,
    Set(i32),
}

/// A change to a user's monthly budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BudgetChange {
    Keep,
    Clear,
    Set(f64),
}

/// What a change of limits sets (`None` and `Keep` leave a figure as it is).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitsChange {
    pub direct: Option<i32>,
    pub campaign: Option<i32>,
    pub number_cap: NumberCapChange,
    pub monthly_budget: BudgetChange,
}

#[tracing::instrument(name = "Create a user", skip_all, fields(name = %new.name))]
pub async fn create_user(conn: &mut PgConnection, new: &NewUser) -> sqlx::Result<User> {
    sqlx::query_as!(
        User,
        r#"INSERT INTO users (id, name, direct_call_limit, campaign_call_limit, max_calls_per_number_per_day,
                              monthly_budget)
           VALUES ($1, $2, $3, $4, $5, $6)
           RETURNING id AS "id: UserId", name, direct_call_limit, campaign_call_limit, max_calls_per_number_per_day, monthly_budget, created_at, updated_at"#,
        UserId::new() as UserId,
        new.name.trim(),
        new.direct_call_limit,
        new.campaign_call_limit,
        new.max_calls_per_number_per_day,
        new.monthly_budget,
    )
    .fetch_one(conn)
    .await
}

/// Users in creation order, after `after` (a cursor), at most `limit`.
pub async fn list_users(
    conn: &mut PgConnection,
    after: Option<UserId>,
    limit: i64,
) -> sqlx::Result<Vec<User>> {
    sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, direct_call_limit, campaign_call_limit, max_calls_per_number_per_day, monthly_budget, created_at, updated_at
           FROM users WHERE ($1::uuid IS NULL OR id > $1) ORDER BY id LIMIT $2"#,
        after.map(uuid::Uuid::from),
        limit,
    )
    .fetch_all(conn)
    .await
}

/// The oldest user with this exact name (used to seed the `dev` demo user once).
pub async fn find_user_by_name(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<User>> {
    sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, direct_call_limit, campaign_call_limit, max_calls_per_number_per_day, monthly_budget, created_at, updated_at
           FROM users WHERE name = $1 ORDER BY created_at LIMIT 1"#,
        name,
    )
    .fetch_optional(conn)
    .await
}

/// One user by id.
pub async fn get_user(conn: &mut PgConnection, id: UserId) -> sqlx::Result<Option<User>> {
    sqlx::query_as!(
        User,
        r#"SELECT id AS "id: UserId", name, direct_call_limit, campaign_call_limit, max_calls_per_number_per_day, monthly_budget, created_at, updated_at
           FROM users WHERE id = $1"#,
        id as UserId
    )
    .fetch_optional(conn)
    .await
}

/// Changes a user's limits (absent ones stay). Lowering a limit never ends live calls: slots above
/// it simply are not refilled. Raising one (or a budget) wakes the dispatchers.
pub async fn update_limits(
    conn: &mut PgConnection,
    id: UserId,
    change: &LimitsChange,
) -> sqlx::Result<Option<User>> {
    let (change_cap, cap) = match change.number_cap {
        NumberCapChange::Keep => (false, None),
        NumberCapChange::UseDefault => (true, None),
        NumberCapChange::Set(cap) => (true, Some(cap)),
    };
    let (change_budget, budget) = match change.monthly_budget {
        BudgetChange::Keep => (false, None),
        BudgetChange::Clear => (true, None),
        BudgetChange::Set(budget) => (true, Some(budget)),
    };
    let user = sqlx::query_as!(
        User,
        r#"UPDATE users SET direct_call_limit = COALESCE($2, direct_call_limit),
                            campaign_call_limit = COALESCE($3, campaign_call_limit),
                            max_calls_per_number_per_day = CASE WHEN $4 THEN $5 ELSE max_calls_per_number_per_day END,
                            monthly_budget = CASE WHEN $6 THEN $7 ELSE monthly_budget END
           WHERE id = $1
           RETURNING id AS "id: UserId", name, direct_call_limit, campaign_call_limit, max_calls_per_number_per_day, monthly_budget, created_at, updated_at"#,
        id as UserId,
        change.direct,
        change.campaign,
        change_cap,
        cap as Option<i32>,
        change_budget,
        budget as Option<f64>
    )
    .fetch_optional(&mut *conn)
    .await?;
    if user.is_some() {
        sqlx::query!("SELECT pg_notify('switchboard_dispatch', '')").execute(conn).await?;
    }
    Ok(user)
}
