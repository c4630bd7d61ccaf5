//! `bolna-sim`: the simulator as a standalone server (docker-compose, load runs).

use clap::Parser;

#[derive(Debug, Parser)]
#[command(name = "bolna-sim", about = "A Bolna look-alike API server for development and load tests")]
struct Args {
    #[arg(long, env = "BOLNA_SIM_HOST", default_value = "127.0.0.1")]
    host: String,
    #[arg(long, env = "BOLNA_SIM_PORT", default_value_t = 9090)]
    port: u16,
    /// Bearer key to require (any key is accepted when unset).
    #[arg(long, env = "BOLNA_SIM_API_KEY")]
    api_key: Option<String>,
    /// Where status changes are posted.
    #[arg(long, env = "BOLNA_SIM_WEBHOOK_URL")]
    webhook_url: Option<String>,
    /// Value of the X-Webhook-Token header sent with every webhook.
    #[arg(long, env = "BOLNA_SIM_WEBHOOK_TOKEN")]
    webhook_token: Option<String>,
    /// Time compression: 1 = realistic, 100 = a minute-long call lasts 0.6 s.
    #[arg(long, env = "BOLNA_SIM_SPEED", default_value_t = 1.0)]
    speed: f64,
    /// Bolna's account concurrency (calls above it wait in `queued`).
    #[arg(long, env = "BOLNA_SIM_ACCOUNT_CONCURRENCY", default_value_t = 10)]
    account_concurrency: u32,
    /// Keep answered calls live until POST /_sim/hangup.
    #[arg(long, env = "BOLNA_SIM_HOLD_CALLS")]
    hold_calls: bool,
    /// Bolna's rate limit on POST /call per minute (429 above it); 0 turns it off.
    #[arg(long, env = "BOLNA_SIM_MAX_CALLS_PER_MINUTE", default_value_t = 500)]
    max_calls_per_minute: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_target(false).init();
    let args = Args::parse();
    let config = bolna_sim::SimConfig {
        api_key: args.api_key,
        account_concurrency: args.account_concurrency,
        speed: args.speed,
        hold_calls: args.hold_calls,
        rate_limit: (args.max_calls_per_minute > 0)
            .then(|| bolna_sim::RateLimit::per_minute(args.max_calls_per_minute)),
        webhook: args.webhook_url.map(|url| bolna_sim::WebhookTarget {
            url,
            header: args.webhook_token.map(|token| ("X-Webhook-Token".to_owned(), token)),
        }),
        ..bolna_sim::SimConfig::default()
    };
    let simulator = bolna_sim::Simulator::start(config, &format!("{}:{}", args.host, args.port))?;
    tracing::info!(url = %simulator.base_url(), "bolna-sim listening");
    shutdown_signal().await?;
    simulator.stop().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM (what `docker stop` sends).
async fn shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
