//! The README's run command, as a newcomer runs it: `switchboard dev` with nothing configured
//! starts a private PostgreSQL and the Bolna simulator, answers /healthz and /readyz, prints a key
//! and a curl whose call completes through simulated webhooks, and Ctrl-C stops it all.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Kills the child (and so, by its own shutdown, nothing is left behind) if the test fails midway.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        common::stop(&mut self.0, "-INT", Duration::from_secs(20));
    }
}

#[tokio::test]
async fn dev_runs_everything_from_nothing_and_ctrl_c_stops_it_all() {
    let data_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dev-{}", uuid::Uuid::new_v4().simple()));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut dev = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["dev", "--sim-speed", "1000", "--data-dir"])
        .arg(&data_dir)
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD__DATABASE__URL")
        .env("SWITCHBOARD__SERVER__PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("dev starts");
    let stdout = dev.stdout.take().unwrap();
    let mut dev = KillOnDrop(dev);
    let (lines, banner) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut printed = Vec::new();
    let key = loop {
        let line = banner.recv_timeout(Duration::from_secs(60)).expect("the banner is printed");
        printed.push(line.clone());
        if let Some(key) = line.split_whitespace().find(|w| w.starts_with("sb_")) {
            break key.to_owned();
        }
    };
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let console_line =
        printed.iter().find(|l| l.trim_start().starts_with("console")).expect("the console's URL");
    assert!(console_line.contains(&format!("{base}/console")), "{console_line}");
    let console = http.get(format!("{base}/console")).send().await.unwrap();
    assert_eq!(console.status(), 200);
    assert!(console.text().await.unwrap().contains("<title>Switchboard console</title>"));

    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(format!("{base}/readyz")).send().await.unwrap().status(), 200);
    let call: Value = http
        .post(format!("{base}/v1/calls"))
        .bearer_auth(&key)
        .json(&json!({"agent_id": "8f2c1d7e-5a4b-4c39-9e21-6b0f3a9d4c12", "recipient_phone_number": "+919812345678"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = format!("{base}/v1/calls/{}", call["id"].as_str().expect("a call"));
    let deadline = Instant::now() + Duration::from_secs(30);
    // The demo simulator ends calls like life does: mostly completed, some no-answer, busy, failed.
    let terminal = ["completed", "no-answer", "busy", "failed"];
    let done = loop {
        let now: Value = http.get(&url).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
        if terminal.iter().any(|status| now["status"] == *status) {
            break now;
        }
        assert!(Instant::now() < deadline, "the call never completed: {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    Command::new("kill").args(["-INT", &dev.0.id().to_string()]).status().unwrap();
    let status = common::wait_for_exit(&mut dev.0, Duration::from_secs(30));

    assert!(done["bolna_execution_id"].is_string(), "{done}");
    assert!(
        done["ended_at"].is_string() && done["provider_status"].is_string(),
        "ended through Bolna's webhooks: {done}"
    );
    assert!(status.success(), "Ctrl-C exits cleanly: {status:?}");
    assert!(!data_dir.join("postmaster.pid").exists(), "the private PostgreSQL was stopped");
    // The cluster itself, wherever it lives (a clone the server user cannot enter links to it).
    if let Ok(relocated) = std::fs::read_link(&data_dir) {
        std::fs::remove_dir_all(relocated).ok();
        std::fs::remove_file(&data_dir).ok();
    }
    std::fs::remove_dir_all(&data_dir).ok();
}

/// The quick start from a clone nobody else may enter (root's home is 0700, and PostgreSQL then
/// runs as `postgres`, who cannot enter it): `dev` with nothing set still answers /readyz. Run as
/// root the folder is root-only; as anyone else it is that user's own private folder.
#[tokio::test]
async fn dev_answers_readyz_when_started_from_a_folder_only_its_owner_can_enter() {
    use std::os::unix::fs::PermissionsExt;
    let private = std::env::temp_dir().join(format!("switchboard-private-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dev = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["dev", "--sim-speed", "1000"])
        .current_dir(&private)
        .env_remove("DATABASE_URL")
        .env_remove("SWITCHBOARD__DATABASE__URL")
        .env_remove("SWITCHBOARD_DEV_DATA_DIR")
        .env("SWITCHBOARD__SERVER__PORT", port.to_string())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dev starts");
    let mut dev = KillOnDrop(dev);
    let readyz = format!("http://127.0.0.1:{port}/readyz");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(response) = reqwest::get(&readyz).await {
            if response.status() == 200 {
                break;
            }
        }
        if let Ok(Some(status)) = dev.0.try_wait() {
            let mut log = String::new();
            std::io::Read::read_to_string(dev.0.stderr.as_mut().unwrap(), &mut log).unwrap();
            panic!("dev exited ({status:?}) before /readyz answered 200:\n{log}");
        }
        assert!(Instant::now() < deadline, "/readyz never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Command::new("kill").args(["-INT", &dev.0.id().to_string()]).status().unwrap();
    let status = common::wait_for_exit(&mut dev.0, Duration::from_secs(30));
    assert!(status.success(), "Ctrl-C exits cleanly: {status:?}");
    // Where the cluster lives: in the folder, or (the server user could not enter it) elsewhere,
    // linked from the folder.
    let requested = private.join(".switchboard/postgres");
    let data_dir = std::fs::read_link(&requested).unwrap_or_else(|_| requested.clone());
    assert!(data_dir.join("PG_VERSION").is_file(), "the cluster is at {}", data_dir.display());
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    assert_eq!(data_dir != requested, root, "relocated exactly when the server user is not the caller");
    assert!(!data_dir.join("postmaster.pid").exists(), "the private PostgreSQL was stopped");
    if data_dir != requested {
        std::fs::remove_dir_all(&data_dir).unwrap();
    }
    std::fs::remove_dir_all(&private).unwrap();
}
