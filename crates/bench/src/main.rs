//! `switchboard-bench`: runs the scenarios against a private PostgreSQL (or `DATABASE_URL`), the
//! Bolna simulator and a Switchboard server on loopback, and writes `target/bench/report.{md,json}`.
//! `--quick` runs every scenario briefly (a smoke test: it checks every figure is produced).

mod chart;
mod environment;
mod profile;
mod report;
mod scenarios;
mod soak;

use std::path::PathBuf;

use clap::Parser;

use report::{percentile, Curve, Figure, Report};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-bench",
    about = "Benchmark Switchboard's hot paths against PostgreSQL's own limits"
)]
struct Args {
    /// A short run for CI: every figure, few samples.
    #[arg(long)]
    quick: bool,
    /// Only these scenarios, comma-separated (throughput, steady, dispatch, instances, memory,
    /// large, depth, campaigns, results, outbound); the pgbench baseline always runs. For investigating one figure.
    #[arg(long)]
    only: Option<String>,
    /// Where the report goes.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// Instead of the figures: a soak of this length (e.g. `30m`, `2m`) — two servers, a steady
    /// call rate, injected faults, SIGKILL and restart of one server every few minutes — ending
    /// with the invariants checked; writes soak.md and soak.json; exits 1 when one does not hold.
    #[arg(long, value_parser = soak::parse_duration)]
    soak: Option<std::time::Duration>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(environment::AS_SWITCHBOARD) {
        return environment::run_as_switchboard().await;
    }
    let args = Args::parse();
    let wanted =
        |name: &str| args.only.as_deref().is_none_or(|only| only.split(',').any(|o| o.trim() == name));
    let (admin_url, cluster) = environment::postgres().await?;
    // Databases an interrupted run left behind (a finished run drops its own).
    local_postgres::drop_stale_databases(&admin_url, "bench", std::time::Duration::from_secs(3600)).await?;
    if let Some(duration) = args.soak {
        let held = soak::run(&admin_url, duration, &args.out).await?;
        drop(cluster);
        anyhow::ensure!(held, "an end-of-run invariant of the soak did not hold (see soak.md)");
        return Ok(());
    }
    let mut figures = Vec::new();
    let mut notes = vec![
        "Latencies are measured over real HTTP on loopback; the simulator answers at once.".to_owned(),
        "Each Switchboard server is a separate `switchboard serve` process (release build) on loopback."
            .to_owned(),
        // What the code does that moved each figure (README, Performance, has the before and after).
        "What moves the admission figures: admissions and Bolna's answers go to the database in \
         batches, one set-based statement and one commit each (database.batch_workers, batch_max; \
         sizes and times in the batched-statement table); those statements run on their own pool \
         that plans them once, as index lookups (database.batch_generic_plans: they used to be \
         planned on every execution, 1.0 ms of planning for 0.15 ms of execution); the ledger's \
         row-by-row foreign-key checks on its user and line columns are gone."
            .to_owned(),
        "What moves the webhook figures: live webhooks are batched the same way; a second webhook \
         for a call already in the batch goes with the next batch instead of taking the row lock \
         (a four-round-trip transaction)."
            .to_owned(),
        "What moves the queue figures: a freed slot goes to the user's oldest queued call inside the \
         freeing webhook's transaction; the dispatcher's pass is a loose index scan over the \
         waiting queues (plans below). GET /v1/calls is a keyset page on idx_calls_user_created."
            .to_owned(),
    ];
    let mut curves = Vec::new();
    let mut plans = Vec::new();
    let mut profiles = Vec::new();

    const CLIENTS: u32 = 32;
    let seconds: u32 = if args.quick { 3 } else { 10 };
    let repeats = if args.quick { 1 } else { 3 };
    eprintln!("baseline: pgbench at {CLIENTS} clients, {seconds} s per script, {repeats} runs each");
    let window = profile::Window::machine_only().await;
    let baseline = scenarios::baseline::run(&admin_url, CLIENTS, seconds, repeats).await?;
    profiles.push(window.finish("pgbench (both scripts)", None, None).await);
    let admission_baseline = baseline.admission_tps / 2.0;
    let runs = |runs: &[f64]| runs.iter().map(|tps| format!("{tps:.0}")).collect::<Vec<_>>().join(", ");
    notes.push(format!(
        "pgbench baselines are the median of {repeats} runs of {seconds} s each: 2-write script {} tps, \
         insert+update script {} tps.",
        runs(&baseline.admission_runs),
        runs(&baseline.webhook_runs)
    ));

