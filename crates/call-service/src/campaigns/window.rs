//! Calling windows: days of the week and a local start and end time in an IANA time zone. An end
//! before the start crosses midnight (the window belongs to the day it opens). Local times that do
//! not exist (a spring-forward gap) open at the first instant after the gap.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;

/// When calls may be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// 0 = Monday … 6 = Sunday.
    pub days: Vec<u8>,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn allowed(days: &[u8], weekday: Weekday) -> bool {
    days.contains(&(weekday.num_days_from_monday() as u8))
}

/// One stretch of time in which a window is open: `[opens, closes)` in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenPeriod {
    pub opens: DateTime<Utc>,
    pub closes: DateTime<Utc>,
}

impl Window {
    /// The first period of the window in `tz` that has not closed at `after`: the one open at
    /// `after` (`opens <= after`), else the next one. `None` if no day is allowed. Every other
    /// question about a window (is it open, when does it open next, when may a contact be
    /// dialled) is answered from this one.
    pub fn period(&self, after: DateTime<Utc>, tz: Tz) -> Option<OpenPeriod> {
        let today = after.with_timezone(&tz).date_naive();
        // From yesterday (its period may cross midnight into today) to a week ahead.
        (-1..=8)
            .filter_map(|offset| today.checked_add_signed(TimeDelta::days(offset)))
            .filter(|date| allowed(&self.days, date.weekday()))
            .filter_map(|date| {
                let end_date = if self.end <= self.start { date.succ_opt()? } else { date };
                Some(OpenPeriod {
                    opens: local_instant(date, self.start, tz)?,
                    closes: local_instant(end_date, self.end, tz)?,
                })
            })
            .find(|period| period.closes > after && period.opens < period.closes)
    }

    /// Whether the window is open at `now` in `tz`.
    pub fn is_open(&self, now: DateTime<Utc>, tz: Tz) -> bool {
        self.period(now, tz).is_some_and(|period| period.opens <= now)
    }

    /// The next time the window opens after `now` (`None` if no day is allowed).
    pub fn next_open(&self, now: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let period = self.period(now, tz)?;
        match period.opens > now {
            true => Some(period.opens),
            false => self.period(period.closes, tz).map(|next| next.opens),
        }
    }
}

/// The instant `date` at local `time` happens in `tz` (the earlier one when the clock falls back,
/// the end of the gap when it springs forward).
fn local_instant(date: NaiveDate, time: NaiveTime, tz: Tz) -> Option<DateTime<Utc>> {
    let local = date.and_time(time);
    match tz.from_local_datetime(&local) {
        chrono::LocalResult::Single(at) => Some(at.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(first, _) => Some(first.with_timezone(&Utc)),
        chrono::LocalResult::None => (1..=180)
            .map(|minutes| local + TimeDelta::minutes(minutes))
            .find_map(|later| tz.from_local_datetime(&later).earliest())
            .map(|at| at.with_timezone(&Utc)),
    }
}

/// Parses an IANA zone name.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Asia/Kolkata)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn weekdays_9_to_5() -> Window {
        Window {
            days: vec![0, 1, 2, 3, 4],
            start: NaiveTime::from_hms_opt(9, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(17, 0, 0).unwrap(),
        }
    }

    #[test]
    fn a_window_is_open_in_the_contacts_local_time() {
        let window = weekdays_9_to_5();
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        let new_york: Tz = "America/New_York".parse().unwrap();
        // Tuesday 2026-09-01 05:00 UTC = 10:30 in Kolkata, 01:00 in New York.
        assert!(window.is_open(at("2026-09-01T05:00:00Z"), kolkata));
        assert!(!window.is_open(at("2026-09-01T05:00:00Z"), new_york));
        // Saturday in Kolkata.
        assert!(!window.is_open(at("2026-09-05T05:00:00Z"), kolkata));
    }

    #[test]
    fn daylight_saving_moves_the_utc_opening_by_an_hour() {
        let window = weekdays_9_to_5();
        let new_york: Tz = "America/New_York".parse().unwrap();
        // Friday 2026-03-06 (EST, UTC-5): 09:00 local = 14:00 UTC.
        assert!(!window.is_open(at("2026-03-06T13:30:00Z"), new_york));
        assert!(window.is_open(at("2026-03-06T14:00:00Z"), new_york));
        // Monday 2026-03-09, after the spring-forward on the 8th (EDT, UTC-4): 09:00 = 13:00 UTC.
        assert!(window.is_open(at("2026-03-09T13:30:00Z"), new_york));
        assert_eq!(window.next_open(at("2026-03-06T22:00:00Z"), new_york), Some(at("2026-03-09T13:00:00Z")));
    }

    #[test]
    fn a_window_ending_before_it_starts_crosses_midnight() {
        let night = Window {
            days: vec![4],
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
        };
        let utc: Tz = "UTC".parse().unwrap();
        assert!(night.is_open(at("2026-09-04T23:00:00Z"), utc), "Friday 23:00");
        assert!(night.is_open(at("2026-09-05T01:00:00Z"), utc), "Saturday 01:00 belongs to Friday");
        assert!(!night.is_open(at("2026-09-06T01:00:00Z"), utc), "Sunday 01:00 belongs to Saturday");
    }

    #[test]
    fn an_opening_inside_a_spring_forward_gap_moves_to_the_end_of_the_gap() {
        let early = Window {
            days: vec![6],
            start: NaiveTime::from_hms_opt(2, 30, 0).unwrap(),
            end: NaiveTime::from_hms_opt(5, 0, 0).unwrap(),
        };
        let new_york: Tz = "America/New_York".parse().unwrap();
        // Sunday 2026-03-08 02:30 does not exist in New York; 03:00 EDT = 07:00 UTC.
        assert_eq!(early.next_open(at("2026-03-08T00:00:00Z"), new_york), Some(at("2026-03-08T07:00:00Z")));
    }

    #[test]
    fn a_period_is_the_one_open_at_the_instant_or_the_next_and_spans_a_clock_change() {
        let night = Window {
            days: vec![5],
            start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
            end: NaiveTime::from_hms_opt(2, 0, 0).unwrap(),
        };
        let utc: Tz = "UTC".parse().unwrap();
        let saturday_night =
            OpenPeriod { opens: at("2026-09-05T22:00:00Z"), closes: at("2026-09-06T02:00:00Z") };
        assert_eq!(night.period(at("2026-09-05T12:00:00Z"), utc), Some(saturday_night), "the next one");
        assert_eq!(
            night.period(at("2026-09-06T01:59:00Z"), utc),
            Some(saturday_night),
            "open: the current one"
        );
        assert_eq!(
            night.period(at("2026-09-06T02:00:00Z"), utc).map(|p| p.opens),
            Some(at("2026-09-12T22:00:00Z")),
            "closed at its end: a week later"
        );
        // New York falls back on Sunday 2026-11-01 at 02:00 EDT: Saturday 22:00 EDT (02:00 UTC) to
        // Sunday 02:00 EST (07:00 UTC) is five hours long.
        let new_york: Tz = "America/New_York".parse().unwrap();
        assert_eq!(
            night.period(at("2026-10-31T12:00:00Z"), new_york),
            Some(OpenPeriod { opens: at("2026-11-01T02:00:00Z"), closes: at("2026-11-01T07:00:00Z") })
        );
    }
}
