//! A call's status and the state machine that orders them.
//!
//! Switchboard's own statuses come first: `queued` without an execution ID (waiting for a slot)
//! and `initiating` (slot held, request to Bolna in flight). Then Bolna's, verbatim. Events may
//! arrive twice or out of order: an event that would move a call backwards or out of a terminal
//! status changes no status (it may still add data).

use std::fmt;
use std::str::FromStr;

use bolna_client::ExecutionStatus;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CallStatus {
    Queued,
    Initiating,
    Scheduled,
    Prepared,
    Rescheduled,
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

const ALL: [(CallStatus, &str); 17] = [
    (CallStatus::Queued, "queued"),
    (CallStatus::Initiating, "initiating"),
    (CallStatus::Scheduled, "scheduled"),
    (CallStatus::Prepared, "prepared"),
    (CallStatus::Rescheduled, "rescheduled"),
    (CallStatus::Initiated, "initiated"),
    (CallStatus::Ringing, "ringing"),
    (CallStatus::InProgress, "in-progress"),
    (CallStatus::CallDisconnected, "call-disconnected"),
    (CallStatus::Completed, "completed"),
    (CallStatus::NoAnswer, "no-answer"),
    (CallStatus::Busy, "busy"),
    (CallStatus::Failed, "failed"),
    (CallStatus::Canceled, "canceled"),
    (CallStatus::Stopped, "stopped"),
    (CallStatus::Error, "error"),
    (CallStatus::BalanceLow, "balance-low"),
];

/// What an incoming status does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Moves the call forward.
    Apply,
    /// The call is already there.
    Duplicate,
    /// Would move it backwards or out of a terminal status: status unchanged.
    Stale,
}

impl CallStatus {
    pub fn all() -> impl Iterator<Item = CallStatus> {
        ALL.iter().map(|(status, _)| *status)
    }

    pub fn as_str(self) -> &'static str {
        ALL.iter().find(|(status, _)| *status == self).map(|(_, name)| *name).unwrap_or("queued")
    }

    /// Bolna's status as a call status (`None` for one this build does not know).
    pub fn from_execution(status: &ExecutionStatus) -> Option<Self> {
        status.as_str().parse().ok().filter(|s| *s != CallStatus::Initiating)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CallStatus::Completed
                | CallStatus::NoAnswer
                | CallStatus::Busy
                | CallStatus::Failed
                | CallStatus::Canceled
                | CallStatus::Stopped
                | CallStatus::Error
                | CallStatus::BalanceLow
        )
    }

    /// The phone line is free: the slot can go.
    pub fn line_is_free(self) -> bool {
        self == CallStatus::CallDisconnected || self.is_terminal()
    }

    /// Ringing or talking: too late to cancel.
    pub fn is_live(self) -> bool {
        matches!(self, CallStatus::Initiated | CallStatus::Ringing | CallStatus::InProgress)
    }

    /// Position in the lifecycle. `queued` ranks as Switchboard's queue without an execution ID
    /// and as Bolna's queue with one.
    pub fn rank(self, has_execution_id: bool) -> u8 {
        match self {
            CallStatus::Queued if !has_execution_id => 0,
            CallStatus::Initiating => 1,
            CallStatus::Scheduled | CallStatus::Prepared | CallStatus::Rescheduled => 2,
            CallStatus::Queued => 3,
            CallStatus::Initiated => 4,
            CallStatus::Ringing => 5,
            CallStatus::InProgress => 6,
            CallStatus::CallDisconnected => 7,
            _ => 8,
        }
    }

    /// What Bolna's `incoming` status does to a call now in `self`.
    pub fn transition(self, has_execution_id: bool, incoming: CallStatus) -> Transition {
        if self.is_terminal() {
            return if incoming == self { Transition::Duplicate } else { Transition::Stale };
        }
        if incoming == self && has_execution_id {
            return Transition::Duplicate;
        }
        let (from, to) = (self.rank(has_execution_id), incoming.rank(true));
        if to > from || (to == from && incoming != self) {
            Transition::Apply
        } else {
            Transition::Stale
        }
    }
}

impl fmt::Display for CallStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Not one of the statuses above.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown call status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for CallStatus {
    type Err = UnknownStatus;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        ALL.iter()
            .find(|(_, name)| *name == value)
            .map(|(status, _)| *status)
            .ok_or_else(|| UnknownStatus(value.into()))
    }
}

concurrency::text_sqlx_type!(CallStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use CallStatus::*;

    #[test]
    fn names_round_trip_and_match_bolnas() {
        for status in CallStatus::all() {
            assert_eq!(status.as_str().parse::<CallStatus>(), Ok(status));
        }
        for execution in ExecutionStatus::known() {
            assert_eq!(CallStatus::from_execution(&execution).map(|s| s.as_str()), Some(execution.as_str()));
        }
        assert_eq!(CallStatus::from_execution(&ExecutionStatus::Other("new".into())), None);
    }

    #[test]
    fn the_lifecycle_moves_forward_only() {
        let path = [Initiated, Ringing, InProgress, CallDisconnected, Completed];
        let mut current = Initiating;
        for next in path {
            assert_eq!(current.transition(true, next), Transition::Apply, "{current} -> {next}");
            assert_eq!(
                next.transition(true, current),
                Transition::Stale,
                "{next} -> {current} goes backwards"
            );
            current = next;
        }
        assert_eq!(
            Completed.transition(true, InProgress),
            Transition::Stale,
            "late in-progress after completed"
        );
        assert_eq!(Completed.transition(true, Completed), Transition::Duplicate);
        assert_eq!(Completed.transition(true, Failed), Transition::Stale, "terminal is final");
        assert_eq!(Ringing.transition(true, Ringing), Transition::Duplicate);
    }

    #[test]
    fn bolnas_queued_moves_switchboards_queued_forward_once() {
        assert_eq!(Queued.transition(false, Queued), Transition::Apply, "our queue -> Bolna's queue");
        assert_eq!(Initiating.transition(false, Queued), Transition::Apply);
        assert_eq!(Queued.transition(true, Queued), Transition::Duplicate);
        assert_eq!(Initiated.transition(true, Queued), Transition::Stale);
    }

    #[test]
    fn early_exits_are_terminal_and_free_the_line() {
        for status in [NoAnswer, Busy, Failed, Canceled, Stopped, Error, BalanceLow, Completed] {
            assert!(status.is_terminal() && status.line_is_free());
            assert_eq!(Ringing.transition(true, status), Transition::Apply);
        }
        assert!(CallDisconnected.line_is_free() && !CallDisconnected.is_terminal());
    }
}
