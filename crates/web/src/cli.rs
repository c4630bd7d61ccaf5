//! The `switchboard` command line.

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about = "Call orchestration for voice-AI agents on Bolna")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server and background tasks against the configured database.
    Serve(ServeArgs),
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Manage users.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Campaign tools.
    Campaigns {
        #[command(subcommand)]
        command: CampaignsCommand,
    },
    /// Run everything locally: a private PostgreSQL (unless one is configured), a demo user, and
    /// the server. Prints how to use it. Ctrl-C stops it all.
    Dev(DevArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Do not apply pending migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user and print its API key (shown once).
    Create(CreateUserArgs),
}

#[derive(Debug, Args)]
pub struct CreateUserArgs {
    /// The user's display name.
    #[arg(long)]
    pub name: String,
    /// Concurrent direct calls allowed.
    #[arg(long, default_value_t = 2)]
    pub direct_limit: u32,
    /// Concurrent campaign calls allowed (default: limits.default_campaign_call_limit).
    #[arg(long)]
    pub campaign_limit: Option<u32>,
}

#[derive(Debug, Subcommand)]
pub enum CampaignsCommand {
    /// Import contacts from a CSV file (Bolna's batch format: `contact_number`, optional `name`,
    /// `timezone`, other columns become variables) into an existing campaign.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file.
    pub file: std::path::PathBuf,
    /// The campaign's id.
    #[arg(long)]
    pub campaign: uuid::Uuid,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Where the private PostgreSQL keeps its files (kept between runs).
    #[arg(long, env = "SWITCHBOARD_DEV_DATA_DIR", default_value = ".switchboard/postgres")]
    pub data_dir: std::path::PathBuf,
    /// Use the configured Bolna (`bolna.base_url`, `bolna.api_key`) instead of the in-process
    /// simulator.
    #[arg(long)]
    pub real_bolna: bool,
    /// The simulator's time compression: 10 makes a one-minute call last 6 seconds.
    #[arg(long, default_value_t = 10.0)]
    pub sim_speed: f64,
}
