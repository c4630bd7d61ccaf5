//! What one execution (a webhook body, or what the reconciler read from Bolna) does to its call,
//! decided from the call's status alone: pure, no database.

use bolna_client::{BolnaStatus, Execution};

use super::store::EventOutcome;
use crate::calls::{CallStatus, Transition};

/// The decision for one execution.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    pub incoming: Option<CallStatus>,
    pub transition: Transition,
    /// The line is free (the call ended or disconnected): the slot goes back.
    pub line_free: bool,
    pub outcome: EventOutcome,
    pub detail: Option<String>,
}

impl Decision {
    pub fn new(status: CallStatus, cancel_requested: bool, execution: &Execution) -> Self {
        let incoming = match CallStatus::from_execution(&execution.status) {
            // Stopped at the user's request: the user canceled it.
            Some(CallStatus::Bolna(BolnaStatus::Stopped)) if cancel_requested => {
                Some(CallStatus::Bolna(BolnaStatus::Canceled))
            }
            other => other,
        };
        let transition = match incoming {
            Some(incoming) => status.transition(true, incoming),
            None => Transition::Stale,
        };
        let (outcome, detail) = match (transition, incoming) {
            (_, None) => (EventOutcome::Stale, Some(format!("unknown status `{}` stored", execution.status))),
            (Transition::Apply, _) => (EventOutcome::Applied, None),
            (Transition::Duplicate, _) => (EventOutcome::Duplicate, None),
            (Transition::Stale, _) => (EventOutcome::Stale, Some(format!("call is already {status}"))),
        };
        let line_free = incoming.is_some_and(CallStatus::line_is_free);
        Self { incoming, transition, line_free, outcome, detail }
    }

    /// The status to write, when the call moves.
    pub fn new_status(&self) -> Option<&'static str> {
        self.incoming.filter(|_| self.transition == Transition::Apply).map(CallStatus::as_str)
    }

    pub fn ends_the_call(&self) -> bool {
        self.transition == Transition::Apply && self.incoming.is_some_and(CallStatus::is_terminal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bolna_client::ExecutionStatus;

    fn execution(status: &str) -> Execution {
        serde_json::from_value(serde_json::json!({"id": "e", "status": status})).expect("an execution")
    }

    /// Every status a call can be in (with Bolna's execution ID) against every status Bolna sends:
    /// A applies (the call moves), D is a duplicate, S is stale (status kept, data merged). Rows:
    /// the call's status; columns: Bolna's, in the order of `ExecutionStatus::known()`.
    const TABLE: &str = "
        incoming:          scheduled prepared rescheduled queued initiated ringing in-progress call-disconnected completed no-answer busy failed canceled stopped error balance-low
        queued             S         S        S           D      A         A       A           A                 A         A         A    A      A        A       A     A
        initiating         A         A        A           A      A         A       A           A                 A         A         A    A      A        A       A     A
        scheduled          D         A        A           A      A         A       A           A                 A         A         A    A      A        A       A     A
        prepared           A         D        A           A      A         A       A           A                 A         A         A    A      A        A       A     A
        rescheduled        A         A        D           A      A         A       A           A                 A         A         A    A      A        A       A     A
        initiated          S         S        S           S      D         A       A           A                 A         A         A    A      A        A       A     A
        ringing            S         S        S           S      S         D       A           A                 A         A         A    A      A        A       A     A
        in-progress        S         S        S           S      S         S       D           A                 A         A         A    A      A        A       A     A
        call-disconnected  S         S        S           S      S         S       S           D                 A         A         A    A      A        A       A     A
        completed          S         S        S           S      S         S       S           S                 D         S         S    S      S        S       S     S
        no-answer          S         S        S           S      S         S       S           S                 S         D         S    S      S        S       S     S
        busy               S         S        S           S      S         S       S           S                 S         S         D    S      S        S       S     S
        failed             S         S        S           S      S         S       S           S                 S         S         S    D      S        S       S     S
        canceled           S         S        S           S      S         S       S           S                 S         S         S    S      D        S       S     S
        stopped            S         S        S           S      S         S       S           S                 S         S         S    S      S        D       S     S
        error              S         S        S           S      S         S       S           S                 S         S         S    S      S        S       D     S
        balance-low        S         S        S           S      S         S       S           S                 S         S         S    S      S        S       S     D";

    #[test]
    fn every_status_pair_moves_forward_only_as_the_table_says() {
        let mut lines = TABLE.lines().map(str::trim).filter(|line| !line.is_empty());
        let header: Vec<&str> = lines.next().expect("a header").split_whitespace().skip(1).collect();
        let known: Vec<String> = ExecutionStatus::known().map(|s| s.as_str().to_owned()).collect();
        assert_eq!(header, known, "the columns are Bolna's statuses, in order");
        let mut rows = 0;
        for line in lines {
            let mut cells = line.split_whitespace();
            let current: CallStatus = cells.next().expect("a status").parse().expect("a call status");
            for (incoming, cell) in header.iter().zip(cells) {
                let decision = Decision::new(current, false, &execution(incoming));
                let expected = match cell {
                    "A" => Transition::Apply,
                    "D" => Transition::Duplicate,
                    _ => Transition::Stale,
                };
                assert_eq!(decision.transition, expected, "{current} <- {incoming}");
                let line_free = ExecutionStatus::parse(incoming).line_is_free();
                assert_eq!(decision.line_free, line_free, "{current} <- {incoming}: the line");
            }
            rows += 1;
        }
        assert_eq!(rows, CallStatus::all().count(), "a row for every call status");
    }

    #[test]
    fn a_stop_the_user_asked_for_reads_as_canceled_and_an_unknown_status_is_stored_as_stale() {
        let stopped = Decision::new(CallStatus::QUEUED, true, &execution("stopped"));
        let canceled = CallStatus::Bolna(BolnaStatus::Canceled);
        assert_eq!((stopped.incoming, stopped.transition), (Some(canceled), Transition::Apply));
        assert!(stopped.ends_the_call() && stopped.line_free);
        let unknown = Decision::new(CallStatus::Bolna(BolnaStatus::Ringing), false, &execution("teleported"));
        assert_eq!((unknown.outcome, unknown.new_status()), (EventOutcome::Stale, None));
    }
}
