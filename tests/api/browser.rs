//! The console in a real browser: headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`). Set `SWITCHBOARD_SCREENSHOTS=<dir>` to save screenshots of both views.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use crate::campaigns::{act, add_contacts, create_campaign, wait_for_campaign};
use crate::helpers::{spawn_app_with, TestApp, AGENT};

const WAIT: Duration = Duration::from_secs(20);

/// A chromedriver process and a browser session; both end with the test.
pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // chromedriver and every Chromium process it started share the group led by chromedriver.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn find_program(names: &[&str], fixed: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    for name in names {
        for dir in &on_path {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    fixed.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// Chromium and its driver, installed with apt when missing and allowed (root with apt-get).
fn browser_programs() -> (PathBuf, PathBuf) {
    let locate = || {
        let driver = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| find_program(&["chromedriver"], &["/usr/lib/chromium/chromedriver"]))?;
        let chromium = std::env::var_os("CHROMIUM")
            .map(PathBuf::from)
            .or_else(|| find_program(&["chromium", "chromium-browser", "google-chrome"], &[]))?;
        Some((chromium, driver))
    };
    if let Some(found) = locate() {
        return found;
    }
    // Another test process may be installing at the same time: apt's lock makes us retry.
    for _ in 0..30 {
        let installed = Command::new("apt-get")
            .args(["install", "-y", "-q", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status();
        if let Some(found) = locate() {
            return found;
        }
        if installed.is_err() {
            break;
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    panic!("browser tests need chromium and chromedriver: apt-get install -y chromium chromium-driver");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Browser {
    pub async fn start() -> Self {
        let (chromium, driver_path) = browser_programs();
        let port = free_port();
        // Its own process group, so the browsers it starts end with it (see `Drop`).
        let driver = Command::new(&driver_path)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = std::env::temp_dir().join(format!("switchboard-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile).unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,1500".to_owned(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let mut capabilities = serde_json::Map::new();
        capabilities
            .insert("goog:chromeOptions".into(), json!({"binary": chromium.to_string_lossy(), "args": args}));
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + WAIT;
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => break client,
                Err(error) if Instant::now() < deadline => {
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(error) => panic!("no WebDriver session: {error}"),
            }
        };
        Self { client, driver, profile }
    }

    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
    }

    /// Waits until the element matching `css` exists and its text satisfies `done`.
    pub async fn wait_for_text(&self, css: &str, what: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if done(&text) {
                return text;
            }
            assert!(Instant::now() < deadline, "waited for {what} at `{css}`; last text {text:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_gone(&self, css: &str, what: &str) {
        let deadline = Instant::now() + WAIT;
        while self.client.find(Locator::Css(css)).await.is_ok() {
            assert!(Instant::now() < deadline, "{what} did not go away");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    pub async fn click(&self, css: &str) {
        self.client.find(Locator::Css(css)).await.unwrap().click().await.unwrap();
    }

    pub async fn sign_in(&self, app: &TestApp, role: &str, secret: &str) {
        self.client.goto(&app.url("/console")).await.unwrap();
        self.click(&format!("input[name=role][value={role}]")).await;
        self.fill("#secret", secret).await;
        self.click("#sign-in-form button[type=submit]").await;
        self.wait_for_text("#who", "the signed-in banner", |t| t.starts_with("Signed in")).await;
    }

    /// Saves a screenshot when `SWITCHBOARD_SCREENSHOTS` names a directory.
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SWITCHBOARD_SCREENSHOTS") else { return };
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(PathBuf::from(dir).join(name), png).unwrap();
    }

    async fn script(&self, source: &str) -> Value {
        self.client.execute(source, vec![]).await.unwrap()
    }
}

#[tokio::test]
async fn a_user_starts_a_call_and_watches_it_complete_live_while_the_gauges_move() {
    // About three seconds per call: long enough to see it live on the page.
    let app = spawn_app_with(|_| {}, |sim| sim.speed = 30.0).await;
    let user = app.create_user(2, 3).await;
    let browser = Browser::start().await;
    browser.sign_in(&app, "user", &user.key).await;
    browser.wait_for_text("#live", "the live indicator", |t| t == "Live").await;
    assert_eq!(browser.text("#gauge-direct [data-field=limit]").await, "2");
    assert_eq!(browser.text("#gauge-campaign [data-field=limit]").await, "3");
    // Marks this page load: a reload would lose it.
    browser.script("window.sameLoad = 'yes'; return null;").await;

    browser.fill("#agent_id", AGENT).await;
    browser.fill("#recipient_phone_number", "+14155550123").await;
    browser.click("#start-form button[type=submit]").await;

    browser
        .wait_for_text("#gauge-direct [data-field=active]", "the direct gauge to show 1 in use", |t| t == "1")
        .await;
    let status = browser
        .wait_for_text("#calls tbody tr .status", "the call's live status", |t| {
            ["initiated", "ringing", "in-progress", "placed", "initiating"].contains(&t)
        })
        .await;
    // What the page showed is a status the call really passed through (its events say so), shown
    // live: the same page load goes on to show `completed` below.
    let passed: Vec<String> = sqlx::query_scalar(
        "SELECT e.status FROM events e JOIN calls c ON c.id = e.subject_id WHERE c.user_id = $1::uuid ORDER BY e.id",
    )
    .bind(&user.id)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(passed.contains(&status), "the page showed {status:?}; the call went {passed:?}");
    browser.screenshot("console-user.png").await;
    browser.wait_for_text("#calls tbody tr .status", "the call to complete", |t| t == "completed").await;
    browser
        .wait_for_text("#gauge-direct [data-field=active]", "the slot to be given back", |t| t == "0")
        .await;

    let execution = browser.text("#calls tbody tr td:nth-child(5)").await;
    let calls = app.get_json_as(&user, "/v1/calls").await;
    assert_eq!(calls["data"][0]["status"], "completed");
    assert_eq!(
        calls["data"][0]["bolna_execution_id"],
        execution.as_str(),
        "the page shows Bolna's execution ID"
    );
    assert_eq!(browser.script("return window.sameLoad || null;").await, json!("yes"), "no reload happened");
    let meter = browser.script("return document.querySelector('#meter-direct').value;").await;
    assert_eq!(meter, json!(0));

    // A call scheduled for tomorrow appears live as such, holding nothing, and is canceled from
    // the page.
    let tomorrow = (chrono::Utc::now() + chrono::TimeDelta::days(1)).to_rfc3339();
    let body = json!({"agent_id": AGENT, "recipient_phone_number": "+14155550124", "scheduled_at": tomorrow});
    let scheduled: Value = app.post_call(&user, &body).await.json().await.unwrap();
    let row = format!("#calls tbody tr[data-call-id='{}']", scheduled["id"].as_str().unwrap());
    browser
        .wait_for_text(&format!("{row} .status"), "the scheduled call", |t| t.starts_with("scheduled for"))
        .await;
    assert_eq!(browser.text("#gauge-direct [data-field=active]").await, "0");
    browser.click(&format!("{row} button")).await;
    browser
        .wait_for_text(&format!("{row} .status"), "the scheduled call canceled", |t| t == "canceled")
        .await;
}

#[tokio::test]
async fn a_user_opens_a_finished_campaigns_report_downloads_its_results_and_sees_the_months_usage() {
    let app = spawn_app_with(|_| {}, |_| {}).await;
    let user = app.create_user(2, 3).await;
    let campaign = create_campaign(
        &app,
        &user,
        json!({"name": "Renewals", "agent_id": AGENT, "max_concurrency": 3, "budget": 500}),
    )
    .await;
    let id = campaign["id"].as_str().unwrap().to_owned();
    let numbers: Vec<String> = (1..=3).map(|n| format!("+1415555019{n}")).collect();
    assert_eq!(add_contacts(&app, &user, &id, &numbers).await["accepted"], 3);
    assert_eq!(act(&app, &user, &id, "start").await.status(), reqwest::StatusCode::OK);
    wait_for_campaign(&app, &user, &id, "completed").await;
    let csv = app
        .client
        .get(app.url(&format!("/v1/campaigns/{id}/results.csv")))
        .bearer_auth(&user.key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();

    let browser = Browser::start().await;
    browser.sign_in(&app, "user", &user.key).await;
    let row = format!("#my-campaigns tr[data-campaign-id='{id}']");
    let shown = browser.wait_for_text(&row, "the campaign's row", |t| t.contains("3 of 3")).await;
    assert!(shown.contains("Renewals") && shown.contains("completed"), "{shown}");
    browser.click(&format!("{row} button")).await;
    let report = browser.wait_for_text("#campaign-report", "the report", |t| t.contains("Cost")).await;
    // Three completed calls of the simulator: 5.16 each.
    assert!(report.contains("15.48") && report.contains("500.00"), "{report}");
    assert!(browser.text("#campaign-page-title").await.contains("Renewals"));
    browser.click("#campaign-download").await;
    let done =
        browser.wait_for_text("#campaign-result", "the download", |t| t.starts_with("Downloaded")).await;
    assert_eq!(done, format!("Downloaded {} bytes of results.", csv.len()));
    let calls = browser
        .wait_for_text("#usage-totals [data-figure=calls] dd", "the month's usage", |t| t == "3")
        .await;
    assert_eq!(calls, "3");
    assert!(browser.text("#usage tbody").await.contains("15.48"));
    browser.screenshot("console-campaign.png").await;
}

#[tokio::test]
async fn an_operator_sees_the_slot_table_and_force_releases_a_slot() {
    // Calls stay live until released.
    let app = spawn_app_with(|_| {}, |sim| sim.hold_calls = true).await;
    let user = app.create_user(2, 2).await;
    let call = app.start_call(&user, "+14155550124", 201).await;
    let call_id = call["id"].as_str().unwrap();
    let execution = call["bolna_execution_id"].as_str().unwrap();

    let campaign =
        create_campaign(&app, &user, json!({"name": "Renewals", "agent_id": AGENT, "max_concurrency": 1}))
            .await;
    let numbers = ["+14155550181".to_owned(), "+14155550182".to_owned()];
    let added = add_contacts(&app, &user, campaign["id"].as_str().unwrap(), &numbers).await;
    assert_eq!(added["accepted"], 2);

    let browser = Browser::start().await;
    browser.sign_in(&app, "operator", crate::helpers::ADMIN_TOKEN).await;
    let campaign_row = format!("#campaigns tr[data-campaign-id='{}']", campaign["id"].as_str().unwrap());
    let progress =
        browser.wait_for_text(&campaign_row, "the campaign's progress", |t| t.contains("0 / 2")).await;
    assert!(progress.contains("Renewals") && progress.contains("draft"), "{progress}");
    let row = format!("#active-calls tr[data-call-id='{call_id}']");
    let shown = browser.wait_for_text(&row, "the held slot", |t| t.contains(execution)).await;
    assert!(shown.contains("direct"), "{shown}");
    browser.wait_for_text("[data-metric=account_lines_in_use] dd", "the diagnostics", |t| t == "1").await;
    browser
        .wait_for_text(&format!("#users tr[data-user-id='{}']", user.id), "the user's row", |t| !t.is_empty())
        .await;
    browser.screenshot("console-operator.png").await;

    browser.click(&format!("{row} button")).await;
    browser.wait_for_text("#release-result", "the release confirmation", |t| t.starts_with("Released")).await;
    browser.wait_gone(&row, "the released slot's row").await;
    assert_eq!(app.held_slots().await, 0, "the slot is free in the database");
    let after = app.call_json(&user, call_id).await;
    assert_eq!(after["status"], "failed", "{after}");

    // Limits are editable from the page.
    let input = format!("#users tr[data-user-id='{}'] td:nth-child(3) input", user.id);
    browser.fill(&input, "4").await;
    browser.click(&format!("#users tr[data-user-id='{}'] button", user.id)).await;
    browser.wait_for_text("#users-result", "the save confirmation", |t| t.starts_with("Saved")).await;
    let limits = app.concurrency(&user).await;
    assert_eq!(limits["direct"]["limit"], 4);
}

#[tokio::test]
async fn a_wrong_key_is_refused_on_the_sign_in_form() {
    let app = spawn_app_with(|_| {}, |_| {}).await;
    let browser = Browser::start().await;
    browser.client.goto(&app.url("/console")).await.unwrap();
    browser.fill("#secret", "sb_wrong").await;
    browser.click("#sign-in-form button[type=submit]").await;
    let error = browser.wait_for_text("#sign-in-error", "the refusal", |t| !t.is_empty()).await;
    assert_eq!(error, "That key or token was not accepted.");
    assert!(browser.client.find(Locator::Css("#user-view[hidden]")).await.is_ok(), "nothing else is shown");
}

#[tokio::test]
async fn a_user_adds_a_webhook_endpoint_and_sees_retries_and_replays_its_deliveries() {
    let app = spawn_app_with(|settings| settings.outbound_webhooks.poll_interval_ms = 50, |_| {}).await;
    let receiver = crate::outbound_webhooks::Receiver::start(Duration::ZERO).await;
    let user = app.create_user(2, 0).await;
    let browser = Browser::start().await;
    browser.sign_in(&app, "user", &user.key).await;
    browser.fill("#endpoint-url", &receiver.url()).await;
    browser.click("#endpoint-form button[type=submit]").await;
    let said = browser.wait_for_text("#endpoint-result", "the secret", |t| t.contains("whsec_")).await;
    assert!(said.contains("shown once"), "{said}");
    let row = browser.wait_for_text("#endpoints tbody", "the endpoint", |t| t.contains("/hooks")).await;
    assert!(
        row.contains("call.ended") && row.contains("campaign.completed") && row.contains("enabled"),
        "{row}"
    );

    // A call's end arrives and is listed with the receiver's answer.
    let call = app.start_call(&user, "+14155550230", 201).await;
    let id = call["id"].as_str().unwrap().to_owned();
    receiver
        .wait_for(Duration::from_secs(20), "call.ended", |r| {
            r.iter().any(|r| r.body["type"] == "call.ended" && r.body["data"]["id"] == id.as_str())
        })
        .await;
    let deadline = Instant::now() + WAIT;
    loop {
        browser.click("#deliveries-refresh").await;
        let listed = browser.text("#deliveries tbody").await;
        if listed.contains("call.ended") && listed.contains("succeeded") && listed.contains("HTTP 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the delivery was not listed: {listed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A test ping, then a retry of the newest delivery.
    browser.click("#endpoints tbody button[aria-label^='Send a test']").await;
    browser.wait_for_text("#endpoint-result", "the ping", |t| t.starts_with("Test ping queued")).await;
    receiver
        .wait_for(Duration::from_secs(10), "the ping", |r| r.iter().any(|r| r.body["type"] == "ping"))
        .await;
    browser.wait_for_text("#deliveries tbody", "the ping's row", |t| t.contains("ping")).await;
    let before = receiver.received().len();
    browser.click("#deliveries tbody tr:first-child button").await;
    browser.wait_for_text("#deliveries-result", "the retry", |t| t.contains("will be sent again now")).await;
    receiver.wait_for(Duration::from_secs(10), "the retry", |r| r.len() > before).await;

    // Replay everything since long ago: every delivery again.
    let listed = receiver.received().len();
    browser.script("document.querySelector('#replay-since').value = '2000-01-01T00:00'; return null;").await;
    browser.click("#replay-form button[type=submit]").await;
    let replayed = browser
        .wait_for_text("#deliveries-result", "the replay", |t| t.ends_with("will be sent again."))
        .await;
    let count: usize = replayed.split(' ').next().unwrap().parse().unwrap();
    assert_eq!(count, 1, "the one call.ended (a ping is never replayed): {replayed}");
    receiver
        .wait_for(Duration::from_secs(10), "the replayed deliveries", |r| r.len() >= listed + count)
        .await;
    browser.screenshot("console-webhooks.png").await;
}
