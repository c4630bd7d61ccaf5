//! When work is due, kept where indexes find it (so the scheduler's cost follows what is due, not
//! what exists):
//! - each zone a campaign's contacts live in has a row in `campaign_zones` with the calling
//!   window's current or next open period there (`''` is the campaign's own zone). All contacts of
//!   a zone share it, so when the window closes one row moves, not the contacts. Computed here, from
//!   [`Window::period`], when a zone gets its first contact, when the window or zone changes, and
//!   by the scheduler when a zone's period has closed;
//! - a waiting contact is due once its zone is open and its retry time (if any) has come: one index
//!   range per open zone, in the order contacts became due;
//! - a running campaign carries `next_due_at`: when the scheduler must look at it next. Anything
//!   that may make work due sooner lowers it ([`wake_campaign`]); a scheduler visit sets it exactly
//!   ([`next_contact_due`]).

use chrono::{DateTime, TimeDelta, Utc};
use chrono_tz::Tz;
use sqlx::PgConnection;
use uuid::Uuid;

use super::model::Campaign;
use super::window::{parse_tz, OpenPeriod, Window};

/// A zone's open period: `[opens, closes)`; `closes` is `None` without a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZonePeriod {
    pub opens: DateTime<Utc>,
    pub closes: Option<DateTime<Utc>>,
}

/// A campaign's window and zone, to compute its zones' periods.
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

    /// The current or next open period from `now` of contacts in `zone` (`''`: the campaign's; a
    /// zone was checked when its contacts were added, and an unknown one is the campaign's).
    pub fn period(&self, zone: &str, now: DateTime<Utc>) -> ZonePeriod {
        let Some(window) = &self.window else {
            return ZonePeriod { opens: now, closes: None };
        };
        let tz = parse_tz(zone).unwrap_or(self.campaign_zone);
        // Validation requires a day, so a period exists; should none, look again in a day.
        let later = now + TimeDelta::days(1);
        let OpenPeriod { opens, closes } =
            window.period(now, tz).unwrap_or(OpenPeriod { opens: later, closes: later });
        ZonePeriod { opens, closes: Some(closes) }
    }
}

/// The periods of `zones` from `now`, as the two columns the zone statements bind.
struct Periods {
    opens: Vec<DateTime<Utc>>,
    closes: Vec<Option<DateTime<Utc>>>,
}

impl Periods {
    fn of(campaign: &Campaign, zones: &[String], now: DateTime<Utc>) -> Self {
        let hours = CallingHours::of(campaign);
        let periods: Vec<ZonePeriod> = zones.iter().map(|zone| hours.period(zone, now)).collect();
        Self {
            opens: periods.iter().map(|p| p.opens).collect(),
            closes: periods.iter().map(|p| p.closes).collect(),
        }
    }
}

/// The zone key of a contact's time zone (`''`: none of its own).
pub(crate) fn zone_key(timezone: Option<&str>) -> &str {
    timezone.unwrap_or("")
}

/// Gives each of `zones` of `campaign` that has no period row yet its period from `now`. Returns
/// the earliest instant any of them opens (or `now`, if one is open).
pub(crate) async fn add_zones(
    conn: &mut PgConnection,
    campaign: &Campaign,
    zones: &[String],
    now: DateTime<Utc>,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    let periods = Periods::of(campaign, zones, now);
    sqlx::query!(
        "INSERT INTO campaign_zones (campaign_id, zone, opens, closes)
         SELECT $1, zone, opens, closes FROM UNNEST($2::text[], $3::timestamptz[], $4::timestamptz[]) AS z(zone, opens, closes)
         ON CONFLICT (campaign_id, zone) DO NOTHING",
        campaign.id,
        zones,
        &periods.opens,
        &periods.closes as &[Option<DateTime<Utc>>],
    )
    .execute(conn)
    .await?;
    Ok(periods.opens.iter().map(|opens| (*opens).max(now)).min())
}

/// Which zones [`rearm_zones`] moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Zones {
    /// Those whose period closed (the scheduler, each visit).
    Closed,
    /// Every one (the window or the campaign's zone changed).
    All,
}