    if wanted("throughput") {
        let users = if args.quick { 400 } else { 1000 };
        eprintln!("throughput: {users} users x 50 slots, {CLIENTS} clients, {seconds} s");
        let throughput_stack =
            environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?;
        let keys = throughput_stack.users(users, 50).await?;
        // Warm-up: the same load for a while, then ANALYZE (as autovacuum would on a live
        // database), so the window measures steady state, not plans made for empty tables.
        scenarios::throughput::admissions(&throughput_stack, &keys, CLIENTS as usize, 3).await?;
        throughput_stack.analyze().await?;
        let window = profile::Window::start(&throughput_stack).await;
        let admissions =
            scenarios::throughput::admissions(&throughput_stack, &keys, CLIENTS as usize, seconds.into())
                .await?;
        let done = admissions * f64::from(seconds);
        profiles.push(window.finish("admissions", Some(&throughput_stack), Some((done, "admission"))).await);
        figures.push(Figure {
            name: format!(
                "call admissions/s at {CLIENTS} clients (admitted, handed to Bolna, execution ID recorded)"
            ),
            value: admissions,
            unit: "calls/s".into(),
            baseline: admission_baseline,
            baseline_name: format!("pgbench 2-write tps / 2 = {:.0} / 2", baseline.admission_tps),
            ratio: admissions / admission_baseline,
            target: ">= 0.6 x baseline".into(),
            met: admissions / admission_baseline >= 0.6,
        });
        let window = profile::Window::start(&throughput_stack).await;
        let webhooks = scenarios::throughput::webhooks(
            &throughput_stack,
            &throughput_stack.database_url,
            CLIENTS as usize,
            seconds.into(),
        )
        .await?;
        let done = webhooks * f64::from(seconds);
        profiles.push(window.finish("webhooks", Some(&throughput_stack), Some((done, "webhook"))).await);
        figures.push(Figure {
            name: format!("webhook events stored and applied/s at {CLIENTS} clients (15% duplicates)"),
            value: webhooks,
            unit: "events/s".into(),
            baseline: baseline.webhook_tps,
            baseline_name: "pgbench insert+update tps".into(),
            ratio: webhooks / baseline.webhook_tps,
            target: ">= 0.6 x baseline".into(),
            met: webhooks / baseline.webhook_tps >= 0.6,
        });
        throughput_stack.sim.hang_up_all();
        drop(throughput_stack);
    }

    if wanted("steady") {
        const RATE: u32 = 200;
        eprintln!("steady rate: {RATE} call starts/s for {seconds} s, open loop");
        // Calls are held live and send no webhooks, so the figure is the cost of a call start alone
        // (with ~6 webhooks per call on top, 200 starts/s saturates a 2-core machine).
        let steady_stack = std::sync::Arc::new(
            environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?,
        );
        let steady_keys =
            std::sync::Arc::new(steady_stack.users(if args.quick { 20 } else { 50 }, 200).await?);
        let mut direct_ms = scenarios::steady_rate::direct(&steady_stack, RATE, seconds.into()).await?;
        let window = profile::Window::start(&steady_stack).await;
        let mut switchboard_ms =
            scenarios::steady_rate::switchboard(steady_stack.clone(), steady_keys, RATE, seconds.into())
                .await?;
        let done = switchboard_ms.len() as f64;
        profiles.push(window.finish("steady 200/s", Some(&steady_stack), Some((done, "call start"))).await);
        for (p, limit) in [(50.0, 3.0), (99.0, 15.0)] {
            let value = percentile(&mut switchboard_ms, p);
            let baseline = percentile(&mut direct_ms, p);
            figures.push(Figure {
                name: format!("call start latency at a steady {RATE}/s (simulator answers at once), p{p:.0}"),
                value,
                unit: "ms".into(),
                baseline,
                baseline_name: format!("POST /call straight to the simulator at {RATE}/s, p{p:.0}"),
                ratio: value / baseline,
                target: format!("overhead p{p:.0} < {limit} ms"),
                met: value - baseline < limit,
            });
        }
    }

