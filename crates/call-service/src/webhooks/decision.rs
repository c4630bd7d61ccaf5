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
    /// Bolna's status verbatim, to record as the call's `provider_status` (None: keep it).
    pub provider_status: Option<String>,
}

impl Decision {
    /// For a call in `status`, whose last status from Bolna was `provider`.
    pub fn new(
        status: CallStatus,
        provider: Option<&str>,
        cancel_requested: bool,
        execution: &Execution,
    ) -> Self {
        let bolna = match execution.status.known_status() {
            // Stopped at the user's request: the user canceled it.
            Some(BolnaStatus::Stopped) if cancel_requested => Some(BolnaStatus::Canceled),
            other => other,
        };
        let transition = match bolna {
            Some(incoming) => status.transition(provider, incoming),
            None => Transition::Stale,
        };
        let incoming = bolna.map(CallStatus::from_bolna);
        let (outcome, detail) = match (transition, incoming) {
            (_, None) => (EventOutcome::Stale, Some(format!("unknown status `{}` stored", execution.status))),
            (Transition::Apply, _) => (EventOutcome::Applied, None),
            (Transition::Duplicate, _) => (EventOutcome::Duplicate, None),
            (Transition::Stale, _) => (EventOutcome::Stale, Some(format!("call is already {status}"))),
        };
        let line_free = incoming.is_some_and(CallStatus::line_is_free);
        // Bolna's word for the call's status: recorded when the status applies or repeats, and for
        // a status this build does not know (so clients still see it), unless the call has ended.
        let provider_status = match (transition, incoming) {
            (Transition::Apply | Transition::Duplicate, _) => Some(execution.status.as_str().to_owned()),
            (_, None) if !status.is_terminal() => Some(execution.status.as_str().to_owned()),
            _ => None,
        };
        Self { incoming, transition, line_free, outcome, detail, provider_status }
    }

    /// The status to write, when the call moves (`placed` again when only Bolna's word changed).
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

    /// Every status a call can be in against every status Bolna sends: A applies (the call moves,
    /// or a placed call's provider status changes), D is a duplicate, S is stale (status kept, data
    /// merged). Rows: the call's status (a `placed` one last heard of as Bolna's `queued`); columns:
    /// Bolna's, in the order of `ExecutionStatus::known()`.
    const TABLE: &str = "
        incoming:          scheduled prepared rescheduled queued initiated ringing in-progress call-disconnected completed no-answer busy failed canceled stopped error balance-low
        scheduled          A         A        A           A      A         A       A           A                 A         A         A    A      A        A       A     A
        queued             A         A        A           A      A         A       A           A                 A         A         A    A      A        A       A     A
        initiating         A         A        A           A      A         A       A           A                 A         A         A    A      A        A       A     A
        placed             A         A        A           D      A         A       A           A                 A         A         A    A      A        A       A     A
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
                let provider = (current == CallStatus::Placed).then_some("queued");
                let decision = Decision::new(current, provider, false, &execution(incoming));
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
        let stopped = Decision::new(CallStatus::Placed, Some("queued"), true, &execution("stopped"));
        let canceled = CallStatus::Bolna(BolnaStatus::Canceled);
        assert_eq!((stopped.incoming, stopped.transition), (Some(canceled), Transition::Apply));
        assert!(stopped.ends_the_call() && stopped.line_free);
        let unknown =
            Decision::new(CallStatus::Bolna(BolnaStatus::Ringing), None, false, &execution("teleported"));
        assert_eq!((unknown.outcome, unknown.new_status()), (EventOutcome::Stale, None));
        assert_eq!(unknown.provider_status.as_deref(), Some("teleported"), "clients still see it");
    }

    #[test]
    fn a_placed_call_shows_bolnas_own_word_and_an_ended_call_keeps_its_last_one() {
        let rescheduled = Decision::new(CallStatus::Placed, Some("queued"), false, &execution("rescheduled"));
        assert_eq!(rescheduled.new_status(), Some("placed"));
        assert_eq!(rescheduled.provider_status.as_deref(), Some("rescheduled"));
        let completed = CallStatus::Bolna(BolnaStatus::Completed);
        let late = Decision::new(completed, Some("completed"), false, &execution("ringing"));
        assert_eq!((late.transition, late.provider_status), (Transition::Stale, None));
    }
}
