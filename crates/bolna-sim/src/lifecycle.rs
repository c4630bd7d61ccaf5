//! One execution's life, as Bolna runs it:
//! `queued → initiated → ringing → in-progress → call-disconnected → completed`, or an early exit
//! (`no-answer`, `busy`, `failed` after ringing; `balance-low` before dialling; `stopped` while
//! queued). Every status change is posted as a webhook. Above the account's concurrency, calls
//! wait in `queued` for a line, first come first served. Outside the agent's calling hours a call
//! goes `queued → rescheduled` and waits, holding no line, for the next start hour (or a stop).

use std::sync::Arc;

use bolna_client::{BolnaStatus, CallRequest, ContextDetails, Execution, ExecutionStatus, TelephonyData};
use chrono::Utc;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};

use crate::config::OutcomeMix;
use crate::lines::Ticket;
use crate::state::{SimExecution, SimState};

/// How a call is made to end, instead of the configured mix.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    Status(ExecutionStatus),
    /// Completed, answered by a voice mail box.
    Voicemail,
}

/// Creates an execution for an accepted request, starts its life, and returns its id.
pub fn start(state: &Arc<SimState>, request: &CallRequest, forced: Option<Ending>) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = Utc::now();
    let body = Execution {
        id: id.clone(),
        status: ExecutionStatus::Known(BolnaStatus::Queued),
        agent_id: Some(request.agent_id.clone()),
        batch_id: None,
        error_message: None,
        answered_by_voice_mail: None,
        conversation_duration: Some(0.0),
        conversation_time: None,
        total_cost: Some(0.0),
        transcript: None,
        created_at: Some(now),
        updated_at: Some(now),
        cost_breakdown: None,
        usage_breakdown: None,
        extracted_data: None,
        context_details: Some(ContextDetails {
            recipient_data: Some(Value::Object(request.user_data.clone().unwrap_or_default())),
            recipient_phone_number: Some(request.recipient_phone_number.clone()),
        }),
        telephony_data: Some(TelephonyData {
            to_number: Some(request.recipient_phone_number.clone()),
            from_number: Some(request.from_phone_number.clone().unwrap_or_else(|| "+918035739222".into())),
            hosted_telephony: Some(true),
            call_type: Some("outbound".into()),
            provider: Some("plivo".into()),
            ..TelephonyData::default()
        }),
        transfer_call_data: None,
        batch_run_details: None,
        latency_data: None,
    };
    let wake = Arc::new(Notify::new());
    let (deliveries, receiver) = mpsc::unbounded_channel();
    state.stats().opened(&request.agent_id, &request.recipient_phone_number);
    let config = state.config();
    let (outcome, voicemail) = match forced {
        Some(Ending::Status(status)) => (status, false),
        Some(Ending::Voicemail) => (ExecutionStatus::Known(BolnaStatus::Completed), true),
        None => (pick(&config.outcomes), false),
    };
    let dialled = outcome != ExecutionStatus::Known(BolnaStatus::BalanceLow);
    // Outside the agent's calling hours the call waits for them, and only then for a line.
    let deferred = config
        .guardrails
        .map(|hours| hours.wait(&request.recipient_phone_number, now))
        .filter(|wait| dialled && !wait.is_zero());
    // Balance-low calls are never dialled: they take no place in the line queue.
    let ticket = (dialled && deferred.is_none()).then(|| state.lines.enqueue());
    state.executions().insert(
        id.clone(),
        SimExecution {
            body,
            agent_id: request.agent_id.clone(),
            recipient: request.recipient_phone_number.clone(),
            stop_requested: false,
            ticket: ticket.as_ref().map(|t| t.id).unwrap_or(u64::MAX),
            wake: wake.clone(),
            deliveries,
        },
    );
    tokio::spawn(crate::webhooks::deliver_in_order(state.clone(), receiver));
    tokio::spawn(run(state.clone(), id.clone(), (outcome, voicemail), wake, ticket, deferred));
    id
}