/// Moves `which` zones of `campaign` to their period from `now`. Returns how many moved.
pub(crate) async fn rearm_zones(
    conn: &mut PgConnection,
    campaign: &Campaign,
    which: Zones,
    now: DateTime<Utc>,
) -> sqlx::Result<u64> {
    let zones: Vec<String> = match which {
        Zones::Closed => {
            sqlx::query_scalar!(
                "SELECT zone FROM campaign_zones WHERE campaign_id = $1 AND closes <= $2",
                campaign.id,
                now
            )
            .fetch_all(&mut *conn)
            .await?
        }
        Zones::All => {
            sqlx::query_scalar!("SELECT zone FROM campaign_zones WHERE campaign_id = $1", campaign.id)
                .fetch_all(&mut *conn)
                .await?
        }
    };
    if zones.is_empty() {
        return Ok(0);
    }
    let periods = Periods::of(campaign, &zones, now);
    let moved = sqlx::query!(
        "UPDATE campaign_zones z SET opens = p.opens, closes = p.closes
           FROM UNNEST($2::text[], $3::timestamptz[], $4::timestamptz[]) AS p(zone, opens, closes)
          WHERE z.campaign_id = $1 AND z.zone = p.zone",
        campaign.id,
        &zones,
        &periods.opens,
        &periods.closes as &[Option<DateTime<Utc>>],
    )
    .execute(conn)
    .await?;
    Ok(moved.rows_affected())
}

/// The zones of `campaign` open at `now`, the earliest opened first.
pub(crate) async fn open_zones(
    conn: &mut PgConnection,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        "SELECT zone FROM campaign_zones WHERE campaign_id = $1 AND opens <= $2 AND (closes IS NULL OR closes > $2)
          ORDER BY opens, zone",
        campaign,
        now
    )
    .fetch_all(conn)
    .await
}

/// When a contact of `campaign` is next due, given its zones' periods (after a visit re-armed the
/// closed ones): per zone with waiting contacts, the later of its opening and its earliest
/// contact's retry time, if that comes before the zone closes; else the close, when the zone moves
/// to its next period. One index probe per zone.
pub(crate) async fn next_contact_due(
    conn: &mut PgConnection,
    campaign: Uuid,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        r#"SELECT min(CASE WHEN z.closes <= $2 THEN $2
                           WHEN z.closes IS NULL OR GREATEST(z.opens, w.due) < z.closes THEN GREATEST(z.opens, w.due)
                           ELSE z.closes END) AS "next"
             FROM campaign_zones z
             CROSS JOIN LATERAL (
                 SELECT min(coalesce(cc.next_attempt_at, '-infinity')) AS due FROM campaign_contacts cc
                  WHERE cc.campaign_id = z.campaign_id AND coalesce(cc.timezone, '') = z.zone
                    AND cc.status IN ('pending', 'retry_scheduled')) w
            WHERE z.campaign_id = $1 AND w.due IS NOT NULL"#,
        campaign,
        now
    )
    .fetch_one(conn)
    .await
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
    fn a_zones_period_is_the_windows_in_that_zone_else_the_campaigns() {
        let nine_to_five = Window {
            days: vec![0, 1, 2, 3, 4],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        };
        let hours = hours(Some(nine_to_five));
        // Tuesday 2026-09-01 15:00 UTC = 11:00 in New York (EDT): open since 13:00 UTC.
        let open = hours.period("", at("2026-09-01T15:00:00Z"));
        assert_eq!(
            open,
            ZonePeriod { opens: at("2026-09-01T13:00:00Z"), closes: Some(at("2026-09-01T21:00:00Z")) }
        );
        // The same instant is 20:30 in Kolkata: Wednesday 09:00 IST = 03:30 UTC.
        let kolkata = hours.period("Asia/Kolkata", at("2026-09-01T15:00:00Z"));
        assert_eq!(
            kolkata,
            ZonePeriod { opens: at("2026-09-02T03:30:00Z"), closes: Some(at("2026-09-02T11:30:00Z")) }
        );
        // An unknown zone is the campaign's.
        assert_eq!(hours.period("Mars/Olympus", at("2026-09-01T15:00:00Z")), open);
        // Without a window: open from the instant, no end.
        let always = super::tests::hours(None).period("", at("2026-09-01T15:00:00Z"));
        assert_eq!(always, ZonePeriod { opens: at("2026-09-01T15:00:00Z"), closes: None });
    }
}
