//! `spawn_app()` starts the real application on a free port against a fresh database; `TestApp`
//! has one method per endpoint so tests read as user stories.

use std::collections::HashMap;
use std::sync::Once;

use secrecy::SecretString;
use sqlx::PgPool;
use web::settings::{ConfigSource, Settings};
use web::Application;

pub const ADMIN_TOKEN: &str = "test-admin-token";

#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    pub client: reqwest::Client,
}

/// The repository's `config/` folder.
pub fn config_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Settings as a test run sees them: the repository's files, no process environment.
pub fn test_settings(vars: &[(&str, &str)]) -> Settings {
    let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Settings::load_from(&ConfigSource { config_dir: Some(config_dir()), vars }).expect("test settings load")
}

fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            web::telemetry::init(web::settings::Environment::Local);
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the application with settings changed by `customise`.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Settings)) -> TestApp {
    init_logging();
    let database_url = local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &schema::MIGRATOR)
        .await
        .expect("a fresh test database");
    let mut settings = test_settings(&[]);
    settings.server.port = 0;
    settings.database.url = Some(SecretString::from(database_url.clone()));
    settings.auth.admin_token = Some(SecretString::from(ADMIN_TOKEN));
    customise(&mut settings);

    let application = Application::build(settings).await.expect("the application builds");
    let address = format!("http://127.0.0.1:{}", application.port());
    tokio::spawn(application.run_until_stopped());
    let pool = PgPool::connect(&database_url).await.expect("test pool connects");
    TestApp { address, pool, client: reqwest::Client::new() }
}

impl TestApp {
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.address)).send().await.expect("request sent")
    }
}
