//! `GET /v1/campaigns/{id}/report`: a campaign's figures, computed from its contacts and calls
//! when asked (nothing is counted by hand where it could drift).
//!
//! Definitions (README "Results and spend"):
//! - a call is every attempt; it is *finished* once its outcome is known (`call_outcome`);
//! - *connected*: the outcome `completed` (a person answered); `voicemail` is counted apart;
//!   both rates are over finished calls;
//! - talk time is Bolna's `conversation_duration`; its average is over *answered* calls
//!   (connected or voicemail);
//! - cost is Bolna's `total_cost`; its average is over the calls Bolna reported a cost for;
//! - calls per hour count the calls Bolna accepted, by the hour of the contact's local day when
//!   Bolna accepted them (the contact's time zone, else the campaign's).

use std::collections::BTreeMap;

use chrono::{DateTime, Timelike, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::campaigns::window::parse_tz;

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CampaignReport {
    pub campaign_id: Uuid,
    pub generated_at: DateTime<Utc>,
    pub contacts: ContactFigures,
    pub calls: CallFigures,
    pub talk_time: TalkTime,
    pub cost: CostFigures,
    /// 24 entries, hours 0–23 of the contacts' local day.
    pub calls_by_local_hour: Vec<HourFigures>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ContactFigures {
    pub total: i64,
    /// Contacts by state: `pending`, `in_progress`, `retry_scheduled`, `done`, `exhausted`,
    /// `skipped_dnc`, `canceled` (every state present, zero included).
    pub by_status: BTreeMap<String, i64>,
    /// Contacts by the number of attempts made (`"0"`, `"1"`, …).
    pub by_attempts: BTreeMap<String, i64>,
    /// Attempts per contact dialled at least once.
    pub average_attempts: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CallFigures {
    /// Every attempt, finished or not.
    pub total: i64,
    pub finished: i64,
    /// Attempts not finished yet (waiting, dialling or on the line).
    pub unfinished: i64,
    /// Finished calls by outcome: Bolna's terminal status, or `voicemail`.
    pub by_outcome: BTreeMap<String, i64>,
    /// Finished calls a person answered (`completed`, not voicemail).
    pub connected: i64,
    pub voicemail: i64,
    /// `connected / finished` (null before any call finished).
    pub connect_rate: Option<f64>,
    /// `voicemail / finished`.
    pub voicemail_rate: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TalkTime {
    pub total_seconds: f64,
    /// Over answered calls (connected or voicemail).
    pub average_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CostFigures {
    /// In Bolna's currency.
    pub total: f64,
    /// Over the calls Bolna reported a cost for.
    pub average_per_call: Option<f64>,
    pub calls_with_cost: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HourFigures {
    pub hour: u32,
    pub calls: i64,
    pub connected: i64,
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

const CONTACT_STATES: [&str; 7] =
    ["pending", "in_progress", "retry_scheduled", "done", "exhausted", "skipped_dnc", "canceled"];

/// The report of `campaign` (which the caller has checked belongs to the user), read in one
/// snapshot so that its figures agree with each other.
pub async fn campaign_report(
    pool: &PgPool,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<CampaignReport> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
    let report = read_report(&mut tx, campaign, now).await?;
    tx.commit().await?;
    Ok(report)
}

async fn read_report(
    conn: &mut PgConnection,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<CampaignReport> {
    let contacts = sqlx::query!(
        r#"SELECT status, attempts, count(*) AS "n!" FROM campaign_contacts WHERE campaign_id = $1
           GROUP BY status, attempts"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut by_status: BTreeMap<String, i64> = CONTACT_STATES.iter().map(|s| ((*s).to_owned(), 0)).collect();
    let mut by_attempts = BTreeMap::new();
    let (mut dialled_contacts, mut attempts) = (0, 0);
    for row in &contacts {
        *by_status.entry(row.status.clone()).or_default() += row.n;
        *by_attempts.entry(row.attempts.to_string()).or_default() += row.n;
        if row.attempts > 0 {
            dialled_contacts += row.n;
            attempts += row.n * i64::from(row.attempts);
        }
    }

    let outcomes = sqlx::query!(
        r#"SELECT call_outcome(status, answered_by_voice_mail) AS outcome, count(*) AS "calls!",
                  coalesce(sum(conversation_duration), 0) AS "talk_seconds!",
                  coalesce(sum(total_cost), 0) AS "cost!", count(total_cost) AS "with_cost!"
           FROM calls WHERE campaign_id = $1
           GROUP BY 1"#,
        campaign
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut calls = CallFigures {
        total: 0,
        finished: 0,
        unfinished: 0,
        by_outcome: BTreeMap::new(),
        connected: 0,
        voicemail: 0,
        connect_rate: None,
        voicemail_rate: None,
    };
    let (mut talk, mut answered_talk, mut cost, mut with_cost) = (0.0, 0.0, 0.0, 0);
    for row in &outcomes {
        calls.total += row.calls;
        talk += row.talk_seconds;
        cost += row.cost;
        with_cost += row.with_cost;
        match row.outcome.as_deref() {
            None => calls.unfinished += row.calls,
            Some(outcome) => {
                calls.finished += row.calls;
                calls.by_outcome.insert(outcome.to_owned(), row.calls);
                match outcome {
                    "completed" => calls.connected += row.calls,
                    "voicemail" => calls.voicemail += row.calls,
                    _ => continue,
                }
                answered_talk += row.talk_seconds;
            }
        }
    }
    calls.connect_rate = ratio(calls.connected, calls.finished);
    calls.voicemail_rate = ratio(calls.voicemail, calls.finished);
    let answered = calls.connected + calls.voicemail;

    Ok(CampaignReport {
        campaign_id: campaign,
        generated_at: now,
        contacts: ContactFigures {
            total: by_status.values().sum(),
            by_status,
            by_attempts,
            average_attempts: ratio(attempts, dialled_contacts),
        },
        talk_time: TalkTime {
            total_seconds: talk,
            average_seconds: (answered > 0).then(|| answered_talk / answered as f64),
        },
        cost: CostFigures {
            total: cost,
            average_per_call: (with_cost > 0).then(|| cost / with_cost as f64),
            calls_with_cost: with_cost,
        },
        calls,
        calls_by_local_hour: calls_by_local_hour(conn, campaign).await?,
    })
}

/// Calls by the hour of the contact's local day. PostgreSQL groups them by zone and quarter hour
/// (every UTC offset in use is a whole number of quarter hours); the local hour is then worked out
/// here with the same time zone data the calling windows use, so the two never disagree.
async fn calls_by_local_hour(conn: &mut PgConnection, campaign: Uuid) -> sqlx::Result<Vec<HourFigures>> {
    let rows = sqlx::query!(
        r#"SELECT coalesce(cc.timezone, cp.timezone) AS "zone!",
                  date_bin('15 minutes', c.started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS "quarter!",
                  count(*) AS "calls!",
                  count(*) FILTER (WHERE call_outcome(c.status, c.answered_by_voice_mail) = 'completed') AS "connected!"
           FROM calls c
           JOIN campaign_contacts cc ON cc.id = c.contact_id
           JOIN campaigns cp ON cp.id = c.campaign_id
           WHERE c.campaign_id = $1 AND c.started_at IS NOT NULL
           GROUP BY 1, 2"#,
        campaign
    )
    .fetch_all(conn)
    .await?;
    let mut hours: Vec<HourFigures> =
        (0..24).map(|hour| HourFigures { hour, calls: 0, connected: 0 }).collect();
    for row in rows {
        let zone = parse_tz(&row.zone).unwrap_or(chrono_tz::UTC);
        let hour = row.quarter.with_timezone(&zone).hour() as usize;
        hours[hour].calls += row.calls;
        hours[hour].connected += row.connected;
    }
    Ok(hours)
}

#[cfg(test)]
mod tests {
    use super::ratio;

    #[test]
    fn a_rate_over_nothing_is_absent_not_zero() {
        assert_eq!(ratio(3, 8), Some(0.375));
        assert_eq!(ratio(0, 0), None);
    }
}
