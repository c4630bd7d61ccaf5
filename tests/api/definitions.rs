//! The SQL that runs today is the SQL a reader finds in the owner crates' files: the migrated
//! database defines every function, view and trigger exactly as `crates/concurrency/sql/ledger.sql`
//! and `crates/call-service/sql/calls.sql` do, nothing more; no SQL outside `concurrency` names
//! the ledger's tables; and the SQL's terminal statuses are Rust's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use call_service::calls::CallStatus;
use sqlx::{Connection, PgConnection};

/// Every function, view and trigger of the public schema, by kind and name, with its definition
/// as PostgreSQL prints it.
async fn definitions(conn: &mut PgConnection) -> BTreeMap<String, String> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT 'function ' || p.oid::regprocedure::text, pg_get_functiondef(p.oid)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE n.nspname = 'public' AND p.prokind = 'f'
         UNION ALL
         SELECT 'view ' || c.relname, pg_get_viewdef(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'v'
         UNION ALL
         SELECT 'trigger ' || t.tgname, pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND NOT t.tgisinternal",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    rows.into_iter().collect()
}

#[tokio::test]
async fn the_migrated_database_defines_every_function_view_and_trigger_as_the_owner_crates_files_do() {
    let url = crate::helpers::fresh_database().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let migrated = definitions(&mut conn).await;

    // Applying the files on top of the migrations must change nothing, and add nothing.
    let mut tx = conn.begin().await.unwrap();
    sqlx::raw_sql(concurrency::LEDGER_SQL).execute(&mut *tx).await.expect("ledger.sql applies");
    sqlx::raw_sql(call_service::CALLS_SQL).execute(&mut *tx).await.expect("calls.sql applies");
    let from_files = definitions(&mut tx).await;
    tx.rollback().await.unwrap();

    for (name, definition) in &from_files {
        assert_eq!(migrated.get(name), Some(definition), "{name}: the migrations and its file disagree");
    }
    // Every function, view and trigger the migrations leave is defined in one of the files.
    let files = format!("{}\n{}", concurrency::LEDGER_SQL, call_service::CALLS_SQL);
    for name in migrated.keys() {
        let (kind, signature) = name.split_once(' ').unwrap();
        let bare = signature.split('(').next().unwrap();
        let defined = match kind {
            "function" => format!("CREATE OR REPLACE FUNCTION {bare}("),
            "view" => format!("CREATE OR REPLACE VIEW {bare} "),
            _ => format!("CREATE OR REPLACE TRIGGER {bare} "),
        };
        assert!(files.contains(&defined), "{name} is not defined in ledger.sql or calls.sql");
    }
    assert!(migrated.keys().any(|name| name.starts_with("function admit_calls(")), "{migrated:?}");
}

/// Source files of the workspace's crates (not their tests), as (path, text).
fn sources(root: &Path) -> Vec<(PathBuf, String)> {
    let mut found = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .flat_map(|krate| [krate.join("src"), krate.join("sql")])
        .filter(|folder| folder.is_dir())
        .collect();
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs" || ext == "sql") {
                found.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    found
}

#[test]
fn no_sql_outside_the_ledger_crate_names_its_tables() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut offenders = Vec::new();
    let mut ledger_mentions = 0;
    for (path, text) in sources(root) {
        // SQL that reads or writes a table names it after one of these words.
        let words: Vec<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|word| !word.is_empty())
            .map(str::to_ascii_uppercase)
            .collect();
        let names_a_table = words.windows(2).any(|pair| {
            ["FROM", "JOIN", "UPDATE", "INTO", "TABLE"].contains(&pair[0].as_str())
                && ["ACTIVE_CALLS", "ACCOUNT_SLOTS"].contains(&pair[1].as_str())
        });
        if path.starts_with(root.join("crates/concurrency")) {
            ledger_mentions += usize::from(names_a_table);
        } else if names_a_table {
            offenders.push(path.strip_prefix(root).unwrap().display().to_string());
        }
    }
    assert!(
        offenders.is_empty(),
        "SQL naming active_calls or account_slots outside concurrency: {offenders:?}"
    );
    assert!(ledger_mentions >= 3, "the check sees the ledger's own SQL ({ledger_mentions} files)");
}

#[tokio::test]
async fn the_terminal_statuses_of_the_sql_are_rusts() {
    let url = crate::helpers::fresh_database().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    for status in CallStatus::all() {
        let terminal: bool = sqlx::query_scalar("SELECT call_status_is_terminal($1)")
            .bind(status.as_str())
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(terminal, status.is_terminal(), "{status}");
    }
}
