//! A call's status and the state machine that orders them.
//!
//! One name, one meaning. Switchboard's own statuses come first: `scheduled` (waiting for the time
//! the client asked for, holding nothing; Bolna's own `scheduled` is only a `provider_status`),
//! `queued` (waiting in Switchboard's queue for a slot; never with an execution ID), `initiating` (slot held, request
//! to Bolna in flight) and `placed` (Bolna accepted the call and has not started dialling it:
//! Bolna's `scheduled`, `prepared`, `rescheduled` or `queued`, which stays visible verbatim in the
//! call's `provider_status`). From `initiated` on the statuses are Bolna's, verbatim. Events may
//! arrive twice or out of order: an event that would move a call backwards or out of a terminal
//! status changes no status (it may still add data).

use std::fmt;
use std::str::FromStr;

use bolna_client::{BolnaStatus, ExecutionStatus};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A call's status: Switchboard's own `scheduled`, `queued`, `initiating` and `placed`, or, once Bolna dials,
/// one of Bolna's statuses verbatim (the list is `bolna_client::BolnaStatus`). Build it from
/// Bolna's with [`CallStatus::from_bolna`], which folds Bolna's pre-dial statuses into `placed`:
/// `Bolna(s)` never holds one of those (`BolnaStatus::is_pending`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallStatus {
    /// Waiting for its `scheduled_at`; holds no slot. Then it joins the queue.
    Scheduled,
    /// Waiting in Switchboard's queue for a slot.
    Queued,
    /// A slot is held and the request to Bolna is in flight.
    Initiating,
    /// Bolna has the call and has not started dialling (its word is in `provider_status`).
    Placed,
    /// Dialling, live or ended: Bolna's status.
    Bolna(BolnaStatus),
}

/// What an incoming status does to a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Moves the call forward (for a `placed` call: Bolna's pre-dial status changed).
    Apply,
    /// The call is already there.
    Duplicate,
    /// Would move it backwards or out of a terminal status: status unchanged.
    Stale,
}

impl CallStatus {
    /// Every status, in lifecycle order: Switchboard's own first, then Bolna's from `initiated` on.
    pub fn all() -> impl Iterator<Item = CallStatus> {
        [CallStatus::Scheduled, CallStatus::Queued, CallStatus::Initiating, CallStatus::Placed]
            .into_iter()
            .chain(BolnaStatus::all().filter(|s| !s.is_pending()).map(CallStatus::Bolna))
    }

    /// Bolna's status as a call status: its pre-dial statuses are `placed`.
    pub fn from_bolna(status: BolnaStatus) -> Self {
        if status.is_pending() {
            CallStatus::Placed
        } else {
            CallStatus::Bolna(status)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            CallStatus::Scheduled => "scheduled",
            CallStatus::Queued => "queued",
            CallStatus::Initiating => "initiating",
            CallStatus::Placed => "placed",
            CallStatus::Bolna(status) => status.as_str(),
        }
    }

    /// Bolna's status as a call status (`None` for one this build does not know).
    pub fn from_execution(status: &ExecutionStatus) -> Option<Self> {
        status.known_status().map(CallStatus::from_bolna)
    }

    /// The call will not change again (Bolna's terminal statuses).
    pub fn is_terminal(self) -> bool {
        matches!(self, CallStatus::Bolna(status) if status.is_terminal())
    }

    /// The phone line is free: the slot can go.
    pub fn line_is_free(self) -> bool {
        matches!(self, CallStatus::Bolna(status) if status.line_is_free())
    }

    /// Position in the lifecycle.
    fn rank(self) -> u8 {
        use BolnaStatus::*;
        match self {
            CallStatus::Scheduled => 0,
            CallStatus::Queued => 1,
            CallStatus::Initiating => 2,
            CallStatus::Placed => 3,
            CallStatus::Bolna(Initiated) => 4,
            CallStatus::Bolna(Ringing) => 5,
            CallStatus::Bolna(InProgress) => 6,
            CallStatus::Bolna(CallDisconnected) => 7,
            CallStatus::Bolna(_) => 8,
        }
    }