    if wanted("dispatch") {
        let samples = if args.quick { 30 } else { 300 };
        eprintln!("dispatch latency: {samples} samples");
        let stack = environment::Stack::start(&admin_url, 100_000, true, |sim| sim.hold_calls = true).await?;
        let mut latency = scenarios::dispatch_latency::run(&stack, samples, 0).await?;
        let baseline_p50 = percentile(&mut latency.plain_webhook_ms, 50.0);
        let baseline_p99 = percentile(&mut latency.plain_webhook_ms, 99.0);
        for (p, baseline) in [(50.0, baseline_p50), (99.0, baseline_p99)] {
            let value = percentile(&mut latency.dispatch_ms, p);
            figures.push(Figure {
                name: format!("queued call started after the freeing webhook, p{p:.0}"),
                value,
                unit: "ms".into(),
                baseline,
                baseline_name: format!("plain webhook round trip p{p:.0}"),
                ratio: value / baseline,
                target: if p >= 99.0 { "p99 < 50 ms".into() } else { "(reported)".into() },
                met: p < 99.0 || value < 50.0,
            });
        }

        drop(stack);
    }

    if wanted("instances") {
        let per_instance_users = if args.quick { 400 } else { 1000 };
        let instance_counts: &[usize] = if args.quick { &[1, 2] } else { &[1, 2, 4] };
        let mut by_instances = Vec::new();
        for &instances in instance_counts {
            eprintln!("admissions with {instances} server processes");
            let stack = environment::Stack::start_instances(&admin_url, 100_000, false, instances, |sim| {
                sim.hold_calls = true
            })
            .await?;
            let keys = stack.users(per_instance_users, 50).await?;
            let window = profile::Window::start(&stack).await;
            let rate =
                scenarios::throughput::admissions(&stack, &keys, CLIENTS as usize, seconds.into()).await?;
            let done = rate * f64::from(seconds);
            let name = format!("admissions, {instances} processes");
            profiles.push(window.finish(&name, Some(&stack), Some((done, "admission"))).await);
            by_instances.push((instances as f64, vec![rate, admission_baseline]));
        }
        let first_rate = by_instances.first().map_or(f64::NAN, |p| p.1[0]);
        let lowest_rate = by_instances.iter().map(|p| p.1[0]).fold(f64::INFINITY, f64::min);
        curves.push(Curve {
        name: format!("Admissions/s against server processes ({CLIENTS} clients, one database)"),
        file: "admissions_by_instances.svg".into(),
        x_label: "server processes".into(),
        y_label: "admissions/s".into(),
        log_x: false,
        series: vec!["admissions/s".into(), "pgbench 2-write tps / 2".into()],
        points: by_instances,
        verdict: format!(
            "Lowest rate {:.0}/s against {:.0}/s with one process ({}: the target is that it does not fall as processes are added; within 10% counts as not falling on a 2-core machine where the processes share the cores with PostgreSQL).",
            lowest_rate,
            first_rate,
            if lowest_rate >= 0.9 * first_rate { "met" } else { "**not met**" }
        ),
    });
    }

    if wanted("memory") {
        let (users, per_user, queued) = if args.quick { (10, 10, 1_000) } else { (100, 10, 10_000) };
        eprintln!("memory: {} live and {queued} queued calls", users * per_user as usize);
        let stack =
            environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?;
        let memory = scenarios::memory::run(&stack, users, per_user, queued).await?;
        drop(stack);
        const MIB_TO_MB: f64 = 1.048_576;
        figures.push(Figure {
            name: format!("server RSS with {} live and {} queued calls", memory.live, memory.queued),
            value: memory.loaded_mib * MIB_TO_MB,
            unit: "MB".into(),
            baseline: memory.idle_mib * MIB_TO_MB,
            baseline_name: "the same process idle, before the calls".into(),
            ratio: memory.loaded_mib / memory.idle_mib,
            target: "< 80 MB".into(),
            met: memory.loaded_mib * MIB_TO_MB < 80.0,
        });
    }

