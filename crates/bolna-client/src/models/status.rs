//! Bolna's execution statuses (kebab-case on the wire), with a fallback for ones not yet known.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where an execution is in its lifecycle.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExecutionStatus {
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
    /// A status this build does not know: stored, never fatal.
    Other(String),
}

const NAMES: [(ExecutionStatus, &str); 16] = [
    (ExecutionStatus::Scheduled, "scheduled"),
    (ExecutionStatus::Prepared, "prepared"),
    (ExecutionStatus::Rescheduled, "rescheduled"),
    (ExecutionStatus::Queued, "queued"),
    (ExecutionStatus::Initiated, "initiated"),
    (ExecutionStatus::Ringing, "ringing"),
    (ExecutionStatus::InProgress, "in-progress"),
    (ExecutionStatus::CallDisconnected, "call-disconnected"),
    (ExecutionStatus::Completed, "completed"),
    (ExecutionStatus::NoAnswer, "no-answer"),
    (ExecutionStatus::Busy, "busy"),
    (ExecutionStatus::Failed, "failed"),
    (ExecutionStatus::Canceled, "canceled"),
    (ExecutionStatus::Stopped, "stopped"),
    (ExecutionStatus::Error, "error"),
    (ExecutionStatus::BalanceLow, "balance-low"),
];

impl ExecutionStatus {
    /// Every known status, in lifecycle order.
    pub fn known() -> impl Iterator<Item = ExecutionStatus> {
        NAMES.iter().map(|(status, _)| status.clone())
    }

    pub fn parse(value: &str) -> Self {
        NAMES
            .iter()
            .find(|(_, name)| *name == value)
            .map(|(status, _)| status.clone())
            .unwrap_or_else(|| ExecutionStatus::Other(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        match self {
            ExecutionStatus::Other(name) => name,
            known => NAMES.iter().find(|(status, _)| status == known).map(|(_, name)| *name).unwrap_or(""),
        }
    }

    /// No further status follows.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Completed
                | ExecutionStatus::NoAnswer
                | ExecutionStatus::Busy
                | ExecutionStatus::Failed
                | ExecutionStatus::Canceled
                | ExecutionStatus::Stopped
                | ExecutionStatus::Error
                | ExecutionStatus::BalanceLow
        )
    }

    /// The phone line is free: `call-disconnected` (post-processing still runs) or terminal.
    pub fn line_is_free(&self) -> bool {
        *self == ExecutionStatus::CallDisconnected || self.is_terminal()
    }

    /// Waiting at Bolna (a time, a batch, or a line), not yet dialling.
    pub fn is_pending(&self) -> bool {
        matches!(
            self,
            ExecutionStatus::Scheduled
                | ExecutionStatus::Prepared
                | ExecutionStatus::Rescheduled
                | ExecutionStatus::Queued
        )
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
        assert!(ExecutionStatus::CallDisconnected.line_is_free());
        assert!(!ExecutionStatus::CallDisconnected.is_terminal());
        for status in ExecutionStatus::known().filter(ExecutionStatus::is_terminal) {
            assert!(status.line_is_free(), "{status}");
        }
        for live in [
            ExecutionStatus::Queued,
            ExecutionStatus::Initiated,
            ExecutionStatus::Ringing,
            ExecutionStatus::InProgress,
        ] {
            assert!(!live.line_is_free(), "{live}");
        }
    }
}
