//! `GET /v1/usage` and `GET /v1/admin/usage`: calls, connected calls, minutes and cost over a
//! time range, grouped one way.
//!
//! A call counts when Bolna accepted it (`started_at` set), in the range by its creation time;
//! connected means the outcome `completed` (`call_outcome`: not voicemail); minutes are Bolna's
//! `conversation_duration` / 60; cost is Bolna's `total_cost` (calls still live have none yet).
//! Days are UTC days.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use utoipa::ToSchema;

use crate::UserId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGrouping {
    Day,
    Agent,
    Campaign,
    CallType,
    User,
}

impl UsageGrouping {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "agent" => Some(Self::Agent),
            "campaign" => Some(Self::Campaign),
            "call_type" => Some(Self::CallType),
            "user" => Some(Self::User),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Day => "day",
            Self::Agent => "agent",
            Self::Campaign => "campaign",
            Self::CallType => "call_type",
            Self::User => "user",
        }
    }
}

/// One user's (or, for operators, every user's) calls created in `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct UsageQuery {
    pub user: Option<UserId>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub group_by: UsageGrouping,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageFigures {
    pub calls: i64,
    pub connected_calls: i64,
    pub minutes: f64,
    /// In Bolna's currency.
    pub cost: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageGroup {
    /// The day (`YYYY-MM-DD`), agent ID, campaign ID (null for direct calls), call type or user ID.
    pub key: Option<String>,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UsageReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// `day`, `agent`, `campaign`, `call_type` or `user`.
    pub group_by: String,
    /// By key (days in order; other keys in text order, direct calls' null campaign first).
    pub groups: Vec<UsageGroup>,
    pub total: UsageFigures,
}

pub async fn usage(conn: &mut PgConnection, query: UsageQuery) -> sqlx::Result<UsageReport> {
    let rows = sqlx::query!(
        r#"SELECT CASE $4::text
                      WHEN 'day' THEN to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')
                      WHEN 'agent' THEN agent_id
                      WHEN 'campaign' THEN campaign_id::text
                      WHEN 'call_type' THEN call_type
                      ELSE user_id::text
                  END AS key,
                  count(*) AS "calls!",
                  count(*) FILTER (WHERE call_outcome(status, answered_by_voice_mail) = 'completed') AS "connected!",
                  coalesce(sum(conversation_duration), 0) / 60 AS "minutes!",
                  coalesce(sum(total_cost), 0) AS "cost!"
           FROM calls
           WHERE ($1::uuid IS NULL OR user_id = $1) AND created_at >= $2 AND created_at < $3
             AND started_at IS NOT NULL
           GROUP BY 1
           ORDER BY 1 NULLS FIRST"#,
        query.user.map(uuid::Uuid::from),
        query.from,
        query.to,
        query.group_by.as_str(),
    )
    .fetch_all(conn)
    .await?;
    let mut total = UsageFigures { calls: 0, connected_calls: 0, minutes: 0.0, cost: 0.0 };
    let groups = rows
        .into_iter()
        .map(|row| {
            total.calls += row.calls;
            total.connected_calls += row.connected;
            total.minutes += row.minutes;
            total.cost += row.cost;
            UsageGroup {
                key: row.key,
                figures: UsageFigures {
                    calls: row.calls,
                    connected_calls: row.connected,
                    minutes: row.minutes,
                    cost: row.cost,
                },
            }
        })
        .collect();
    Ok(UsageReport {
        from: query.from,
        to: query.to,
        group_by: query.group_by.as_str().to_owned(),
        groups,
        total,
    })
}
