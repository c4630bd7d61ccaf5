//! Budgets (rule 7 in `sql/ledger.sql`): once a user's monthly spend or a campaign's spend reaches
//! its budget, none of its calls takes a slot. Admission and the queue enforce it; this tells a
//! caller whose call admission refused which budget was spent.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::ids::UserId;

/// The budget that stops a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpentBudget {
    /// The user's `monthly_budget`, over its calls of this UTC month.
    User,
    /// The campaign's `budget`, over all its calls.
    Campaign,
}

impl SpentBudget {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Campaign => "campaign",
        }
    }
}

/// Which budget, if any, stops a new call of `user` (of `campaign`, or a direct call).
pub async fn spent_budget(
    conn: &mut PgConnection,
    user: UserId,
    campaign: Option<Uuid>,
) -> sqlx::Result<Option<SpentBudget>> {
    let spent: Option<String> =
        sqlx::query_scalar!("SELECT spent_budget($1, $2)", user as UserId, campaign).fetch_one(conn).await?;
    Ok(match spent.as_deref() {
        Some("user") => Some(SpentBudget::User),
        Some("campaign") => Some(SpentBudget::Campaign),
        _ => None,
    })
}
