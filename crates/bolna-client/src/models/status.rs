//! Bolna's execution statuses (kebab-case on the wire): the one list of them, what each means, and
//! a fallback for statuses this build does not know yet.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A status Bolna documents, in lifecycle order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BolnaStatus {
    Scheduled,
    Prepared,
    Rescheduled,
    Queued,
    Initiated,
    Ringing,
    InProgress,
    CallDisconnected,
    Completed,
    NoAnswer,
    Busy,
    Failed,
    Canceled,
    Stopped,
    Error,
    BalanceLow,
}

const NAMES: [(BolnaStatus, &str); 16] = [
    (BolnaStatus::Scheduled, "scheduled"),
    (BolnaStatus::Prepared, "prepared"),
    (BolnaStatus::Rescheduled, "rescheduled"),
    (BolnaStatus::Queued, "queued"),
    (BolnaStatus::Initiated, "initiated"),
    (BolnaStatus::Ringing, "ringing"),
    (BolnaStatus::InProgress, "in-progress"),
    (BolnaStatus::CallDisconnected, "call-disconnected"),
    (BolnaStatus::Completed, "completed"),
    (BolnaStatus::NoAnswer, "no-answer"),
    (BolnaStatus::Busy, "busy"),
    (BolnaStatus::Failed, "failed"),
    (BolnaStatus::Canceled, "canceled"),
    (BolnaStatus::Stopped, "stopped"),
    (BolnaStatus::Error, "error"),
    (BolnaStatus::BalanceLow, "balance-low"),
];

impl BolnaStatus {
    /// Every status, in lifecycle order.
    pub fn all() -> impl Iterator<Item = BolnaStatus> {
        NAMES.iter().map(|(status, _)| *status)
    }

    /// The status named `value`, if Bolna documents it.
    pub fn parse(value: &str) -> Option<Self> {
        NAMES.iter().find(|(_, name)| *name == value).map(|(status, _)| *status)
    }

    pub fn as_str(self) -> &'static str {
        NAMES.iter().find(|(status, _)| *status == self).map(|(_, name)| *name).unwrap_or("")
    }

    /// No further status follows.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            BolnaStatus::Completed
                | BolnaStatus::NoAnswer
                | BolnaStatus::Busy
                | BolnaStatus::Failed
                | BolnaStatus::Canceled
                | BolnaStatus::Stopped
                | BolnaStatus::Error
                | BolnaStatus::BalanceLow
        )
    }

    /// The phone line is free: `call-disconnected` (post-processing still runs) or terminal.
    pub fn line_is_free(self) -> bool {
        self == BolnaStatus::CallDisconnected || self.is_terminal()
    }

    /// Waiting at Bolna (a time, a batch, or a line), not yet dialling.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            BolnaStatus::Scheduled | BolnaStatus::Prepared | BolnaStatus::Rescheduled | BolnaStatus::Queued
        )
    }
}

impl fmt::Display for BolnaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status an execution reports: one Bolna documents, or one this build does not know (stored,
/// never fatal).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
    Known(BolnaStatus),
    Other(String),
}

impl ExecutionStatus {
    /// Every known status, in lifecycle order.
    pub fn known() -> impl Iterator<Item = ExecutionStatus> {
        BolnaStatus::all().map(ExecutionStatus::Known)
    }

    pub fn parse(value: &str) -> Self {
        BolnaStatus::parse(value)
            .map_or_else(|| ExecutionStatus::Other(value.to_owned()), ExecutionStatus::Known)
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Known(status) => status.as_str(),
            ExecutionStatus::Other(name) => name,
        }
    }

    /// The documented status, if it is one.
    pub fn known_status(&self) -> Option<BolnaStatus> {
        match self {
            ExecutionStatus::Known(status) => Some(*status),
            ExecutionStatus::Other(_) => None,
        }
    }

    /// No further status follows.
    pub fn is_terminal(&self) -> bool {
        self.known_status().is_some_and(BolnaStatus::is_terminal)
    }

    /// The phone line is free: `call-disconnected` (post-processing still runs) or terminal.
    pub fn line_is_free(&self) -> bool {
        self.known_status().is_some_and(BolnaStatus::line_is_free)
    }

    /// Waiting at Bolna (a time, a batch, or a line), not yet dialling.
    pub fn is_pending(&self) -> bool {
        self.known_status().is_some_and(BolnaStatus::is_pending)
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ExecutionStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ExecutionStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(ExecutionStatus::parse(&value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_status_round_trips_and_unknown_ones_are_kept() {
        for status in ExecutionStatus::known() {
            assert_eq!(ExecutionStatus::parse(status.as_str()), status);
        }
        let odd = ExecutionStatus::parse("voicemail-detected");
        assert_eq!(odd, ExecutionStatus::Other("voicemail-detected".into()));
        assert_eq!(odd.as_str(), "voicemail-detected");
        assert!(!odd.is_terminal() && !odd.line_is_free());
    }

    #[test]
    fn the_line_is_free_on_disconnect_and_every_terminal_status() {
        assert!(BolnaStatus::CallDisconnected.line_is_free());
        assert!(!BolnaStatus::CallDisconnected.is_terminal());
        for status in BolnaStatus::all().filter(|s| s.is_terminal()) {
            assert!(status.line_is_free(), "{status}");
        }
        for live in
            [BolnaStatus::Queued, BolnaStatus::Initiated, BolnaStatus::Ringing, BolnaStatus::InProgress]
        {
            assert!(!live.line_is_free(), "{live}");
        }
    }
}