    if wanted("large") {
        let sizes: &[i64] = if args.quick { &[10_000, 50_000] } else { &[10_000, 100_000, 1_000_000] };
        let large_samples = if args.quick { 50 } else { 300 };
        eprintln!("large tables: {sizes:?} call rows");
        let stack =
            environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?;
        let mut large = scenarios::large_tables::run(&stack, sizes, large_samples).await?;
        drop(stack);
        for p in [50.0, 99.0] {
            let value = percentile(&mut large.list_http_ms, p);
            let baseline = percentile(&mut large.list_sql_ms, p);
            figures.push(Figure {
                name: format!(
                    "GET /v1/calls p{p:.0} with {} call rows (the user owning {}), first and deep pages",
                    large.rows, large.owned
                ),
                value,
                unit: "ms".into(),
                baseline,
                baseline_name: format!("the page's query straight from the database, p{p:.0}"),
                ratio: value / baseline,
                target: if p >= 99.0 { "p99 < 20 ms".into() } else { "(reported)".into() },
                met: p < 99.0 || value < 20.0,
            });
        }
        let (small, largest) = (large.webhook_curve.first().cloned(), large.webhook_curve.last().cloned());
        curves.push(Curve {
        name: "Webhook apply latency against call rows".into(),
        file: "webhook_latency_by_rows.svg".into(),
        x_label: "call rows".into(),
        y_label: "ms".into(),
        log_x: true,
        series: vec!["p50".into(), "p99".into()],
        points: large.webhook_curve.iter().map(|(x, p50, p99)| (*x, vec![*p50, *p99])).collect(),
        verdict: match (small, largest) {
            (Some(a), Some(b)) => format!(
                "p99 {:.2} ms at {} rows, {:.2} ms at {} rows (ratio {:.2}): lookups are by unique index, so the table's size barely shows.",
                a.2, a.0, b.2, b.0, b.2 / a.2
            ),
            _ => String::new(),
        },
    });
        plans.append(&mut large.plans);
    }

    if wanted("depth") {
        let depths: &[i64] = if args.quick { &[100, 1_000] } else { &[100, 1_000, 10_000, 100_000] };
        let depth_samples = if args.quick { 10 } else { 100 };
        eprintln!("dispatch latency against queue depth: {depths:?}");
        let stack = environment::Stack::start(&admin_url, 100_000, true, |sim| sim.hold_calls = true).await?;
        let mut depth = scenarios::queue_depth::run(&stack, depths, depth_samples).await?;
        drop(stack);
        plans.append(&mut depth.plans);
        let depth_curve = depth.curve;
        let worst = depth_curve.iter().map(|p| p.2).fold(0.0, f64::max);
        curves.push(Curve {
            name: "Queued call start latency against queue depth".into(),
            file: "dispatch_latency_by_queue_depth.svg".into(),
            x_label: "queued calls".into(),
            y_label: "ms".into(),
            log_x: true,
            series: vec!["p50".into(), "p99".into()],
            points: depth_curve.iter().map(|(x, p50, p99)| (*x, vec![*p50, *p99])).collect(),
            verdict: format!(
                "Worst p99 {worst:.2} ms ({} the 50 ms target at every depth).",
                if worst < 50.0 { "within" } else { "**over**" }
            ),
        });
    }

