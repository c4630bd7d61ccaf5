//! What every request handler can reach.

use std::sync::Arc;

use sqlx::PgPool;

use crate::settings::Settings;

/// Shared by all workers; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
}
