//! Configuration layering and the start-up checks, through the same loader the binary uses.

use std::io::Write;
use std::sync::{Arc, Mutex};

use secrecy::ExposeSecret;
use web::settings::{Environment, SettingsError};

use crate::helpers::{config_dir, test_settings};

const PRODUCTION_SECRETS: [(&str, &str); 5] = [
    ("SWITCHBOARD__DATABASE__URL", "postgres://app:hunter2-db@db:5432/switchboard"),
    ("SWITCHBOARD__BOLNA__API_KEY", "bn-secret-key-123"),
    ("SWITCHBOARD__WEBHOOK__TOKEN", "whk-secret-456"),
    ("SWITCHBOARD__AUTH__ADMIN_TOKEN", "adm-secret-789"),
    // base64 of 32 bytes: "outbound-webhook-sealing-key-123".
    ("SWITCHBOARD__OUTBOUND_WEBHOOKS__SECRET_KEY", "b3V0Ym91bmQtd2ViaG9vay1zZWFsaW5nLWtleS0xMjM="),
];

fn load(vars: &[(&str, &str)]) -> Result<web::Settings, SettingsError> {
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    web::Settings::load_from(&web::settings::ConfigSource { config_dir: Some(config_dir()), vars })
}

fn production(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut vars = vec![("SWITCHBOARD_ENVIRONMENT", "production")];
    vars.extend(PRODUCTION_SECRETS);
    vars.extend_from_slice(extra);
    vars
}

#[test]
fn base_file_gives_the_documented_defaults() {
    let settings = test_settings(&[]);

    assert_eq!(settings.environment, Environment::Local);
    assert_eq!(settings.server.port, 8080);
    assert_eq!(settings.limits.default_direct_call_limit, 2);
    assert_eq!(settings.limits.default_campaign_call_limit, 5);
    assert!(settings.webhook.allowed_ips.is_empty());
    assert_eq!(settings.server.workers, 0, "one HTTP worker per core");
    assert_eq!(settings.database.ping_idle_after_seconds, 30);
}

#[test]
fn environment_file_overrides_base_and_variables_override_both() {
    let from_files = load(&production(&[])).expect("loads");
    assert_eq!(from_files.server.host, "0.0.0.0", "production.toml beats base.toml");
    assert_eq!(from_files.webhook.allowed_ips, ["bolna"], "production admits Bolna's addresses only");

    let from_env = load(&production(&[
        ("SWITCHBOARD__SERVER__HOST", "10.1.2.3"),
        ("SWITCHBOARD__SERVER__PORT", "9090"),
    ]))
    .expect("loads");
    assert_eq!(from_env.server.host, "10.1.2.3", "environment beats the files");
    assert_eq!(from_env.server.port, 9090);
}

#[test]
fn lists_come_from_comma_separated_variables() {
    let settings =
        test_settings(&[("SWITCHBOARD__WEBHOOK__ALLOWED_IPS", "13.203.39.153,13.126.9.249,10.0.0.0/8")]);

    assert_eq!(settings.webhook.allowed_ips, ["13.203.39.153", "13.126.9.249", "10.0.0.0/8"]);
}

#[test]
fn database_url_falls_back_to_database_url_but_the_switchboard_key_wins() {
    let fallback = test_settings(&[("DATABASE_URL", "postgres://a@h/one")]);
    assert_eq!(fallback.database.url.expect("set").expose_secret(), "postgres://a@h/one");

    let both = test_settings(&[
        ("DATABASE_URL", "postgres://a@h/one"),
        ("SWITCHBOARD__DATABASE__URL", "postgres://b@h/two"),
    ]);
    assert_eq!(both.database.url.expect("set").expose_secret(), "postgres://b@h/two");
}

#[test]
fn production_refuses_to_start_without_a_secret_and_names_its_key() {
    let vars: Vec<_> =
        production(&[]).into_iter().filter(|(key, _)| *key != "SWITCHBOARD__WEBHOOK__TOKEN").collect();

    let error = load(&vars).expect_err("must refuse");

    assert!(matches!(error, SettingsError::MissingSecret { key: "webhook.token", .. }), "{error}");
    assert!(error.to_string().contains("SWITCHBOARD__WEBHOOK__TOKEN"), "{error}");

    let vars: Vec<_> = production(&[])
        .into_iter()
        .filter(|(key, _)| *key != "SWITCHBOARD__OUTBOUND_WEBHOOKS__SECRET_KEY")
        .collect();
    let error = load(&vars).expect_err("must refuse");
    assert!(
        matches!(error, SettingsError::MissingSecret { key: "outbound_webhooks.secret_key", .. }),
        "{error}"
    );
    assert!(error.to_string().contains("SWITCHBOARD__OUTBOUND_WEBHOOKS__SECRET_KEY"), "{error}");
}

