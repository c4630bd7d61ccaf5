//! `switchboard campaigns import FILE --campaign ID`: large contact lists, in batched inserts, with
//! a progress bar. Rows that are not valid are listed by line; duplicates are skipped.

use std::time::Instant;

use anyhow::Context;
use call_service::campaigns::add_contacts;
use call_service::campaigns::contacts_input::contacts_from_csv;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ImportArgs;
use crate::settings::Settings;

/// Contacts per transaction (each runs batched inserts of 2,000 rows).
const CHUNK: usize = 10_000;

pub async fn import(settings: Settings, args: ImportArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let text = std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let (contacts, rejected) =
        contacts_from_csv(&text).map_err(|reason| anyhow::anyhow!("{}: {reason}", args.file.display()))?;
    let pool = crate::database::lazy_pool(&settings.database)?;
    crate::database::check_reachable(&settings.database).await?;
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM campaigns WHERE id = $1")
        .bind(args.campaign)
        .fetch_optional(&pool)
        .await?;
    match status.as_deref() {
        None => anyhow::bail!("campaign {} does not exist", args.campaign),
        Some("completed" | "canceled") => {
            anyhow::bail!("campaign {} is {}", args.campaign, status.unwrap_or_default())
        }
        Some(_) => {}
    }
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(contacts.len() as u64) };
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} contacts ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let (mut accepted, mut duplicates) = (0, 0);
    for chunk in contacts.chunks(CHUNK) {
        let mut tx = pool.begin().await?;
        let (added, dup) = add_contacts(&mut tx, args.campaign, chunk, chrono::Utc::now()).await?;
        tx.commit().await?;
        accepted += added;
        duplicates += dup;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    for row in rejected.iter().take(20) {
        eprintln!("line {}: `{}`: {}", row.line, row.value, row.reason);
    }
    if rejected.len() > 20 {
        eprintln!("… and {} more rejected rows", rejected.len() - 20);
    }
    println!(
        "imported {accepted} contacts ({duplicates} duplicates skipped, {} rows rejected) in {:.1} s",
        rejected.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