    if wanted("campaigns") {
        let steps: &[usize] = if args.quick { &[10, 100, 1_000] } else { &[10, 100, 1_000, 10_000] };
        let settle: u64 = if args.quick { 3 } else { 10 };
        eprintln!("campaigns: scheduler passes and CPU with {steps:?} running campaigns, nothing due");
        let stack = environment::Stack::start(&admin_url, 100, false, |sim| sim.hold_calls = true).await?;
        let mut idle = scenarios::campaigns::idle(&stack, steps, settle).await?;
        drop(stack);
        profiles.append(&mut idle.profiles);
        plans.append(&mut idle.plans);
        figures.push(Figure {
            name: format!(
                "CPU of server and PostgreSQL with {} running campaigns, nothing due",
                idle.campaigns
            ),
            value: idle.loaded_cores,
            unit: "cores".into(),
            baseline: idle.baseline_cores,
            baseline_name: "the same stack before its first campaign".into(),
            ratio: idle.loaded_cores / idle.baseline_cores,
            target: "< 0.05 cores".into(),
            met: idle.loaded_cores < 0.05,
        });
        notes.push(format!(
            "Campaigns: the scheduler's first visit of {} loaded campaigns (each moves its zone to the \
             window's next opening) took {:.1} s in all; afterwards a pass visits none of them (visits per \
             {settle} s window by step: {}).",
            idle.campaigns,
            idle.first_visits_seconds,
            idle.pass_curve.iter().map(|p| format!("{:.0}: {:.0}", p.0, p.2)).collect::<Vec<_>>().join(", ")
        ));
        let (first, last) = (idle.pass_curve.first().cloned(), idle.pass_curve.last().cloned());
        curves.push(Curve {
            name: "Campaign scheduler pass against running campaigns (nothing due)".into(),
            file: "scheduler_pass_by_campaigns.svg".into(),
            x_label: "running campaigns".into(),
            y_label: "mean pass ms".into(),
            log_x: true,
            series: vec!["mean pass ms".into()],
            points: idle.pass_curve.iter().map(|(x, ms, _)| (*x, vec![*ms])).collect(),
            verdict: match (first, last) {
                (Some(a), Some(b)) => format!(
                    "{:.3} ms at {:.0} campaigns, {:.3} ms at {:.0} (ratio {:.2}): a pass reads the campaigns due now from an index, so those not due cost nothing.",
                    a.1, a.0, b.1, b.0, b.1 / a.1
                ),
                _ => String::new(),
            },
        });

        let (campaigns, lines) = if args.quick { (100, 20) } else { (1_000, 100) };
        eprintln!("campaigns: {campaigns} windows opening in the same second, {lines} account lines");
        let stack = environment::Stack::start(&admin_url, lines, true, |sim| sim.hold_calls = true).await?;
        let opening = scenarios::campaigns::windows_open(&stack, campaigns, lines).await?;
        drop(stack);
        figures.push(Figure {
            name: format!(
                "time until the account's {} lines are full when {} campaigns' windows open in the same second",
                opening.lines, opening.campaigns
            ),
            value: opening.campaigns_seconds,
            unit: "s".into(),
            baseline: opening.direct_seconds,
            baseline_name: format!("{} direct calls sent at once until the lines are full", opening.lines),
            ratio: opening.campaigns_seconds / opening.direct_seconds,
            target: "< 5 s".into(),
            met: opening.campaigns_seconds < 5.0,
        });

        let (contacts, per_minute, watch) = if args.quick { (50_000, 60, 10) } else { (1_000_000, 300, 65) };
        eprintln!("campaigns: one campaign of {contacts} contacts across 20 zones at {per_minute} calls/min");
        let stack = environment::Stack::start(&admin_url, 100, true, |_| {}).await?;
        let large = scenarios::campaigns::large_campaign(&stack, contacts, per_minute, watch).await?;
        drop(stack);
        anyhow::ensure!(
            large.out_of_window == 0,
            "{} calls outside their contact's window",
            large.out_of_window
        );
        figures.push(Figure {
            name: format!(
                "calls in the first minute of a {}-contact campaign across 20 zones ({} open), calls_per_minute {}",
                large.contacts, large.open_zones, large.per_minute
            ),
            value: large.first_minute as f64,
            unit: "calls".into(),
            baseline: f64::from(large.per_minute),
            baseline_name: "calls_per_minute asked".into(),
            ratio: large.first_minute as f64 / f64::from(large.per_minute),
            target: "= asked, none outside a window, no 60 s over it".into(),
            met: large.first_minute == i64::from(large.per_minute)
                && large.out_of_window == 0
                && large.busiest_minute <= i64::from(large.per_minute),
        });
        notes.push(format!(
            "Large campaign: {} contacts added through add_contacts (the CLI import's path) in {:.1} s; \
             calls outside a window {}; busiest 60 s {} calls; mean scheduler pass while it ran {:.2} ms; \
             a window edit (every zone's period computed again) {:.3} s.",
            large.contacts,
            large.load_seconds,
            large.out_of_window,
            large.busiest_minute,
            large.pass_ms,
            large.edit_seconds
        ));
    }

