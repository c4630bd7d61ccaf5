//! `switchboard-bench`: runs the scenarios against a private PostgreSQL (or `DATABASE_URL`), the
//! Bolna simulator and a Switchboard server on loopback, and writes `target/bench/report.{md,json}`.
//! `--quick` runs every scenario briefly (a smoke test: it checks every figure is produced).

mod environment;
mod report;
mod scenarios;

use std::path::PathBuf;

use clap::Parser;

use report::{percentile, Figure, Report};

#[derive(Debug, Parser)]
#[command(
    name = "switchboard-bench",
    about = "Benchmark Switchboard's hot paths against PostgreSQL's own limits"
)]
struct Args {
    /// A short run for CI: every figure, few samples.
    #[arg(long)]
    quick: bool,
    /// Where the report goes.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (admin_url, cluster) = environment::postgres().await?;
    let mut figures = Vec::new();
    let notes = vec![
        "Latencies are measured over real HTTP on loopback; the simulator answers at once.".to_owned(),
        "The Switchboard server runs in the benchmark's process (same binary, release build).".to_owned(),
    ];

    const CLIENTS: u32 = 32;
    let seconds: u32 = if args.quick { 3 } else { 10 };
    eprintln!("baseline: pgbench at {CLIENTS} clients, {seconds} s per script");
    let baseline = scenarios::baseline::run(&admin_url, CLIENTS, seconds).await?;

    let users = if args.quick { 100 } else { 1000 };
    eprintln!("throughput: {users} users x 50 slots, {CLIENTS} clients, {seconds} s");
    let throughput_stack =
        environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?;
    let keys = throughput_stack.users(users, 50).await?;
    let admissions =
        scenarios::throughput::admissions(&throughput_stack, &keys, CLIENTS as usize, seconds.into()).await?;
    let admission_baseline = baseline.admission_tps / 2.0;
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
    let webhooks = scenarios::throughput::webhooks(
        &throughput_stack,
        &throughput_stack.database_url,
        CLIENTS as usize,
        seconds.into(),
    )
    .await?;
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

    const RATE: u32 = 200;
    eprintln!("steady rate: {RATE} call starts/s for {seconds} s, open loop");
    // Calls are held live and send no webhooks, so the figure is the cost of a call start alone
    // (with ~6 webhooks per call on top, 200 starts/s saturates a 2-core machine).
    let steady_stack = std::sync::Arc::new(
        environment::Stack::start(&admin_url, 100_000, false, |sim| sim.hold_calls = true).await?,
    );
    let steady_keys = std::sync::Arc::new(steady_stack.users(if args.quick { 20 } else { 50 }, 200).await?);
    let mut steady = scenarios::steady_rate::run(steady_stack, steady_keys, RATE, seconds.into()).await?;
    for (p, limit) in [(50.0, 3.0), (99.0, 15.0)] {
        let value = percentile(&mut steady.switchboard_ms, p);
        let baseline = percentile(&mut steady.direct_ms, p);
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

    let samples = if args.quick { 30 } else { 300 };
    eprintln!("dispatch latency: {samples} samples");
    let stack = environment::Stack::start(&admin_url, 100_000, true, |sim| sim.hold_calls = true).await?;
    let mut latency = scenarios::dispatch_latency::run(&stack, samples).await?;
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

    let report = Report { machine: report::machine(), quick: args.quick, figures, notes };
    report.write(&args.out)?;
    println!("{}", report.markdown());
    let missing: Vec<&str> = report
        .figures
        .iter()
        .filter(|f| !(f.value.is_finite() && f.baseline.is_finite() && f.ratio.is_finite()))
        .map(|f| f.name.as_str())
        .collect();
    anyhow::ensure!(missing.is_empty(), "figures not produced: {missing:?}");
    eprintln!("{} figures produced", report.figures.len());
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    Ok(())
}
