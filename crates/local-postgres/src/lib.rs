//! A private PostgreSQL cluster run from the server binaries installed on the machine.
//!
//! `switchboard dev`, the test harness and the benchmark use it when no database is configured.
//! The cluster lives in a data directory of the caller's choosing and is kept between runs; starting
//! an already running cluster is a no-op, and concurrent starters (parallel test processes) are
//! serialised by a lock file. PostgreSQL refuses to run as root, so when the caller is root the
//! server runs as the `postgres` system user (or `nobody`); when that user cannot reach the chosen
//! folder (a clone under `/root`), the cluster lives under `/var/tmp/switchboard-postgres` and the
//! chosen folder links to it.

mod binaries;
mod cluster;
mod databases;
mod system_user;
mod test_database;

pub use binaries::Binaries;
pub use cluster::{Cluster, ClusterOptions};
pub use databases::{create_fresh_database, drop_database, drop_stale_databases, ensure_database};
pub use test_database::fresh_test_database;