async fn run(
    state: Arc<SimState>,
    id: String,
    (outcome, voicemail): (ExecutionStatus, bool),
    wake: Arc<Notify>,
    ticket: Option<Ticket>,
    deferred: Option<std::time::Duration>,
) {
    let config = state.config();
    emit(&state, &id, ExecutionStatus::Known(BolnaStatus::Queued), |_| {});
    let ticket = match deferred {
        Some(wait) => {
            state.stats().rescheduled += 1;
            emit(&state, &id, ExecutionStatus::Known(BolnaStatus::Rescheduled), |_| {});
            tokio::select! {
                () = tokio::time::sleep(wait) => Some(state.lines.enqueue()),
                () = wait_for_stop(&state, &id, &wake) => {
                    finish(&state, &id, ExecutionStatus::Known(BolnaStatus::Stopped), |_| {});
                    return;
                }
            }
        }
        None => ticket,
    };
    let Some(ticket) = ticket else {
        tokio::time::sleep(config.scaled(config.timings.queued_to_initiated_ms)).await;
        finish(&state, &id, ExecutionStatus::Known(BolnaStatus::BalanceLow), |e| {
            e.error_message = Some("Insufficient wallet balance".into());
        });
        return;
    };

    let ticket_id = ticket.id;
    let granted = tokio::select! {
        granted = ticket.granted() => granted,
        () = wait_for_stop(&state, &id, &wake) => {
            // Stopped while queued: leave the queue, or give back a line granted meanwhile.
            if !state.lines.withdraw(ticket_id) {
                state.lines.release();
            }
            finish(&state, &id, ExecutionStatus::Known(BolnaStatus::Stopped), |_| {});
            return;
        }
    };
    if !granted {
        return;
    }
    state.stats().line_taken();
    let line = LineGuard(state.clone());
    if state.executions().get(&id).is_some_and(|e| e.stop_requested) {
        // A stop that raced the line: it was still queued, so the stop wins.
        drop(line);
        finish(&state, &id, ExecutionStatus::Known(BolnaStatus::Stopped), |_| {});
        return;
    }
    // Still `queued` until it dials: a stop in the meantime wins.
    tokio::select! {
        () = tokio::time::sleep(config.scaled(config.timings.queued_to_initiated_ms)) => {}
        () = wait_for_stop(&state, &id, &wake) => {
            drop(line);
            finish(&state, &id, ExecutionStatus::Known(BolnaStatus::Stopped), |_| {});
            return;
        }
    }
    state.stats().dialled += 1;
    emit(&state, &id, ExecutionStatus::Known(BolnaStatus::Initiated), |e| {
        if let Some(t) = e.telephony_data.as_mut() {
            t.provider_call_id = Some(uuid::Uuid::new_v4().to_string());
        }
    });
    tokio::time::sleep(config.scaled(config.timings.initiated_to_ringing_ms)).await;
    emit(&state, &id, ExecutionStatus::Known(BolnaStatus::Ringing), |_| {});
    tokio::time::sleep(config.scaled(config.timings.ringing_ms)).await;

    if outcome != ExecutionStatus::Known(BolnaStatus::Completed) {
        drop(line);
        finish(&state, &id, outcome.clone(), |e| early_exit_details(e, &outcome));
        return;
    }
    emit(&state, &id, ExecutionStatus::Known(BolnaStatus::InProgress), |_| {});
    if config.hold_calls {
        wake.notified().await;
    } else {
        tokio::time::sleep(config.scaled(config.timings.conversation_ms)).await;
    }
    drop(line);
    emit(&state, &id, ExecutionStatus::Known(BolnaStatus::CallDisconnected), |e| {
        if let Some(t) = e.telephony_data.as_mut() {
            t.hangup_by = Some("Callee".into());
            t.hangup_reason = Some("Call recipient hung up".into());
            t.hangup_provider_code = Some("4000".into());
        }
    });
    line_free(&state, &id);
    tokio::time::sleep(config.scaled(config.timings.post_processing_ms)).await;
    let conversation_ms =
        if voicemail { config.timings.conversation_ms / 4 } else { config.timings.conversation_ms };
    let seconds = conversation_ms as f64 / 1000.0;
    let transcript = state.config().transcript;
    complete(&state, &id, ExecutionStatus::Known(BolnaStatus::Completed), |e| {
        completed_details(e, seconds, transcript, voicemail)
    });
}

async fn wait_for_stop(state: &SimState, id: &str, wake: &Notify) {
    loop {
        wake.notified().await;
        if state.executions().get(id).is_some_and(|e| e.stop_requested) {
            return;
        }
    }
}