    if wanted("results") {
        let (contacts, samples) = if args.quick { (20_000, 3) } else { (100_000, 9) };
        eprintln!("results: report and export of a {contacts}-contact campaign");
        let stack = environment::Stack::start(&admin_url, 10, true, |_| {}).await?;
        let results = scenarios::results::run(&stack, contacts, samples).await?;
        drop(stack);
        figures.push(Figure {
            name: format!("GET /v1/campaigns/{{id}}/report of a {}-contact campaign, p50", results.contacts),
            value: results.report_ms,
            unit: "ms".into(),
            baseline: results.report_sql_ms,
            baseline_name: "its three aggregate statements run straight on the database".into(),
            ratio: results.report_ms / results.report_sql_ms,
            target: "< 2 s".into(),
            met: results.report_ms < 2_000.0,
        });
        let growth = results.rss_peak_mib - results.rss_before_mib;
        figures.push(Figure {
            name: format!(
                "GET /v1/campaigns/{{id}}/results.csv of {} contacts ({:.1} MiB), server RSS {:.1} → peak {:.1} MiB",
                results.export_rows, results.export_mib, results.rss_before_mib, results.rss_peak_mib
            ),
            value: results.export_seconds,
            unit: "s".into(),
            baseline: results.export_sql_seconds,
            baseline_name: "the same rows read by one query straight from the database".into(),
            ratio: results.export_seconds / results.export_sql_seconds,
            target: "RSS growth < 32 MiB (constant memory)".into(),
            met: growth < 32.0,
        });
        notes.push(format!(
            "Results: the export streams pages of 1,000 contacts; the server's RSS grew {growth:.1} MiB \
             while {:.1} MiB of CSV went out.",
            results.export_mib
        ));
    }

