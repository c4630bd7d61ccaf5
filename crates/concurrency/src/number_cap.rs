//! The per-number cap (rule 6 in `sql/ledger.sql`): at most so many calls of a user to one number
//! in 24 hours. `admit_calls` enforces it under the user's row lock; this tells a caller whose call
//! it refused when the number is under the cap again.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::ids::UserId;
use crate::policy::SlotPolicy;

/// When a call of `user` to `number`, due at `at`, fits under the cap: `None` when it fits now (or
/// the user has no cap).
pub async fn number_cap_frees_at(
    conn: &mut PgConnection,
    user: UserId,
    number: &str,
    at: DateTime<Utc>,
    policy: &SlotPolicy,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        "SELECT number_cap_frees_at($1, $2, $3, $4)",
        user as UserId,
        number,
        at,
        policy.number_cap()
    )
    .fetch_one(conn)
    .await
}
