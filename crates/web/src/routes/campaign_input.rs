//! Validating a campaign's settings from JSON (create, or a patch laid over the current settings).

use call_service::calls::CallStatus;
use call_service::campaigns::{Campaign, CampaignSettings, RetryPolicy, Window};
use call_service::PhoneNumber;
use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::problem::{ApiError, FieldError};

/// A calling window in local time.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WindowInput {
    /// `mon` … `sun`.
    pub days: Vec<String>,
    /// `HH:MM`, local.
    pub start: String,
    /// `HH:MM`, local; before `start` crosses midnight.
    pub end: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryInput {
    /// Bolna terminal statuses (e.g. `no-answer`, `busy`, `failed`) or `voicemail`.
    pub on: Vec<String>,
    #[serde(deserialize_with = "crate::extract::required_whole_number")]
    pub delay_seconds: i64,
    /// Attempts in all, the first included (≥ 1).
    #[serde(deserialize_with = "crate::extract::required_whole_number")]
    pub max_attempts: i64,
}

/// A campaign's settings. On create, `name`, `agent_id` and `max_concurrency` are required; on
/// PATCH every field is optional and replaces the current one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    pub name: Option<String>,
    pub agent_id: Option<String>,
    /// E.164 numbers, rotated call by call.
    pub from_phone_numbers: Option<Vec<String>>,
    /// IANA time zone (default `UTC`); a contact's own zone wins.
    pub timezone: Option<String>,
    /// Absent = any time.
    pub window: Option<WindowInput>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    /// 1 ..= the user's campaign limit.
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub max_concurrency: Option<i64>,
    /// Calls started per minute; absent = no pacing.
    #[serde(default, deserialize_with = "crate::extract::whole_number")]
    pub calls_per_minute: Option<i64>,
    pub retry: Option<RetryInput>,
    /// In Bolna's currency: once the campaign's spend (reported costs, plus an estimate for its
    /// live calls) reaches it, it pauses with `pause_reason` `budget_exhausted`. Absent = none.
    #[schema(minimum = 0, maximum = 1_000_000_000)]
    pub budget: Option<f64>,
}

/// The largest budget accepted (a user's or a campaign's), in Bolna's currency.
pub const MAX_BUDGET: f64 = 1_000_000_000.0;

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

fn bad(errors: &mut Vec<FieldError>, field: &str, message: impl Into<String>) {
    errors.push(FieldError { field: field.into(), message: message.into() });
}

fn time(text: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(text, "%H:%M").ok()
}

impl CampaignInput {
    /// The current settings of `campaign` as input (so a PATCH can be laid over them).
    pub fn from_campaign(campaign: &Campaign) -> Self {
        Self {
            name: Some(campaign.name.clone()),
            agent_id: Some(campaign.agent_id.clone()),
            from_phone_numbers: Some(campaign.from_phone_numbers.clone()),
            timezone: Some(campaign.timezone.clone()),
            window: campaign.window().map(|w| window_output(&w)),
            starts_at: campaign.starts_at,
            ends_at: campaign.ends_at,
            max_concurrency: Some(campaign.max_concurrency.into()),
            calls_per_minute: campaign.calls_per_minute.map(i64::from),
            budget: campaign.budget,
            retry: Some(RetryInput {
                on: campaign.retry_on.clone(),
                delay_seconds: campaign.retry_delay_seconds.into(),
                max_attempts: campaign.max_attempts.into(),
            }),
        }
    }

    /// `patch`'s fields replace this input's.
    pub fn overlay(self, patch: CampaignInput) -> Self {
        Self {
            name: patch.name.or(self.name),
            agent_id: patch.agent_id.or(self.agent_id),
            from_phone_numbers: patch.from_phone_numbers.or(self.from_phone_numbers),
            timezone: patch.timezone.or(self.timezone),
            window: patch.window.or(self.window),
            starts_at: patch.starts_at.or(self.starts_at),
            ends_at: patch.ends_at.or(self.ends_at),
            max_concurrency: patch.max_concurrency.or(self.max_concurrency),
            calls_per_minute: patch.calls_per_minute.or(self.calls_per_minute),
            retry: patch.retry.or(self.retry),
            budget: patch.budget.or(self.budget),
        }
    }