    /// What Bolna's `incoming` status does to a call now in `self`, whose last pre-dial status
    /// from Bolna was `provider` (matters only while `placed`: Bolna moves a placed call between
    /// its pre-dial statuses in either direction — a queued call outside its agent's calling hours
    /// is rescheduled, a rescheduled one queued again — so any change there applies).
    pub fn transition(self, provider: Option<&str>, incoming: BolnaStatus) -> Transition {
        let to = CallStatus::from_bolna(incoming);
        if self.is_terminal() {
            return if to == self { Transition::Duplicate } else { Transition::Stale };
        }
        if to == self && self == CallStatus::Placed && provider != Some(incoming.as_str()) {
            return Transition::Apply;
        }
        if to == self {
            return Transition::Duplicate;
        }
        if to.rank() > self.rank() {
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
        CallStatus::all().find(|status| status.as_str() == value).ok_or_else(|| UnknownStatus(value.into()))
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
    fn every_name_means_one_status() {
        let names: Vec<&str> = CallStatus::all().map(CallStatus::as_str).collect();
        for status in CallStatus::all() {
            assert_eq!(status.as_str().parse::<CallStatus>(), Ok(status));
            assert_eq!(names.iter().filter(|name| **name == status.as_str()).count(), 1, "{status}");
        }
        for pending in BolnaStatus::all().filter(|s| s.is_pending()) {
            assert_eq!(CallStatus::from_bolna(pending), CallStatus::Placed, "Bolna's {pending}");
            // `queued` and `scheduled` are also Switchboard's own statuses, with their own meaning.
            if ![Queued, Scheduled].contains(&pending) {
                assert!(
                    pending.as_str().parse::<CallStatus>().is_err(),
                    "{pending} is only a provider status"
                );
            }
        }
        for execution in
            ExecutionStatus::known().filter(|s| !s.known_status().is_some_and(BolnaStatus::is_pending))
        {
            assert_eq!(CallStatus::from_execution(&execution).map(|s| s.as_str()), Some(execution.as_str()));
        }
        assert_eq!(CallStatus::from_execution(&ExecutionStatus::Other("new".into())), None);
        assert!("Completed".parse::<CallStatus>().is_err());
    }

    #[test]
    fn the_lifecycle_moves_forward_only() {
        let path = [Initiated, Ringing, InProgress, CallDisconnected, Completed];
        let mut current = CallStatus::Placed;
        for next in path {
            assert_eq!(current.transition(Some("queued"), next), Transition::Apply, "{current} -> {next}");
            assert_eq!(
                b(next).transition(None, Queued),
                Transition::Stale,
                "{next} -> queued goes backwards"
            );
            current = b(next);
        }
        assert_eq!(
            b(Completed).transition(None, InProgress),
            Transition::Stale,
            "late in-progress after completed"
        );
        assert_eq!(b(Completed).transition(None, Completed), Transition::Duplicate);
        assert_eq!(b(Completed).transition(None, Failed), Transition::Stale, "terminal is final");
        assert_eq!(b(Ringing).transition(None, Ringing), Transition::Duplicate);
    }

    #[test]
    fn bolnas_pre_dial_statuses_move_a_call_to_placed_then_only_change_its_provider_status() {
        assert_eq!(CallStatus::Queued.transition(None, Queued), Transition::Apply, "our queue -> placed");
        assert_eq!(CallStatus::Initiating.transition(None, Scheduled), Transition::Apply);
        let placed = CallStatus::Placed;
        assert_eq!(placed.transition(Some("queued"), Queued), Transition::Duplicate);
        assert_eq!(placed.transition(Some("queued"), Rescheduled), Transition::Apply, "guardrails");
        assert_eq!(placed.transition(Some("rescheduled"), Queued), Transition::Apply, "queued again");
        assert_eq!(b(Initiated).transition(None, Queued), Transition::Stale);
    }

    #[test]
    fn early_exits_are_terminal_and_free_the_line() {
        for status in [NoAnswer, Busy, Failed, Canceled, Stopped, Error, BalanceLow, Completed] {
            assert!(b(status).is_terminal() && b(status).line_is_free());
            assert_eq!(b(Ringing).transition(None, status), Transition::Apply);
            assert_eq!(CallStatus::Placed.transition(Some("queued"), status), Transition::Apply);
        }
        assert!(b(CallDisconnected).line_is_free() && !b(CallDisconnected).is_terminal());
        for own in [CallStatus::Scheduled, CallStatus::Queued, CallStatus::Initiating, CallStatus::Placed] {
            assert!(!own.line_is_free() && !own.is_terminal());
        }
    }
}