    if wanted("outbound") {
        use scenarios::outbound;
        let (deliveries, backlog) = if args.quick { (5_000, 20_000) } else { (20_000, 100_000) };
        const RATE: u32 = 200;
        eprintln!("outbound webhooks: {deliveries} deliveries drained, then call starts at {RATE}/s beside a {backlog}-delivery backlog");
        let receiver = outbound::Receiver::start().await?;
        let direct = outbound::direct(&receiver, deliveries as u64).await?;
        // Capacity: the sender unpaced (outbound_webhooks.max_deliveries_per_second = 0).
        let unpaced =
            vec![("SWITCHBOARD__OUTBOUND_WEBHOOKS__MAX_DELIVERIES_PER_SECOND".to_owned(), "0".to_owned())];
        let (stack, _) = environment::Stack::start_with(
            &admin_url,
            100_000,
            false,
            1,
            |sim| sim.hold_calls = true,
            unpaced,
        )
        .await?;
        let stack = std::sync::Arc::new(stack);
        let pool = sqlx::PgPool::connect(&stack.database_url).await?;
        let (key, endpoints) = outbound::endpoints(&stack, &receiver.url).await?;
        outbound::backlog(&pool, &endpoints, deliveries).await?;
        let window = profile::Window::start(&stack).await;
        let drained =
            outbound::drain(&stack, &pool, &key, &endpoints, std::time::Duration::from_secs(900)).await?;
        profiles
            .push(window.finish("outbound drain", Some(&stack), Some((deliveries as f64, "delivery"))).await);
        let arrived = receiver.received.load(std::sync::atomic::Ordering::Relaxed);
        anyhow::ensure!(
            arrived >= 2 * deliveries as u64,
            "the receiver got {arrived} requests, fewer than were sent"
        );
        figures.push(Figure {
            name: format!(
                "outbound webhook deliveries/s to a local receiver ({} endpoints, {} in flight, signed ~1.3 KB bodies)",
                outbound::ENDPOINTS,
                outbound::IN_FLIGHT
            ),
            value: drained,
            unit: "deliveries/s".into(),
            baseline: direct,
            baseline_name: format!("the same bodies posted straight to the receiver, {} in flight", outbound::IN_FLIGHT),
            ratio: drained / direct,
            target: ">= 200 deliveries/s (Bolna's 500 calls a minute make about 70 events a second)".into(),
            met: drained >= 200.0,
        });

        drop(pool);
        drop(stack);

        // Call starts beside a draining backlog, the sender at its default pace.
        let stack = std::sync::Arc::new(
            environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?,
        );
        let pool = sqlx::PgPool::connect(&stack.database_url).await?;
        let (key, endpoints) = outbound::endpoints(&stack, &receiver.url).await?;
        let keys = std::sync::Arc::new(stack.users(if args.quick { 20 } else { 50 }, 200).await?);
        let window = profile::Window::start(&stack).await;
        let mut quiet =
            scenarios::steady_rate::switchboard(stack.clone(), keys.clone(), RATE, seconds.into()).await?;
        let done = quiet.len() as f64;
        profiles
            .push(window.finish("steady 200/s, no backlog", Some(&stack), Some((done, "call start"))).await);
        outbound::backlog(&pool, &endpoints, backlog).await?;
        for id in &endpoints {
            outbound::set_disabled(&stack, &key, id, false).await?;
        }
        let window = profile::Window::start(&stack).await;
        let mut busy = scenarios::steady_rate::switchboard(stack.clone(), keys, RATE, seconds.into()).await?;
        let done = busy.len() as f64;
        profiles.push(
            window.finish("steady 200/s, backlog draining", Some(&stack), Some((done, "call start"))).await,
        );
        let left = outbound::unfinished(&pool).await?;
        let (value, baseline) = (percentile(&mut busy, 50.0), percentile(&mut quiet, 50.0));
        figures.push(Figure {
            name: format!(
                "call start latency at a steady {RATE}/s while a {backlog}-delivery backlog drains (the sender at its default pace, 250/s), p50"
            ),
            value,
            unit: "ms".into(),
            baseline,
            baseline_name: format!(
                "the same, no deliveries waiting, p50 ({left} deliveries still waiting at the end)"
            ),
            ratio: value / baseline,
            target: "< 1.5 x baseline".into(),
            met: value / baseline < 1.5 && left > 0,
        });
        notes.push(format!(
            "Outbound webhooks: the backlog is written straight into the tables to disabled endpoints, which \
             are then enabled; each delivery is a claim (SKIP LOCKED, batched), a signed POST and one \
             transaction recording the attempts that finished together. The capacity figure runs the sender \
             unpaced (max_deliveries_per_second = 0); the call-start figure at the default pace. {left} of the \
             {backlog} deliveries were still waiting when the busy call-start window ended."
        ));
        drop(pool);
    }

    let report =
        Report { machine: report::machine(), quick: args.quick, figures, curves, plans, profiles, notes };
    report.write(&args.out)?;
    println!("{}", report.markdown());
    let missing: Vec<&str> = report
        .figures
        .iter()
        .filter(|f| !(f.value.is_finite() && f.baseline.is_finite() && f.ratio.is_finite()))
        .map(|f| f.name.as_str())
        .collect();
    anyhow::ensure!(missing.is_empty(), "figures not produced: {missing:?}");
    anyhow::ensure!(
        args.only.is_some() || (report.figures.len() == 16 && report.curves.len() == 4),
        "expected 16 figures and 4 curves, got {} and {}",
        report.figures.len(),
        report.curves.len()
    );
    eprintln!("{} figures produced", report.figures.len());
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    Ok(())
}
