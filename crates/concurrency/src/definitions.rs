//! The ledger's SQL functions and view as they are defined today (`sql/ledger.sql`). Migrations
//! apply them; a test checks that the migrated database matches this text.

/// Every `CREATE OR REPLACE` of the ledger, in the order they must run.
pub const LEDGER_SQL: &str = include_str!("../sql/ledger.sql");

/// The ledger's tables: only this crate's SQL names them (other crates may list them, e.g. to
/// report their sizes, through this constant).
pub const LEDGER_TABLES: [&str; 3] = ["active_calls", "account_slots", "bolna_send_tokens"];
