//! Switchboard's database schema.
//!
//! The SQL lives in the top-level `migrations/` folder; this crate embeds it once as [`MIGRATOR`],
//! which the `switchboard` binary (`serve`, `migrate`, `dev`), the test harness and the benchmark all
//! share. Applied migrations are never edited: a change is a new file.

/// Every migration in `migrations/`, embedded at build time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// The newest migration version this build knows, used by `/readyz` to tell whether the database
/// has caught up with the binary.
pub fn latest_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_embedded_in_order() {
        let versions: Vec<i64> = MIGRATOR.iter().map(|m| m.version).collect();
        assert!(!versions.is_empty(), "no migrations embedded");
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        assert_eq!(versions, sorted);
        assert_eq!(latest_version(), *sorted.last().unwrap_or(&0));
    }
}