    pub fn validate(self) -> Result<CampaignSettings, ApiError> {
        let mut errors = Vec::new();
        // At most 200 characters as sent (what /openapi.json's maxLength says), not blank.
        let sent = self.name.unwrap_or_default();
        let name = sent.trim().to_owned();
        if name.is_empty() || sent.chars().count() > 200 {
            bad(&mut errors, "name", "is required, 1 to 200 characters");
        }
        let agent_id = self.agent_id.map(|a| a.trim().to_owned()).unwrap_or_default();
        if uuid::Uuid::parse_str(&agent_id).is_err() {
            bad(&mut errors, "agent_id", "must be the Bolna agent's id (a uuid)");
        }
        let mut from_phone_numbers = Vec::new();
        for number in self.from_phone_numbers.unwrap_or_default() {
            match PhoneNumber::parse(&number) {
                Ok(number) => from_phone_numbers.push(number),
                Err(message) => bad(&mut errors, "from_phone_numbers", message),
            }
        }
        let timezone = self.timezone.unwrap_or_else(|| "UTC".into());
        if let Err(message) = call_service::campaigns::window::parse_tz(&timezone) {
            bad(&mut errors, "timezone", message);
        }
        let window = self.window.and_then(|w| {
            let days: Vec<u8> = w
                .days
                .iter()
                .filter_map(|d| DAYS.iter().position(|n| n.eq_ignore_ascii_case(d)).map(|p| p as u8))
                .collect();
            if days.len() != w.days.len() || days.is_empty() {
                bad(&mut errors, "window.days", "use one or more of mon, tue, wed, thu, fri, sat, sun");
            }
            let (start, end) = (time(&w.start), time(&w.end));
            if start.is_none() || end.is_none() || start == end {
                bad(&mut errors, "window", "start and end must be different HH:MM times");
            }
            Some(Window { days, start: start?, end: end? })
        });
        if let (Some(starts), Some(ends)) = (self.starts_at, self.ends_at) {
            if ends <= starts {
                bad(&mut errors, "ends_at", "must be after starts_at");
            }
        }
        let max_concurrency = match self.max_concurrency {
            Some(n) if (1..=10_000).contains(&n) => n as i32,
            _ => {
                bad(
                    &mut errors,
                    "max_concurrency",
                    "is required, at least 1 (and at most your campaign limit)",
                );
                1
            }
        };
        let calls_per_minute = match self.calls_per_minute {
            None => None,
            Some(n) if (1..=100_000).contains(&n) => Some(n as i32),
            Some(_) => {
                bad(&mut errors, "calls_per_minute", "must be at least 1");
                None
            }
        };
        if self.budget.is_some_and(|budget| !(0.0..=MAX_BUDGET).contains(&budget)) {
            bad(&mut errors, "budget", "must be between 0 and 1000000000");
        }
        let retry = match self.retry {
            None => RetryPolicy { on: Vec::new(), delay_seconds: 0, max_attempts: 1 },
            Some(r) => {
                for outcome in &r.on {
                    let known = outcome == "voicemail"
                        || outcome.parse::<CallStatus>().is_ok_and(|s| s.is_terminal());
                    if !known {
                        bad(
                            &mut errors,
                            "retry.on",
                            format!("`{outcome}` is not a terminal status or `voicemail`"),
                        );
                    }
                }
                if !(0..=30 * 86_400).contains(&r.delay_seconds) {
                    bad(&mut errors, "retry.delay_seconds", "must be between 0 and 2592000");
                }
                if !(1..=100).contains(&r.max_attempts) {
                    bad(&mut errors, "retry.max_attempts", "must be between 1 and 100");
                }
                RetryPolicy {
                    on: r.on,
                    delay_seconds: r.delay_seconds.clamp(0, i32::MAX as i64) as i32,
                    max_attempts: r.max_attempts.clamp(1, 100) as i32,
                }
            }
        };
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        Ok(CampaignSettings {
            name,
            agent_id,
            from_phone_numbers,
            timezone,
            window,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            max_concurrency,
            calls_per_minute,
            retry,
            budget: self.budget,
        })
    }
}

pub fn window_output(window: &Window) -> WindowInput {
    WindowInput {
        days: window.days.iter().map(|d| DAYS[usize::from(*d).min(6)].to_owned()).collect(),
        start: window.start.format("%H:%M").to_string(),
        end: window.end.format("%H:%M").to_string(),
    }
}
