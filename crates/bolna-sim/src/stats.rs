//! What tests and load runs read back: live-call high-water marks (account and per agent),
//! call requests per recipient (double dials), and every webhook sent with its answer.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Webhook records kept in memory at most (counters keep counting past it).
const MAX_WEBHOOK_RECORDS: usize = 200_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    /// `POST /call` requests received (including refused ones).
    pub call_requests: u64,
    /// `POST /call` requests refused with `429` by the rate limit.
    pub rate_limited: u64,
    /// Executions Bolna deferred to the agent's calling hours (`rescheduled`).
    pub rescheduled: u64,
    /// Executions dialled (`initiated`): a rescheduled one stopped in time never is.
    pub dialled: u64,
    /// Executions created.
    pub accepted: u64,
    /// Accepted executions per recipient number: above 1 means someone was dialled twice.
    pub executions_by_recipient: BTreeMap<String, u32>,
    /// Call requests per recipient refused by the rate limit or an injected `429`/`5xx` fault: a
    /// client can tell which of its calls were placed only after a retry.
    #[serde(default)]
    pub refusals_by_recipient: BTreeMap<String, u32>,
    /// When the first call to each recipient was accepted (latency measurements).
    pub first_accepted_at: BTreeMap<String, chrono::DateTime<chrono::Utc>>,
    /// Executions accepted whose line is not yet free (Switchboard's slots cover these).
    pub open_now: u32,
    pub open_high_water: u32,
    pub open_by_agent_now: BTreeMap<String, u32>,
    pub open_by_agent_high_water: BTreeMap<String, u32>,
    /// Executions holding one of the account's lines (dialling or talking).
    pub lines_in_use: u32,
    pub lines_high_water: u32,
    /// Final statuses reached.
    pub final_statuses: BTreeMap<String, u64>,
    pub webhooks_delivered: u64,
    pub webhook_attempts_failed: u64,
    pub webhooks_dropped: u64,
    pub webhooks_given_up: u64,
    pub webhooks: Vec<WebhookRecord>,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub execution_id: String,
    pub status: String,
    pub attempt: u32,
    /// The receiver's HTTP status; `None` when nothing answered (down, outage, timeout).
    pub answer: Option<u16>,
    pub error: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    /// How long the receiver took to answer this attempt, in milliseconds.
    #[serde(default)]
    pub latency_ms: f64,
}

impl Stats {
    pub(crate) fn opened(&mut self, agent: &str, recipient: &str) {
        self.accepted += 1;
        *self.executions_by_recipient.entry(recipient.to_owned()).or_default() += 1;
        self.first_accepted_at.entry(recipient.to_owned()).or_insert_with(chrono::Utc::now);
        self.open_now += 1;
        self.open_high_water = self.open_high_water.max(self.open_now);
        let now = self.open_by_agent_now.entry(agent.to_owned()).or_default();
        *now += 1;
        let now = *now;
        let high = self.open_by_agent_high_water.entry(agent.to_owned()).or_default();
        *high = (*high).max(now);
    }

    pub(crate) fn refused(&mut self, recipient: &str) {
        *self.refusals_by_recipient.entry(recipient.to_owned()).or_default() += 1;
    }

    pub(crate) fn line_freed(&mut self, agent: &str) {
        self.open_now = self.open_now.saturating_sub(1);
        if let Some(now) = self.open_by_agent_now.get_mut(agent) {
            *now = now.saturating_sub(1);
        }
    }

    pub(crate) fn line_taken(&mut self) {
        self.lines_in_use += 1;
        self.lines_high_water = self.lines_high_water.max(self.lines_in_use);
    }

    pub(crate) fn line_released(&mut self) {
        self.lines_in_use = self.lines_in_use.saturating_sub(1);
    }

    pub(crate) fn record_webhook(&mut self, record: WebhookRecord) {
        if record.answer.is_some_and(|status| (200..300).contains(&status)) {
            self.webhooks_delivered += 1;
        } else {
            self.webhook_attempts_failed += 1;
        }
        if self.webhooks.len() < MAX_WEBHOOK_RECORDS {
            self.webhooks.push(record);
        }
    }

    /// Recipients dialled more than once.
    pub fn double_dials(&self) -> Vec<(&str, u32)> {
        self.executions_by_recipient.iter().filter(|(_, n)| **n > 1).map(|(r, n)| (r.as_str(), *n)).collect()
    }
}
