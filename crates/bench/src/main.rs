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

    let samples = if args.quick { 30 } else { 300 };
    eprintln!("dispatch latency: {samples} samples");
    let stack = environment::Stack::start(&admin_url, 100_000, |sim| sim.hold_calls = true).await?;
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
    if let Some(cluster) = cluster {
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    Ok(())
}
