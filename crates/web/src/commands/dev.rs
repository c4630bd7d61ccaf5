//! `switchboard dev`: the embedded default for a newcomer. With no database configured it runs a
//! private PostgreSQL from the installed server binaries (kept in a project-local folder between
//! runs), starts the Bolna simulator in-process (unless `--real-bolna`), applies migrations, seeds a
//! demo user, serves, and prints how to use it all. Ctrl-C stops the server, the simulator and the
//! private database.

use anyhow::Context;
use bolna_sim::{SimConfig, Simulator, WebhookTarget};
use call_service::users::{
    create_user, find_user_by_name, issue_api_key, revoke_api_keys_named, IssuedKey, NewUser,
};
use local_postgres::{Cluster, ClusterOptions};
use secrecy::{ExposeSecret, SecretString};

use crate::cli::DevArgs;
use crate::settings::Settings;
use crate::startup::Application;

const DEMO_USER: &str = "demo";
/// Any uuid works with the simulator; a real Bolna needs one of the account's agents.
const DEMO_AGENT: &str = "8f2c1d7e-5a4b-4c39-9e21-6b0f3a9d4c12";

pub async fn run(mut settings: Settings, args: DevArgs) -> anyhow::Result<()> {
    // Development receivers live on this machine, usually over plain HTTP.
    settings.outbound_webhooks.allow_http = true;
    settings.outbound_webhooks.allow_private_destinations = true;
    let private_cluster = match settings.database.url {
        Some(_) => None,
        None => {
            let options = ClusterOptions::durable(&args.data_dir);
            let cluster = tokio::task::spawn_blocking(move || Cluster::ensure_running(&options))
                .await
                .context("starting the private PostgreSQL")??;
            let url = local_postgres::ensure_database(&cluster.url("postgres"), "switchboard").await?;
            settings.database.url = Some(SecretString::from(url));
            Some(cluster)
        }
    };

    let simulator = match args.real_bolna {
        true => None,
        false => Some(start_simulator(&mut settings, args.sim_speed)?),
    };
    let result = serve(settings, private_cluster.as_ref(), simulator.as_ref()).await;
    if let Some(simulator) = simulator {
        simulator.stop().await;
    }
    if let Some(cluster) = private_cluster {
        println!("stopping the private PostgreSQL");
        tokio::task::spawn_blocking(move || cluster.stop()).await??;
    }
    result
}

/// The simulator on a free loopback port, with Switchboard's Bolna settings pointed at it.
fn start_simulator(settings: &mut Settings, speed: f64) -> anyhow::Result<Simulator> {
    let api_key = settings.bolna.api_key.as_ref().map(|key| key.expose_secret().to_owned());
    // Bolna's default rate limit, as Bolna enforces it.
    let config = SimConfig {
        api_key: api_key.clone(),
        speed,
        rate_limit: Some(bolna_sim::RateLimit::per_minute(500)),
        ..SimConfig::default()
    };
    let simulator = Simulator::start(config, "127.0.0.1:0")?;
    settings.bolna.base_url = simulator.base_url();
    if api_key.is_none() {
        settings.bolna.api_key = Some(SecretString::from("dev-simulator-key"));
    }
    Ok(simulator)
}

async fn serve(
    settings: Settings,
    cluster: Option<&Cluster>,
    simulator: Option<&Simulator>,
) -> anyhow::Result<()> {
    let pool = crate::database::lazy_pool(&settings.database)?;
    crate::database::check_reachable(&settings.database).await?;
    super::migrate::apply(&pool).await?;
    let api_key = seed_demo_user(&pool, &settings).await?;
    pool.close().await;

    let admin_token = settings
        .auth
        .admin_token
        .as_ref()
        .map(|token| token.expose_secret().to_owned())
        .unwrap_or_else(|| "(not set: auth.admin_token)".to_owned());
    let host = settings.server.host.clone();
    let webhook_header = settings
        .webhook
        .token
        .as_ref()
        .map(|token| ("X-Webhook-Token".to_owned(), token.expose_secret().to_owned()));
    let bolna = settings.bolna.base_url.clone();
    let application = Application::build(settings).await?;
    let base_url = format!("http://{host}:{}", application.port());
    if let Some(simulator) = simulator {
        simulator
            .set_webhook(WebhookTarget { url: format!("{base_url}/webhooks/bolna"), header: webhook_header });
    }
    let bolna = match simulator {
        Some(_) => format!("Bolna simulator at {bolna} (webhooks to {base_url}/webhooks/bolna)"),
        None => format!("Bolna at {bolna}"),
    };
    print_banner(&base_url, &admin_token, &api_key, cluster, &bolna);
    application.run_until_signalled().await?;
    Ok(())
}

/// The name of the key `dev` issues to the demo user at each start.
const DEV_KEY_NAME: &str = "dev";

async fn seed_demo_user(pool: &sqlx::PgPool, settings: &Settings) -> anyhow::Result<String> {
    let mut tx = pool.begin().await?;
    let user = match find_user_by_name(&mut tx, DEMO_USER).await? {
        Some(user) => user,
        None => {
            let new = NewUser {
                name: DEMO_USER.to_owned(),
                direct_call_limit: i32::try_from(settings.limits.default_direct_call_limit)?,
                campaign_call_limit: i32::try_from(settings.limits.default_campaign_call_limit)?,
                max_calls_per_number_per_day: None,
                monthly_budget: None,
            };
            create_user(&mut tx, &new).await?
        }
    };
    // Keys are stored hashed, so each run issues a fresh one to print, and revokes the last run's.
    revoke_api_keys_named(&mut tx, user.id, DEV_KEY_NAME).await?;
    let IssuedKey::Issued { key, .. } = issue_api_key(&mut tx, user.id, DEV_KEY_NAME, None).await? else {
        anyhow::bail!("the demo user holds too many API keys; revoke some with DELETE /v1/api-keys/{{id}}");
    };
    tx.commit().await?;
    Ok(key.reveal().to_owned())
}

fn print_banner(base_url: &str, admin_token: &str, api_key: &str, cluster: Option<&Cluster>, bolna: &str) {
    let database = match cluster {
        Some(cluster) => {
            format!("private PostgreSQL on port {} ({})", cluster.port(), cluster.data_dir().display())
        }
        None => "the configured database".to_owned(),
    };
    println!(
        "\nSwitchboard is running.\n\
         \n  base URL      {base_url}\
         \n  console       {base_url}/console   (sign in with the demo API key or the admin token)\
         \n  health        {base_url}/healthz   readiness {base_url}/readyz\
         \n  database      {database}\
         \n  bolna         {bolna}\
         \n  admin token   {admin_token}\
         \n  demo API key  {api_key}\
         \n\nStart a call (the simulator plays Bolna):\n\
         \n  curl -s -X POST {base_url}/v1/calls -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\\
         \n    -d '{{\"agent_id\": \"{DEMO_AGENT}\", \"recipient_phone_number\": \"+919812345678\"}}'\
         \n\nthen follow it with GET {base_url}/v1/calls/<id> (same header), or list them:\
         \n  curl -s {base_url}/v1/calls -H 'Authorization: Bearer {api_key}'\
         \n\nWatch calls live: {base_url}/console   API docs: {base_url}/docs   Ctrl-C stops everything.\n"
    );
}
