//! The ledger's errors: expected outcomes are named; the rest is the database's.

use crate::ids::UserId;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("user {0} does not exist")]
    UnknownUser(UserId),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