/// Holds one of the account's lines; gives it back when dropped.
struct LineGuard(Arc<SimState>);

impl Drop for LineGuard {
    fn drop(&mut self) {
        self.0.stats().line_released();
        self.0.lines.release();
    }
}

/// Sets the status (and whatever `change` adds), then queues the webhook.
fn emit(state: &SimState, id: &str, status: ExecutionStatus, change: impl FnOnce(&mut Execution)) {
    let mut executions = state.executions();
    let Some(execution) = executions.get_mut(id) else { return };
    execution.body.status = status;
    execution.body.updated_at = Some(Utc::now());
    change(&mut execution.body);
    let _ = execution.deliveries.send(execution.body.clone());
}

fn line_free(state: &SimState, id: &str) {
    let agent = state.executions().get(id).map(|e| e.agent_id.clone());
    if let Some(agent) = agent {
        state.stats().line_freed(&agent);
    }
}

/// A terminal status that also frees the line.
fn finish(state: &SimState, id: &str, status: ExecutionStatus, change: impl FnOnce(&mut Execution)) {
    line_free(state, id);
    complete(state, id, status, change);
}

/// A terminal status on a line already free.
fn complete(state: &SimState, id: &str, status: ExecutionStatus, change: impl FnOnce(&mut Execution)) {
    *state.stats().final_statuses.entry(status.as_str().to_owned()).or_default() += 1;
    emit(state, id, status, change);
}

fn early_exit_details(execution: &mut Execution, outcome: &ExecutionStatus) {
    let (by, reason, code, error) = match outcome {
        ExecutionStatus::Known(BolnaStatus::NoAnswer) => ("Carrier", "Call unanswered", "4001", None),
        ExecutionStatus::Known(BolnaStatus::Busy) => ("Callee", "Callee busy", "4002", None),
        _ => ("Error", "Provider error", "5003", Some("Telephony provider rejected the destination number")),
    };
    execution.error_message = error.map(str::to_owned);
    if let Some(t) = execution.telephony_data.as_mut() {
        t.hangup_by = Some(by.into());
        t.hangup_reason = Some(reason.into());
        t.hangup_provider_code = Some(code.into());
    }
}

fn completed_details(execution: &mut Execution, seconds: f64, transcript: String, voicemail: bool) {
    execution.answered_by_voice_mail = Some(voicemail);
    execution.conversation_duration = Some(seconds);
    execution.total_cost = Some((seconds * 8.6).round() / 100.0);
    execution.transcript = Some(transcript);
    execution.cost_breakdown =
        Some(json!({"llm": 0.9, "network": 1.6, "platform": 2.0, "synthesizer": 1.5, "transcriber": 0.4}));
    execution.extracted_data = Some(json!({"simulated": true}));
    let recording = format!("https://api.bolna.ai/recordings/call/{}", execution.id);
    if let Some(t) = execution.telephony_data.as_mut() {
        t.duration = Some(seconds.ceil() + 2.0);
        t.recording_url = Some(recording);
        t.ring_duration = Some(8.0);
    }
}

/// An outcome drawn from the configured mix.
fn pick(mix: &OutcomeMix) -> ExecutionStatus {
    let weighted = [
        (mix.completed, ExecutionStatus::Known(BolnaStatus::Completed)),
        (mix.no_answer, ExecutionStatus::Known(BolnaStatus::NoAnswer)),
        (mix.busy, ExecutionStatus::Known(BolnaStatus::Busy)),
        (mix.failed, ExecutionStatus::Known(BolnaStatus::Failed)),
        (mix.balance_low, ExecutionStatus::Known(BolnaStatus::BalanceLow)),
    ];
    let total: u32 = weighted.iter().map(|(w, _)| w).sum();
    if total == 0 {
        return ExecutionStatus::Known(BolnaStatus::Completed);
    }
    let mut roll = rand::random::<u32>() % total;
    for (weight, status) in weighted {
        if roll < weight {
            return status;
        }
        roll -= weight;
    }
    ExecutionStatus::Known(BolnaStatus::Completed)
}

/// Wakes a held (in-progress) call so it hangs up now. Returns whether it existed.
pub fn hang_up(state: &SimState, id: &str) -> bool {
    match state.executions().get(id) {
        Some(execution) => {
            execution.wake.notify_one();
            true
        }
        None => false,
    }
}
