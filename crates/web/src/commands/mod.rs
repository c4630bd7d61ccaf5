//! One module per sub-command.

pub mod campaigns;
pub mod dev;
pub mod migrate;
pub mod serve;
pub mod users;

use crate::cli::{CampaignsCommand, Cli, Command, UsersCommand};
use crate::settings::Settings;

/// Runs the parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load()?;
    crate::telemetry::init(settings.environment);
    match cli.command {
        Command::Serve(args) => serve::run(settings, args).await,
        Command::Migrate => migrate::run(settings).await,
        Command::Users { command: UsersCommand::Create(args) } => users::create(settings, args).await,
        Command::Campaigns { command: CampaignsCommand::Import(args) } => {
            campaigns::import(settings, args).await
        }
        Command::Dev(args) => dev::run(settings, args).await,
    }
}
