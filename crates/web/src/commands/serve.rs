//! `switchboard serve`: the server, against the configured database.

use crate::cli::ServeArgs;
use crate::settings::Settings;
use crate::startup::Application;

pub async fn run(settings: Settings, args: ServeArgs) -> anyhow::Result<()> {
    crate::telemetry::log_settings(&settings);
    let pool = crate::database::lazy_pool(&settings.database)?;
    crate::database::check_reachable(&settings.database).await?;
    if settings.database.run_migrations && !args.no_migrate {
        let version = super::migrate::apply(&pool).await?;
        tracing::info!(version, "database schema is current");
    }
    pool.close().await;
    let application = Application::build(settings).await?;
    tracing::info!(port = application.port(), "switchboard is listening");
    application.run_until_signalled().await?;
    tracing::info!("switchboard stopped");
    Ok(())
}
