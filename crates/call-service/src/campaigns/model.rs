//! Campaigns and their contacts as stored, and the validated inputs that make them.

use chrono::{DateTime, NaiveTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::window::Window;
use crate::phone::PhoneNumber;
use crate::UserId;

macro_rules! text_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl $name {
            /// Every value's name.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                match value {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} `{other}`", stringify!($name))),
                }
            }
        }

        concurrency::text_sqlx_type!($name);
    };
}

text_enum!(CampaignStatus { Draft = "draft", Running = "running", Paused = "paused", Completed = "completed", Canceled = "canceled" });
text_enum!(ContactStatus {
    Pending = "pending",
    InProgress = "in_progress",
    RetryScheduled = "retry_scheduled",
    Done = "done",
    Exhausted = "exhausted",
    SkippedDnc = "skipped_dnc",
    Canceled = "canceled",
});

/// Which outcomes are retried, after how long, up to how many attempts (the first included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetryPolicy {
    /// Bolna terminal statuses, or `voicemail` (completed, answered by voice mail).
    pub on: Vec<String>,
    pub delay_seconds: i32,
    pub max_attempts: i32,
}

/// A campaign's settings, validated.
#[derive(Debug, Clone)]
pub struct CampaignSettings {
    pub name: String,
    pub agent_id: String,
    pub from_phone_numbers: Vec<PhoneNumber>,
    pub timezone: String,
    pub window: Option<Window>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_concurrency: i32,
    pub calls_per_minute: Option<i32>,
    pub retry: RetryPolicy,
    /// In Bolna's currency; `None`: no budget of its own (its user's monthly budget still applies).
    pub budget: Option<f64>,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Campaign {
    pub id: Uuid,
    pub user_id: UserId,
    pub name: String,
    pub agent_id: String,
    pub from_phone_numbers: Vec<String>,
    pub timezone: String,
    pub window_days: Option<Vec<i16>>,
    pub window_start: Option<NaiveTime>,
    pub window_end: Option<NaiveTime>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_concurrency: i32,
    pub calls_per_minute: Option<i32>,
    pub retry_on: Vec<String>,
    pub retry_delay_seconds: i32,
    pub max_attempts: i32,
    pub status: CampaignStatus,
    /// Why a paused campaign is paused: `user` or `budget_exhausted`.
    pub pause_reason: Option<String>,
    pub budget: Option<f64>,
    pub calls_placed: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl Campaign {
    pub fn window(&self) -> Option<Window> {
        match (&self.window_days, self.window_start, self.window_end) {
            (Some(days), Some(start), Some(end)) => {
                Some(Window { days: days.iter().map(|d| *d as u8).collect(), start, end })
            }
            _ => None,
        }
    }
}

/// A contact to add.
#[derive(Debug, Clone, PartialEq)]
pub struct NewContact {
    pub phone_number: PhoneNumber,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub variables: Map<String, Value>,
}

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: Uuid,
    pub campaign_id: Uuid,
    pub phone_number: String,
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub variables: Value,
    pub status: ContactStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_call_id: Option<Uuid>,
    pub last_outcome: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Progress counts of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CampaignStats {
    pub total: i64,
    pub pending: i64,
    pub in_progress: i64,
    pub retry_scheduled: i64,
    pub done: i64,
    pub exhausted: i64,
    pub skipped_dnc: i64,
    pub canceled: i64,
    pub by_outcome: std::collections::BTreeMap<String, i64>,
}
