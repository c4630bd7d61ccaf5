//! Starting a waiting queue's head: the ledger's `start_queue_head` — the same rules as a freed
//! slot's hand-over — in its own transaction, so instances never take the same call.

use concurrency::{QueueStart, StartableQueue};

use crate::calls::{get_call_by_id, Call};
use crate::error::CallError;
use crate::service::CallService;

/// What a claim attempt found.
#[derive(Debug)]
pub(crate) enum Claim {
    Claimed(Box<Call>),
    /// Taken by another instance, canceled, the user filled up meanwhile, or its budget is spent.
    Skipped,
    /// Every account line is taken: stop this pass.
    AccountFull,
    /// Bolna's rate limit is used up: stop this pass until a send token frees.
    RateLimited,
}

impl CallService {
    /// Starts the head of `queue` if its user still has a free slot and a send token and a line
    /// are free.
    pub(crate) async fn claim(&self, queue: &StartableQueue) -> Result<Claim, CallError> {
        let mut tx = self.pool().begin().await?;
        let answer =
            concurrency::start_queue_head(&mut tx, queue.user_id, queue.call_type, &self.slot_policy())
                .await?;
        let claim = match answer {
            QueueStart::Started(id) => {
                let call = get_call_by_id(&mut tx, id).await?.ok_or(CallError::NotFound)?;
                Claim::Claimed(Box::new(call))
            }
            QueueStart::AccountLimitReached => Claim::AccountFull,
            QueueStart::RateLimitReached => Claim::RateLimited,
            QueueStart::Empty
            | QueueStart::UserLimitReached
            | QueueStart::BudgetExhausted
            | QueueStart::HeadBusy => Claim::Skipped,
        };
        tx.commit().await?;
        Ok(claim)
    }
}
