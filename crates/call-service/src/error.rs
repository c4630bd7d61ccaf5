//! The call service's errors: expected outcomes are named variants; the rest is unexpected.

use crate::calls::CallStatus;

#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("no such call")]
    NotFound,
    #[error("the Idempotency-Key was already used with a different request")]
    IdempotencyConflict,
    #[error("the call cannot be canceled: it is {status}")]
    NotCancelable { status: CallStatus },
    #[error("the user does not exist")]
    UnknownUser,
    #[error("{0}")]
    Invalid(String),
    #[error("{1}")]
    Conflict(&'static str, String),
    #[error("the number is on your do-not-call list")]
    DoNotCall,
    /// The user's per-number cap: calls to this number reached it within 24 hours.
    #[error("the number was called as often as your cap allows in 24 hours; under it again at {retry_at}")]
    NumberCallCap { retry_at: chrono::DateTime<chrono::Utc> },
    /// The user's monthly budget, or the campaign's budget, is spent.
    #[error("the {} budget is spent", budget.as_str())]
    BudgetExhausted { budget: concurrency::SpentBudget },
    #[error("Bolna refused: {0}")]
    BolnaRefused(String),
    #[error("Bolna is unavailable: {0}")]
    BolnaUnavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<concurrency::LedgerError> for CallError {
    fn from(error: concurrency::LedgerError) -> Self {
        match error {
            concurrency::LedgerError::UnknownUser(_) => CallError::UnknownUser,
            concurrency::LedgerError::Database(error) => CallError::Database(error),
        }
    }
}
