//! The account's lines as Bolna hands them out: a call takes a free line, or waits in a strict
//! first-come-first-served queue — its place is taken when the call is accepted, not when its task
//! first runs.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Lines {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: u32,
    waiting: VecDeque<(u64, oneshot::Sender<()>)>,
    next_ticket: u64,
}

/// A place in the queue: resolves when the call holds a line.
#[derive(Debug)]
pub struct Ticket {
    pub id: u64,
    granted: oneshot::Receiver<()>,
}

impl Ticket {
    /// Waits for the line. `false` if the queue dropped this ticket (it was withdrawn).
    pub async fn granted(self) -> bool {
        self.granted.await.is_ok()
    }
}

impl Lines {
    pub fn new(count: u32) -> Self {
        Self { state: Mutex::new(State { free: count, waiting: VecDeque::new(), next_ticket: 0 }) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Joins the queue now (call this when the call is accepted).
    pub fn enqueue(&self) -> Ticket {
        let mut state = self.state();
        let (tx, rx) = oneshot::channel();
        let id = state.next_ticket;
        state.next_ticket += 1;
        if state.free > 0 && state.waiting.is_empty() {
            state.free -= 1;
            let _ = tx.send(());
        } else {
            state.waiting.push_back((id, tx));
        }
        Ticket { id, granted: rx }
    }

    /// Leaves the queue without a line (a call stopped while queued). True if it was still waiting.
    pub fn withdraw(&self, ticket: u64) -> bool {
        let mut state = self.state();
        let before = state.waiting.len();
        state.waiting.retain(|(id, _)| *id != ticket);
        before != state.waiting.len()
    }

    /// Gives a line back: to the longest waiting call, else to the pool.
    pub fn release(&self) {
        let mut state = self.state();
        while let Some((_, waiter)) = state.waiting.pop_front() {
            if waiter.send(()).is_ok() {
                return;
            }
        }
        state.free += 1;
    }
}
