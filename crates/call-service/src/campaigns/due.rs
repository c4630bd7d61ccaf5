//! When work is due, kept where indexes find it (so the scheduler's cost follows what is due, not
//! what exists):
//! - a contact waiting to be dialled carries `[dial_from, dial_until)`: its calling window's current
//!   or next open period in its own zone (else the campaign's), not before its retry time. Computed
//!   here, from [`Window::period`], whenever a contact starts waiting (added, retry scheduled), when
//!   the window changes, and by the scheduler for contacts whose period closed before they were
//!   dialled. Contacts of one zone share a period, so a whole campaign is re-armed with one
//!   statement per call, with one row per zone;
//! - a running campaign carries `next_due_at`: when the scheduler must look at it next. Anything
//!   that may make work due sooner lowers it ([`wake_campaign`]); a scheduler visit sets it exactly.

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::Campaign;
use super::window::{parse_tz, OpenPeriod, Window};
use crate::CallId;

/// When a contact may be dialled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DialPeriod {
    pub from: DateTime<Utc>,
    /// `None`: no window, no end.
    pub until: Option<DateTime<Utc>>,
}

/// The zones of one campaign's contacts: each contact's own, else the campaign's.
#[derive(Debug, Clone)]
pub(crate) struct CallingHours {
    window: Option<Window>,
    campaign_zone: Tz,
}

impl CallingHours {
    pub fn of(campaign: &Campaign) -> Self {
        Self {
            window: campaign.window(),
            campaign_zone: parse_tz(&campaign.timezone).unwrap_or(chrono_tz::UTC),
        }
    }

    /// The period in which a contact of `zone` (None = the campaign's) may be dialled, not before
    /// `not_before`. A contact's zone was checked when it was added; an unknown one falls back to
    /// the campaign's.
    pub fn period(&self, zone: Option<&str>, not_before: DateTime<Utc>) -> DialPeriod {
        let Some(window) = &self.window else {
            return DialPeriod { from: not_before, until: None };
        };
        let tz = zone.and_then(|zone| parse_tz(zone).ok()).unwrap_or(self.campaign_zone);
        // Validation requires a day, so a period exists; should none, look again in a day.
        let OpenPeriod { opens, closes } = window.period(not_before, tz).unwrap_or(OpenPeriod {
            opens: not_before + TimeDelta::days(1),
            closes: not_before + TimeDelta::days(1),
        });
        DialPeriod { from: opens.max(not_before), until: Some(closes) }
    }
}

/// Moves the waiting contacts of `campaign` whose period closed at `now` (before they were
/// dialled) to their period from `now`: one statement, with one row per zone. A retry time later
/// than the period's opening is kept; one after the period's close leaves the contact due at its
/// retry time with its period closed, so it is moved again then. Returns how many moved.
pub(crate) async fn rearm_closed(
    conn: &mut PgConnection,
    campaign: &Campaign,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    // '' stands for "no zone of its own" in the zone list, which cannot hold a NULL to match.
    let zones: Vec<String> = sqlx::query_scalar!(
        r#"SELECT DISTINCT coalesce(timezone, '') AS "zone!" FROM campaign_contacts
           WHERE campaign_id = $1 AND status IN ('pending', 'retry_scheduled') AND dial_until <= $2"#,
        campaign.id,
        now
    )
    .fetch_all(&mut *conn)
    .await?;
    if zones.is_empty() {
        return Ok(0);
    }
    let hours = CallingHours::of(campaign);
    let periods: Vec<DialPeriod> =
        zones.iter().map(|zone| hours.period(Some(zone.as_str()).filter(|z| !z.is_empty()), now)).collect();
    let froms: Vec<DateTime<Utc>> = periods.iter().map(|p| p.from).collect();
    let untils: Vec<Option<DateTime<Utc>>> = periods.iter().map(|p| p.until).collect();
    let moved = sqlx::query!(
        r#"UPDATE campaign_contacts cc
              SET dial_from = GREATEST(z.opens, cc.next_attempt_at), dial_until = z.closes
             FROM UNNEST($2::text[], $3::timestamptz[], $4::timestamptz[]) AS z(zone, opens, closes)
            WHERE cc.campaign_id = $1 AND cc.status IN ('pending', 'retry_scheduled') AND cc.dial_until <= $5
              AND coalesce(cc.timezone, '') = z.zone"#,
        campaign.id,
        &zones,
        &froms,
        &untils as &[Option<DateTime<Utc>>],
        now
    )
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

/// The window or the zone of a campaign changed: every waiting contact's period counts as closed,
/// so that [`rearm_closed`] computes it again.
pub(crate) async fn close_periods(conn: &mut PgConnection, campaign: Uuid) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE campaign_contacts SET dial_until = '-infinity'
          WHERE campaign_id = $1 AND status IN ('pending', 'retry_scheduled')",
        campaign
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Lowers the campaign's `next_due_at` to `at` (work may be due then). A campaign already due
/// sooner is not touched (nor locked).
pub(crate) async fn wake_campaign(
    conn: &mut PgConnection,
    campaign: Uuid,
    at: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET next_due_at = $2
          WHERE id = $1 AND status = 'running' AND (next_due_at IS NULL OR next_due_at > $2)",
        campaign,
        at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A call that counted against its campaign's `max_concurrency` no longer does (its line is free,
/// or it ended while queued): the campaign may dial again at `now`. Nothing for a direct call.
/// Lock order: the call, then its campaign (before the user's row, which the slot's release takes;
/// the scheduler takes the campaign, then the user).
pub(crate) async fn capacity_freed(
    conn: &mut PgConnection,
    call: CallId,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE campaigns SET next_due_at = $2
          WHERE id = (SELECT campaign_id FROM calls WHERE id = $1)
            AND status = 'running' AND (next_due_at IS NULL OR next_due_at > $2)",
        call as CallId,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::NaiveTime;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn hours(window: Option<Window>) -> CallingHours {
        CallingHours { window, campaign_zone: "America/New_York".parse().unwrap() }
    }

    #[test]
    fn a_contact_is_due_in_its_own_zones_period_not_before_its_retry_time() {
        let nine_to_five = Window {
            days: vec![0, 1, 2, 3, 4],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        };
        let hours = hours(Some(nine_to_five));
        // Tuesday 2026-09-01 15:00 UTC = 11:00 in New York (EDT): open since 13:00 UTC.
        let open = hours.period(None, at("2026-09-01T15:00:00Z"));
        assert_eq!(
            open,
            DialPeriod { from: at("2026-09-01T15:00:00Z"), until: Some(at("2026-09-01T21:00:00Z")) }
        );
        // The same instant is 20:30 in Kolkata: Wednesday 09:00 IST = 03:30 UTC.
        let kolkata = hours.period(Some("Asia/Kolkata"), at("2026-09-01T15:00:00Z"));
        assert_eq!(
            kolkata,
            DialPeriod { from: at("2026-09-02T03:30:00Z"), until: Some(at("2026-09-02T11:30:00Z")) }
        );
        // An unknown zone is the campaign's.
        assert_eq!(hours.period(Some("Mars/Olympus"), at("2026-09-01T15:00:00Z")), open);
        // Without a window: from the instant, no end.
        let always = super::tests::hours(None).period(None, at("2026-09-01T15:00:00Z"));
        assert_eq!(always, DialPeriod { from: at("2026-09-01T15:00:00Z"), until: None });
    }
}