#[test]
fn outbound_webhooks_are_strict_in_production_and_open_locally() {
    let production = load(&production(&[])).expect("loads");
    let outbound = &production.outbound_webhooks;
    assert!(!outbound.allow_http && !outbound.allow_private_destinations, "{outbound:?}");
    assert_eq!(outbound.retry_schedule_seconds, [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0]);
    assert_eq!(outbound.timeout_seconds, 10.0);
    assert_eq!(outbound.retention_days, 7.0);
    assert_eq!(outbound.secret_rotation_overlap_seconds, 86_400);
    let local = test_settings(&[]);
    assert!(local.outbound_webhooks.allow_http && local.outbound_webhooks.allow_private_destinations);

    let schedule =
        load(&[("SWITCHBOARD__OUTBOUND_WEBHOOKS__RETRY_SCHEDULE_SECONDS", "0,1,2.5")]).expect("loads");
    assert_eq!(schedule.outbound_webhooks.retry_schedule_seconds, [0.0, 1.0, 2.5]);
    for (variable, value) in [
        ("SWITCHBOARD__OUTBOUND_WEBHOOKS__SECRET_KEY", "too-short"),
        ("SWITCHBOARD__OUTBOUND_WEBHOOKS__RETRY_SCHEDULE_SECONDS", "0,-5"),
        ("SWITCHBOARD__OUTBOUND_WEBHOOKS__TIMEOUT_SECONDS", "0"),
    ] {
        let error = load(&[(variable, value)]).expect_err(variable).to_string();
        assert!(error.contains("outbound_webhooks."), "{variable}={value} gave `{error}`");
    }
}

#[test]
fn malformed_values_name_the_key_and_the_problem() {
    let cases: [(&str, &str, &str); 6] = [
        ("SWITCHBOARD__SERVER__PORT", "eighty", "server.port"),
        ("SWITCHBOARD__WEBHOOK__ALLOWED_IPS", "13.203.39.153,not-an-ip", "webhook.allowed_ips"),
        ("SWITCHBOARD__BOLNA__BASE_URL", "api.bolna.ai", "bolna.base_url"),
        ("SWITCHBOARD__DATABASE__URL", "mysql://x@y/z", "database.url"),
        ("SWITCHBOARD__RECONCILER__INTERVAL_SECONDS", "0", "reconciler.interval_seconds"),
        ("SWITCHBOARD__SERVER__WORKERS", "5000", "server.workers"),
    ];
    for (variable, value, key) in cases {
        let error = load(&[(variable, value)]).expect_err(variable).to_string();
        assert!(error.contains(key), "{variable}={value} gave `{error}`, which does not name {key}");
    }
    let unknown_environment =
        load(&[("SWITCHBOARD_ENVIRONMENT", "staging")]).expect_err("refused").to_string();
    assert!(unknown_environment.contains("SWITCHBOARD_ENVIRONMENT"), "{unknown_environment}");
}

#[test]
fn secrets_never_appear_in_debug_output_or_logs() {
    let settings = load(&production(&[])).expect("loads");

    let debug = format!("{settings:?}");
    let captured = Arc::new(Mutex::new(Vec::new()));
    let writer = CapturedWriter(captured.clone());
    let subscriber = tracing_subscriber::fmt().with_writer(move || writer.clone()).with_ansi(false).finish();
    tracing::subscriber::with_default(subscriber, || web::telemetry::log_settings(&settings));
    let logs = String::from_utf8(captured.lock().expect("lock").clone()).expect("utf8");

    assert!(logs.contains("settings loaded"), "the settings were logged: {logs}");
    for (_, secret) in PRODUCTION_SECRETS {
        let needle = secret.split('@').next().unwrap_or(secret).rsplit(':').next().unwrap_or(secret);
        assert!(!debug.contains(needle), "Debug leaks {needle}");
        assert!(!logs.contains(needle), "logs leak {needle}");
    }
    assert!(logs.contains("REDACTED"));
}

#[derive(Clone)]
struct CapturedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn batch_connections_plan_once_as_index_lookups_unless_turned_off() {
    let database_url = crate::helpers::fresh_database().await;
    let show = |generic: bool| {
        let mut settings = test_settings(&[]);
        settings.database.url = Some(secrecy::SecretString::from(database_url.clone()));
        settings.database.batch_generic_plans = generic;
        async move {
            let pool = web::database::lazy_batch_pool(&settings.database).expect("a batch pool");
            let mode: String =
                sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&pool).await.expect("shown");
            let mut scans = Vec::new();
            for setting in ["enable_seqscan", "enable_hashjoin", "enable_mergejoin"] {
                let value: String =
                    sqlx::query_scalar(&format!("SHOW {setting}")).fetch_one(&pool).await.expect("shown");
                scans.push(value);
            }
            (mode, scans.join(","))
        }
    };

    assert!(test_settings(&[]).database.batch_generic_plans, "on by default");
    assert_eq!(show(true).await, ("force_generic_plan".to_owned(), "off,off,off".to_owned()));
    assert_eq!(show(false).await, ("auto".to_owned(), "on,on,on".to_owned()));
}
