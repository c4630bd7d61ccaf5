//! A call's status and the state machine that orders them.
//!
//! Switchboard's own statuses come first: `queued` without an execution ID (waiting for a slot)
//! and `initiating` (slot held, request to Bolna in flight). Then Bolna's, verbatim. Events may
//! arrive twice or out of order: an event that would move a call backwards or out of a terminal
//! status changes no status (it may still add data).

use std::fmt;
use std::str::FromStr;

use bolna_client::{BolnaStatus, ExecutionStatus};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A call's status: Switchboard's own `initiating`, or one of Bolna's statuses verbatim (the list is
/// `bolna_client::BolnaStatus`). `queued` without an execution ID is Switchboard's own queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// A slot is held and the request to Bolna is in flight.
    Initiating,
    Bolna(BolnaStatus),
}

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
    pub const QUEUED: CallStatus = CallStatus::Bolna(BolnaStatus::Queued);

    /// Every status, Switchboard's own first (`queued`, `initiating`), then Bolna's in lifecycle order.
    pub fn all() -> impl Iterator<Item = CallStatus> {
        [CallStatus::QUEUED, CallStatus::Initiating]
            .into_iter()
            .chain(BolnaStatus::all().filter(|s| *s != BolnaStatus::Queued).map(CallStatus::Bolna))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Initiating => "initiating",
            CallStatus::Bolna(status) => status.as_str(),
        }
    }

    /// Bolna's status as a call status (`None` for one this build does not know).
    pub fn from_execution(status: &ExecutionStatus) -> Option<Self> {
        status.known_status().map(CallStatus::Bolna)
    }

    /// Bolna's status, when the call is in one.
    pub fn bolna(self) -> Option<BolnaStatus> {
        match self {
            CallStatus::Initiating => None,
            CallStatus::Bolna(status) => Some(status),
        }
    }

    /// The call will not change again (Bolna's terminal statuses).
    pub fn is_terminal(self) -> bool {
        self.bolna().is_some_and(BolnaStatus::is_terminal)
    }

    /// The phone line is free: the slot can go.
    pub fn line_is_free(self) -> bool {
        self.bolna().is_some_and(BolnaStatus::line_is_free)
    }

    /// Position in the lifecycle. `queued` ranks as Switchboard's queue without an execution ID
    /// and as Bolna's queue with one.
    pub fn rank(self, has_execution_id: bool) -> u8 {
        use BolnaStatus::*;
        match self {
            CallStatus::Bolna(Queued) if !has_execution_id => 0,
            CallStatus::Initiating => 1,
            CallStatus::Bolna(Scheduled | Prepared | Rescheduled) => 2,
            CallStatus::Bolna(Queued) => 3,
            CallStatus::Bolna(Initiated) => 4,
            CallStatus::Bolna(Ringing) => 5,
            CallStatus::Bolna(InProgress) => 6,
            CallStatus::Bolna(CallDisconnected) => 7,
            CallStatus::Bolna(_) => 8,
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
        match value {
            "initiating" => Ok(CallStatus::Initiating),
            other => {
                BolnaStatus::parse(other).map(CallStatus::Bolna).ok_or_else(|| UnknownStatus(value.into()))
            }
        }
    }
}

impl Serialize for CallStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for CallStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

concurrency::text_sqlx_type!(CallStatus);

#[cfg(test)]
mod tests {
    use super::*;
    use BolnaStatus::*;

    fn b(status: BolnaStatus) -> CallStatus {
        CallStatus::Bolna(status)
    }

    #[test]
    fn names_round_trip_and_are_bolnas() {
        for status in CallStatus::all() {
            assert_eq!(status.as_str().parse::<CallStatus>(), Ok(status));
        }
        assert_eq!(CallStatus::all().count(), BolnaStatus::all().count() + 1, "Bolna's and `initiating`");
        for execution in ExecutionStatus::known() {
            assert_eq!(CallStatus::from_execution(&execution).map(|s| s.as_str()), Some(execution.as_str()));
        }
        assert_eq!(CallStatus::from_execution(&ExecutionStatus::Other("new".into())), None);
        assert!("Completed".parse::<CallStatus>().is_err());
    }

    #[test]
    fn the_lifecycle_moves_forward_only() {
        let path = [Initiated, Ringing, InProgress, CallDisconnected, Completed].map(b);
        let mut current = CallStatus::Initiating;
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
            b(Completed).transition(true, b(InProgress)),
            Transition::Stale,
            "late in-progress after completed"
        );
        assert_eq!(b(Completed).transition(true, b(Completed)), Transition::Duplicate);
        assert_eq!(b(Completed).transition(true, b(Failed)), Transition::Stale, "terminal is final");
        assert_eq!(b(Ringing).transition(true, b(Ringing)), Transition::Duplicate);
    }

    #[test]
    fn bolnas_queued_moves_switchboards_queued_forward_once() {
        let queued = CallStatus::QUEUED;
        assert_eq!(queued.transition(false, queued), Transition::Apply, "our queue -> Bolna's queue");
        assert_eq!(CallStatus::Initiating.transition(false, queued), Transition::Apply);
        assert_eq!(queued.transition(true, queued), Transition::Duplicate);
        assert_eq!(b(Initiated).transition(true, queued), Transition::Stale);
    }

    #[test]
    fn early_exits_are_terminal_and_free_the_line() {
        for status in [NoAnswer, Busy, Failed, Canceled, Stopped, Error, BalanceLow, Completed].map(b) {
            assert!(status.is_terminal() && status.line_is_free());
            assert_eq!(b(Ringing).transition(true, status), Transition::Apply);
        }
        assert!(b(CallDisconnected).line_is_free() && !b(CallDisconnected).is_terminal());
        assert!(!CallStatus::Initiating.line_is_free());
    }
}
