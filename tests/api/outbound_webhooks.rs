//! Outbound webhooks against real HTTP receivers (wiremock servers that record every request):
//! signatures checked with the Standard Webhooks library (not Switchboard's signer), a receiver
//! down then back, two instances sending, a hanging receiver beside a fast one, refused
//! destinations, secret rotation, the delivery log, retry, replay and 410 Gone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use standardwebhooks::Webhook;
use web::settings::Settings;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{call_body, spawn_app_with, spawn_instance, TestApp, TestUser};

const ALL_EVENTS: [&str; 4] = ["call.updated", "call.ended", "campaign.updated", "campaign.completed"];

/// One request a receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    webhook_id: String,
    headers: http::HeaderMap,
    raw: Vec<u8>,
    pub(crate) body: Value,
    at: Instant,
    answered: u16,
}

/// A receiver: answers every POST with `status` after `delay`, recording each request.
#[derive(Clone)]
pub(crate) struct Receiver {
    server: Arc<MockServer>,
    log: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
}

struct Recorder {
    log: Arc<Mutex<Vec<Received>>>,
    status: Arc<AtomicU16>,
    delay: Duration,
}

impl Respond for Recorder {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let answered = self.status.load(Ordering::SeqCst);
        let header =
            |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        self.log.lock().unwrap().push(Received {
            webhook_id: header("webhook-id"),
            headers: request.headers.clone(),
            raw: request.body.clone(),
            body: serde_json::from_slice(&request.body).unwrap_or(Value::Null),
            at: Instant::now(),
            answered,
        });
        ResponseTemplate::new(answered).set_body_string(format!("answer {answered}")).set_delay(self.delay)
    }
}

impl Receiver {
    pub(crate) async fn start(delay: Duration) -> Self {
        let server = MockServer::start().await;
        let log = Arc::new(Mutex::new(Vec::new()));
        let status = Arc::new(AtomicU16::new(200));
        Mock::given(wiremock::matchers::method("POST"))
            .respond_with(Recorder { log: log.clone(), status: status.clone(), delay })
            .mount(&server)
            .await;
        Self { server: Arc::new(server), log, status }
    }

    pub(crate) fn url(&self) -> String {
        format!("{}/hooks", self.server.uri())
    }

    pub(crate) fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }

    /// Waits (up to `limit`) until `done` holds of what was received; returns it.
    pub(crate) async fn wait_for(
        &self,
        limit: Duration,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received();
            if done(&received) {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; received {:#?}",
                summary(&received)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn summary(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|r| format!("{} {} seq={} -> {}", r.webhook_id, r.body["type"], r.body["sequence"], r.answered))
        .collect()
}

/// Fast polling and a retry schedule of about ten seconds.
fn quick(settings: &mut Settings) {
    let outbound = &mut settings.outbound_webhooks;
    outbound.poll_interval_ms = 25;
    outbound.retry_schedule_seconds =
        vec![0.0, 0.2, 0.3, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
    outbound.timeout_seconds = 2.0;
}

async fn create_endpoint(app: &TestApp, user: &TestUser, url: &str, events: &[&str]) -> (String, String) {
    let response = app
        .client
        .post(app.url("/v1/webhook-endpoints"))
        .bearer_auth(&user.key)
        .json(&json!({"url": url, "events": events, "description": "test receiver"}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (body["endpoint"]["id"].as_str().unwrap().to_owned(), body["secret"].as_str().unwrap().to_owned())
}

async fn call_api(
    app: &TestApp,
    user: &TestUser,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path)).bearer_auth(&user.key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn verifies(secret: &str, received: &Received) -> bool {
    Webhook::new(secret).unwrap().verify(&received.raw, &received.headers).is_ok()
}

/// Deliveries of the endpoint not yet succeeded or failed.
async fn unfinished(app: &TestApp, user: &TestUser, endpoint: &str) -> usize {
    let mut count = 0;
    for status in ["pending", "sending"] {
        let (_, page) = call_api(
            app,
            user,
            "GET",
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries?status={status}&limit=100"),
            None,
        )
        .await;
        count += page["data"].as_array().map_or(0, Vec::len);
    }
    count
}

async fn wait_until_all_delivered(app: &TestApp, user: &TestUser, endpoint: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while unfinished(app, user, endpoint).await > 0 {
        assert!(Instant::now() < deadline, "deliveries still unfinished after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn every_event_of_a_call_arrives_signed_as_the_standard_webhooks_library_verifies() {
    let app = spawn_app_with(quick, |_| {}).await;
    let receiver = Receiver::start(Duration::ZERO).await;
    let user = app.create_user(2, 2).await;
    let (endpoint, secret) = create_endpoint(&app, &user, &receiver.url(), &ALL_EVENTS).await;
    assert!(secret.starts_with("whsec_"), "{secret}");

    let call = app.start_call(&user, "+14155550170", 201).await;
    let call_id = call["id"].as_str().unwrap().to_owned();
    let received = receiver
        .wait_for(Duration::from_secs(20), "call.ended", |r| r.iter().any(|r| r.body["type"] == "call.ended"))
        .await;

    for delivery in &received {
        assert!(verifies(&secret, delivery), "signature of {}", delivery.webhook_id);
        assert!(delivery.webhook_id.starts_with("msg_"));
        let mut tampered = delivery.clone();
        tampered.raw.push(b' ');
        assert!(!verifies(&secret, &tampered), "a changed body must not verify");
        assert_eq!(delivery.body["data"]["id"], call_id.as_str(), "{}", delivery.body);
        assert!(delivery.body["event_id"].is_i64() && delivery.body["timestamp"].is_string());
    }
    let mut by_sequence = received.clone();
    by_sequence.sort_by_key(|r| r.body["sequence"].as_i64().unwrap());
    let sequences: Vec<i64> = by_sequence.iter().map(|r| r.body["sequence"].as_i64().unwrap()).collect();
    assert_eq!(sequences, (1..=received.len() as i64).collect::<Vec<_>>(), "one per event, no gaps");
    let last = by_sequence.last().unwrap();
    assert_eq!(last.body["type"], "call.ended", "call.ended comes last: {:?}", summary(&by_sequence));
    assert_eq!(
        received.iter().filter(|r| r.body["type"] == "call.ended").count(),
        1,
        "call.ended is sent once"
    );
    let statuses: Vec<&str> = by_sequence
        .iter()
        .filter(|r| r.body["type"] == "call.updated")
        .map(|r| r.body["data"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"initiating"), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&"completed"), "{statuses:?}");

    // data is the call exactly as the API shows it: same fields, and the final data is there.
    let api_call = app.call_json(&user, &call_id).await;
    let ended = &last.body["data"];
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<HashSet<_>>();
    assert_eq!(keys(ended), keys(&api_call));
    for field in
        ["status", "bolna_execution_id", "total_cost", "transcript", "recording_url", "conversation_duration"]
    {
        assert_eq!(ended[field], api_call[field], "{field}");
    }
    assert!(ended["transcript"].is_string() && ended["total_cost"].is_number(), "{ended}");

    // A ping travels the same way.
    let (status, ping) =
        call_api(&app, &user, "POST", &format!("/v1/webhook-endpoints/{endpoint}/test"), None).await;
    assert_eq!(status, 202, "{ping}");
    assert_eq!(ping["event_type"], "ping");
    let webhook_id = ping["webhook_id"].as_str().unwrap().to_owned();
    let received = receiver
        .wait_for(Duration::from_secs(10), "the ping", |r| r.iter().any(|r| r.webhook_id == webhook_id))
        .await;
    let ping = received.iter().find(|r| r.webhook_id == webhook_id).unwrap();
    assert!(verifies(&secret, ping));
    assert_eq!(ping.body["type"], "ping");
    assert_eq!(ping.body["data"]["endpoint_id"], endpoint.as_str());
}

#[tokio::test]
async fn a_receiver_down_then_back_gets_every_event_once_in_sequence_order() {
    let app = spawn_app_with(quick, |_| {}).await;
    let receiver = Receiver::start(Duration::ZERO).await;
    receiver.answer(503);
    let user = app.create_user(3, 0).await;
    let (endpoint, secret) =
        create_endpoint(&app, &user, &receiver.url(), &["call.updated", "call.ended"]).await;

    let mut calls = Vec::new();
    for n in 0..3 {
        let call = app.start_call(&user, &format!("+1415555018{n}"), 201).await;
        calls.push(call["id"].as_str().unwrap().to_owned());
    }
    for call in &calls {
        app.wait_for_status(&user, call, "completed").await;
    }
    // Down for a while: every delivery has failed at least once.
    receiver
        .wait_for(Duration::from_secs(20), "failed attempts", |r| {
            r.iter().filter(|r| r.answered == 503).map(|r| &r.webhook_id).collect::<HashSet<_>>().len() >= 6
        })
        .await;
    let (_, log) =
        call_api(&app, &user, "GET", &format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"), None)
            .await;
    let failed_attempt = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|d| d["attempt_log"].as_array().unwrap().iter())
        .find(|a| a["status_code"] == 503)
        .cloned()
        .expect("the log shows a 503");
    assert_eq!(failed_attempt["response_excerpt"], "answer 503", "{failed_attempt}");
    assert!(failed_attempt["error"].as_str().unwrap().contains("503"), "{failed_attempt}");

    receiver.answer(200);
    wait_until_all_delivered(&app, &user, &endpoint).await;
    let received = receiver.received();
    let mut acknowledged: BTreeMap<String, usize> = BTreeMap::new();
    for delivery in &received {
        assert!(verifies(&secret, delivery));
        if delivery.answered == 200 {
            *acknowledged.entry(delivery.webhook_id.clone()).or_default() += 1;
        }
    }
    assert!(acknowledged.values().all(|n| *n == 1), "each webhook-id succeeds once: {acknowledged:?}");
    // Every request for one webhook-id carries the same body: duplicates are only retries.
    let mut bodies: HashMap<&str, &Vec<u8>> = HashMap::new();
    for delivery in &received {
        assert_eq!(*bodies.entry(&delivery.webhook_id).or_insert(&delivery.raw), &delivery.raw);
    }
    let (_, log) =
        call_api(&app, &user, "GET", &format!("/v1/webhook-endpoints/{endpoint}/deliveries?limit=100"), None)
            .await;
    let deliveries = log["data"].as_array().unwrap();
    assert_eq!(acknowledged.len(), deliveries.len(), "every delivery acknowledged");
    assert!(deliveries.iter().all(|d| d["status"] == "succeeded"));

    // The sequence numbers order the user's events: per call, its statuses move forward and
    // call.ended is its last.
    let mut firsts: Vec<&Received> = Vec::new();
    for delivery in &received {
        if !firsts.iter().any(|f| f.webhook_id == delivery.webhook_id) {
            firsts.push(delivery);
        }
    }
    firsts.sort_by_key(|r| r.body["sequence"].as_i64().unwrap());
    let sequences: Vec<i64> = firsts.iter().map(|r| r.body["sequence"].as_i64().unwrap()).collect();
    assert_eq!(sequences, (1..=firsts.len() as i64).collect::<Vec<_>>());
    let order =
        ["initiating", "placed", "initiated", "ringing", "in-progress", "call-disconnected", "completed"];
    for call in &calls {
        let of_call: Vec<&&Received> =
            firsts.iter().filter(|r| r.body["data"]["id"] == call.as_str()).collect();
        let positions: Vec<usize> = of_call
            .iter()
            .filter(|r| r.body["type"] == "call.updated")
            .map(|r| order.iter().position(|s| r.body["data"]["status"] == *s).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{call}: {positions:?}");
        assert_eq!(of_call.last().unwrap().body["type"], "call.ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_send_one_delivery_at_once() {
    let first = spawn_app_with(quick, |_| {}).await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), quick).await;
    let hold = Duration::from_millis(300);
    let receiver = Receiver::start(hold).await;
    let user = first.create_user(4, 0).await;
    let (endpoint, _) =
        create_endpoint(&first, &user, &receiver.url(), &["call.updated", "call.ended"]).await;

    for n in 0..8 {
        let app = if n % 2 == 0 { &first } else { &second };
        let response = app.post_call(&user, &call_body(&format!("+1415555019{n}"))).await;
        assert!(response.status().is_success());
    }
    wait_until_all_delivered(&first, &user, &endpoint).await;
    let received = receiver.received();
    let mut by_id: HashMap<&str, Vec<Instant>> = HashMap::new();
    for delivery in &received {
        by_id.entry(&delivery.webhook_id).or_default().push(delivery.at);
    }
    assert!(by_id.len() >= 8 * 3, "every call's events: {}", by_id.len());
    for (id, mut starts) in by_id {
        starts.sort();
        for pair in starts.windows(2) {
            assert!(pair[1] - pair[0] >= hold, "{id} was being sent twice at once");
        }
        assert_eq!(starts.len(), 1, "{id} was sent {} times with no failure to retry", starts.len());
    }
    let succeeded = "switchboard_outbound_webhook_attempts_total{outcome=\"succeeded\"}";
    let (a, b) = (first.metric(succeeded).await, second.metric(succeeded).await);
    assert!(a > 0.0 && b > 0.0, "both instances sent: {a} and {b}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hanging_receiver_does_not_slow_another() {
    let app = spawn_app_with(
        |settings| {
            quick(settings);
            settings.outbound_webhooks.timeout_seconds = 5.0;
        },
        |_| {},
    )
    .await;
    let fast = Receiver::start(Duration::ZERO).await;
    let hanging = Receiver::start(Duration::from_secs(60)).await;
    let user = app.create_user(2, 0).await;
    create_endpoint(&app, &user, &fast.url(), &["call.updated", "call.ended"]).await;

    // Latency from the event to its arrival at the fast receiver, p50 over a few calls.
    async fn latencies(app: &TestApp, user: &TestUser, fast: &Receiver, numbers: &[&str]) -> Vec<f64> {
        let before = fast.received().len();
        for number in numbers {
            let call = app.start_call(user, number, 201).await;
            let id = call["id"].as_str().unwrap().to_owned();
            fast.wait_for(Duration::from_secs(20), "call.ended", |r| {
                r.iter().any(|r| r.body["type"] == "call.ended" && r.body["data"]["id"] == id.as_str())
            })
            .await;
        }
        let received = fast.received();
        let now_utc = chrono::Utc::now();
        let now = Instant::now();
        let mut figures: Vec<f64> = received[before..]
            .iter()
            .map(|r| {
                let event_at =
                    chrono::DateTime::parse_from_rfc3339(r.body["timestamp"].as_str().unwrap()).unwrap();
                let arrived_utc = now_utc - chrono::Duration::from_std(now - r.at).unwrap();
                (arrived_utc - event_at.to_utc()).num_microseconds().unwrap() as f64 / 1000.0
            })
            .collect();
        figures.sort_by(f64::total_cmp);
        figures
    }
    let p50 = |v: &[f64]| v[v.len() / 2];
    let baseline = latencies(&app, &user, &fast, &["+14155550201", "+14155550202", "+14155550203"]).await;

    // Now a second endpoint that never answers in time, subscribed to the same events.
    create_endpoint(&app, &user, &hanging.url(), &["call.updated", "call.ended"]).await;
    let with_hang = latencies(&app, &user, &fast, &["+14155550204", "+14155550205", "+14155550206"]).await;
    assert!(hanging.received().len() >= 4, "the hanging receiver was being sent to");
    eprintln!(
        "fast receiver p50 {:.1} ms alone, {:.1} ms beside a hanging one (max {:.1} / {:.1} ms)",
        p50(&baseline),
        p50(&with_hang),
        baseline.last().unwrap(),
        with_hang.last().unwrap()
    );
    assert!(
        p50(&with_hang) < p50(&baseline) + 250.0,
        "p50 {} ms beside a hanging receiver against {} ms alone",
        p50(&with_hang),
        p50(&baseline)
    );
    assert!(*with_hang.last().unwrap() < 2_000.0, "no delivery waited for the hanging one: {with_hang:?}");
}

#[tokio::test]
async fn destinations_that_are_not_public_or_not_https_are_refused() {
    let strict = spawn_app_with(
        |settings| {
            settings.outbound_webhooks.allow_http = false;
            settings.outbound_webhooks.allow_private_destinations = false;
        },
        |_| {},
    )
    .await;
    let user = strict.create_user(1, 0).await;
    for url in [
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.0.0.7/hook",
        "https://192.168.1.20/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://0.0.0.0/hook",
        "https://user:pw@example.com/hook",
        "ftp://example.com/hook",
    ] {
        let (status, body) = call_api(
            &strict,
            &user,
            "POST",
            "/v1/webhook-endpoints",
            Some(json!({"url": url, "events": ["call.ended"]})),
        )
        .await;
        assert_eq!(status, 422, "{url}: {body}");
        assert_eq!(body["errors"][0]["field"], "url", "{url}: {body}");
    }
    drop(strict);

    // Created where private destinations are allowed, then sent by an instance where they are
    // not: the attempt is refused before any request, for an address and for a name alike.
    let open = spawn_app_with(quick, |_| {}).await;
    let receiver = Receiver::start(Duration::ZERO).await;
    let user = open.create_user(1, 0).await;
    let port = receiver.server.address().port();
    let (by_address, _) = create_endpoint(&open, &user, &receiver.url(), &["call.ended"]).await;
    let (by_name, _) =
        create_endpoint(&open, &user, &format!("http://localhost:{port}/hooks"), &["call.ended"]).await;
    let database_url = open.database_url.clone();
    let sim = open.sim.clone();
    open.stop_server().await;
    let guarded = spawn_instance(&database_url, sim, |settings| {
        quick(settings);
        settings.outbound_webhooks.allow_private_destinations = false;
    })
    .await;
    for endpoint in [&by_address, &by_name] {
        let (status, ping) =
            call_api(&guarded, &user, "POST", &format!("/v1/webhook-endpoints/{endpoint}/test"), None).await;
        assert_eq!(status, 202, "{ping}");
        let id = ping["id"].as_i64().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let attempt = loop {
            let (_, log) = call_api(
                &guarded,
                &user,
                "GET",
                &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
                None,
            )
            .await;
            let delivery = log["data"].as_array().unwrap().iter().find(|d| d["id"] == id).cloned().unwrap();
            if let Some(attempt) = delivery["attempt_log"].as_array().unwrap().first() {
                break attempt.clone();
            }
            assert!(Instant::now() < deadline, "no attempt recorded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(attempt["status_code"].is_null(), "{attempt}");
        assert!(attempt["error"].as_str().unwrap().contains("not a public address"), "{attempt}");
    }
    assert!(receiver.received().is_empty(), "nothing reached the private address");
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_until_the_overlap_ends_then_only_the_new_one() {
    let app = spawn_app_with(
        |settings| {
            quick(settings);
            settings.outbound_webhooks.secret_rotation_overlap_seconds = 2;
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start(Duration::ZERO).await;
    let user = app.create_user(1, 0).await;
    let (endpoint, old) = create_endpoint(&app, &user, &receiver.url(), &["call.ended"]).await;
    let (status, rotated) =
        call_api(&app, &user, "POST", &format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"), None).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["endpoint"]["previous_secret_expires_at"].is_string(), "{rotated}");
    let rotated_at = Instant::now();

    let ping = |label: &'static str| {
        let (app, user, endpoint, receiver) = (&app, &user, &endpoint, &receiver);
        async move {
            let (status, ping) =
                call_api(app, user, "POST", &format!("/v1/webhook-endpoints/{endpoint}/test"), None).await;
            assert_eq!(status, 202, "{label}: {ping}");
            let id = ping["webhook_id"].as_str().unwrap().to_owned();
            let received = receiver
                .wait_for(Duration::from_secs(10), label, |r| r.iter().any(|r| r.webhook_id == id))
                .await;
            received.into_iter().find(|r| r.webhook_id == id).unwrap()
        }
    };
    let during = ping("a ping during the overlap").await;
    assert!(rotated_at.elapsed() < Duration::from_secs(2), "the ping came too late to test the overlap");
    let signatures = during.headers["webhook-signature"].to_str().unwrap().to_owned();
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    assert!(verifies(&new, &during) && verifies(&old, &during));

    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(rotated_at.elapsed())).await;
    let after = ping("a ping after the overlap").await;
    assert_eq!(after.headers["webhook-signature"].to_str().unwrap().split(' ').count(), 1);
    assert!(verifies(&new, &after), "the new secret signs");
    assert!(!verifies(&old, &after), "the old secret no longer signs");
    let (_, shown) = call_api(&app, &user, "GET", &format!("/v1/webhook-endpoints/{endpoint}"), None).await;
    assert!(shown["previous_secret_expires_at"].is_null(), "{shown}");
}

#[tokio::test]
async fn endpoints_are_managed_and_validated_and_kept_to_their_user() {
    let app = spawn_app_with(quick, |_| {}).await;
    let receiver = Receiver::start(Duration::ZERO).await;
    let user = app.create_user(1, 0).await;
    let other = app.create_user(1, 0).await;
    let (endpoint, _) = create_endpoint(&app, &user, &receiver.url(), &["call.ended"]).await;

    for (body, field) in [
        (json!({"url": receiver.url(), "events": []}), "events"),
        (json!({"url": receiver.url(), "events": ["call.nope"]}), "events"),
        (
            json!({"url": receiver.url(), "events": ["call.ended"], "description": "x".repeat(501)}),
            "description",
        ),
        (json!({"url": "not a url", "events": ["call.ended"]}), "url"),
    ] {
        let (status, problem) =
            call_api(&app, &user, "POST", "/v1/webhook-endpoints", Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    for body in [
        json!({"url": receiver.url(), "events": ["call.ended"], "secret": "mine"}),
        json!({"url": 7, "events": ["call.ended"]}),
        json!({"url": receiver.url(), "events": "call.ended"}),
        json!({"url": "https://example.com/\u{0000}", "events": ["call.ended"]}),
    ] {
        let (status, problem) =
            call_api(&app, &user, "POST", "/v1/webhook-endpoints", Some(body.clone())).await;
        assert!(status == 422 || status == 400, "{body}: {status} {problem}");
    }

    let (status, list) = call_api(&app, &user, "GET", "/v1/webhook-endpoints", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert!(list["data"][0].get("secret").is_none(), "a secret is never listed: {list}");
    let path = format!("/v1/webhook-endpoints/{endpoint}");
    for (method, path) in [
        ("GET", path.clone()),
        ("PATCH", path.clone()),
        ("DELETE", path.clone()),
        ("POST", format!("{path}/test")),
        ("GET", format!("{path}/deliveries")),
    ] {
        let body = (method == "PATCH").then(|| json!({"disabled": true}));
        let (status, _) = call_api(&app, &other, method, &path, body).await;
        assert_eq!(status, 404, "another user's {method} {path}");
    }

    let (status, patched) = call_api(
        &app,
        &user,
        "PATCH",
        &path,
        Some(json!({"events": ["call.updated", "call.ended", "call.ended"], "description": null, "disabled": true})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["events"], json!(["call.updated", "call.ended"]));
    assert!(patched["description"].is_null());
    assert_eq!(
        (patched["disabled"].clone(), patched["disabled_reason"].clone()),
        (json!(true), json!("user"))
    );
    let (_, enabled) = call_api(&app, &user, "PATCH", &path, Some(json!({"disabled": false}))).await;
    assert_eq!(
        (enabled["disabled"].clone(), enabled["disabled_reason"].clone()),
        (json!(false), Value::Null)
    );
    let (status, _) = call_api(&app, &user, "GET", &format!("{path}/deliveries?status=lost"), None).await;
    assert_eq!(status, 422);
    let (status, _) = call_api(&app, &user, "GET", &format!("{path}/deliveries?cursor=abc"), None).await;
    assert_eq!(status, 422);

    for n in 1..20 {
        create_endpoint(&app, &user, &format!("{}/{n}", receiver.url()), &["call.ended"]).await;
    }
    let (status, problem) = call_api(
        &app,
        &user,
        "POST",
        "/v1/webhook-endpoints",
        Some(json!({"url": receiver.url(), "events": ["call.ended"]})),
    )
    .await;
    assert_eq!((status, problem["code"].clone()), (409, json!("too_many_webhook_endpoints")), "{problem}");

    let (status, _) = call_api(&app, &user, "DELETE", &path, None).await;
    assert_eq!(status, 204);
    let (status, _) = call_api(&app, &user, "GET", &path, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_log_shows_attempts_and_a_delivery_can_be_retried_and_events_replayed() {
    let app = spawn_app_with(quick, |_| {}).await;
    let receiver = Receiver::start(Duration::ZERO).await;
    let user = app.create_user(1, 0).await;
    let since = chrono::Utc::now();
    let (endpoint, _) = create_endpoint(&app, &user, &receiver.url(), &["call.updated", "call.ended"]).await;
    let call = app.start_call(&user, "+14155550210", 201).await;
    let id = call["id"].as_str().unwrap().to_owned();
    receiver
        .wait_for(Duration::from_secs(20), "call.ended", |r| {
            r.iter().any(|r| r.body["type"] == "call.ended" && r.body["data"]["id"] == id.as_str())
        })
        .await;
    wait_until_all_delivered(&app, &user, &endpoint).await;
    let sent = receiver.received().len();
    let path = format!("/v1/webhook-endpoints/{endpoint}");

    // The log, newest first, a page at a time.
    let (_, page) = call_api(&app, &user, "GET", &format!("{path}/deliveries?limit=2"), None).await;
    let first_page = page["data"].as_array().unwrap().clone();
    assert_eq!(first_page.len(), 2);
    let (_, next) = call_api(
        &app,
        &user,
        "GET",
        &format!("{path}/deliveries?limit=100&cursor={}", page["next_cursor"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(first_page.len() + next["data"].as_array().unwrap().len(), sent);
    assert!(first_page[0]["id"].as_i64() > first_page[1]["id"].as_i64());
    let newest = &first_page[0];
    assert_eq!(newest["event_type"], "call.ended", "{newest}");
    assert_eq!(newest["status"], "succeeded");
    let attempt = &newest["attempt_log"][0];
    assert_eq!(
        (attempt["status_code"].clone(), attempt["response_excerpt"].clone()),
        (json!(200), json!("answer 200"))
    );
    assert!(attempt["latency_ms"].is_i64() && attempt["error"].is_null(), "{attempt}");

    // Retry one: sent again with the same webhook-id.
    let webhook_id = newest["webhook_id"].as_str().unwrap().to_owned();
    let (status, retried) =
        call_api(&app, &user, "POST", &format!("{path}/deliveries/{}/retry", newest["id"]), None).await;
    assert_eq!(status, 202, "{retried}");
    receiver
        .wait_for(Duration::from_secs(10), "the retry", |r| {
            r.iter().filter(|r| r.webhook_id == webhook_id).count() == 2
        })
        .await;
    let (status, _) =
        call_api(&app, &user, "POST", &format!("{path}/deliveries/999999999/retry"), None).await;
    assert_eq!(status, 404);

    // Replay everything since before the call: every event again, same ids.
    let (status, replayed) =
        call_api(&app, &user, "POST", &format!("{path}/replay"), Some(json!({"since": since.to_rfc3339()})))
            .await;
    assert_eq!(status, 202, "{replayed}");
    assert_eq!(replayed["deliveries"], sent as u64);
    let received = receiver.wait_for(Duration::from_secs(20), "the replay", |r| r.len() > 2 * sent).await;
    let ids: HashSet<&str> = received.iter().map(|r| r.webhook_id.as_str()).collect();
    assert_eq!(ids.len(), sent, "a replay sends the same webhook-ids");
    let (status, _) =
        call_api(&app, &user, "POST", &format!("{path}/replay"), Some(json!({"since": "yesterday"}))).await;
    assert_eq!(status, 422);

    // 410 Gone disables the endpoint; nothing more is sent until it is enabled again.
    receiver.answer(410);
    let (_, ping) = call_api(&app, &user, "POST", &format!("{path}/test"), None).await;
    let ping_id = ping["webhook_id"].as_str().unwrap().to_owned();
    receiver
        .wait_for(Duration::from_secs(10), "the ping", |r| r.iter().any(|r| r.webhook_id == ping_id))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, shown) = call_api(&app, &user, "GET", &path, None).await;
        if shown["disabled"] == true {
            assert_eq!(shown["disabled_reason"], "gone");
            break;
        }
        assert!(Instant::now() < deadline, "not disabled after 410: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.answer(200);
    let before = receiver.received().len();
    let (_, second_ping) = call_api(&app, &user, "POST", &format!("{path}/test"), None).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), before, "a disabled endpoint is sent nothing");
    call_api(&app, &user, "PATCH", &path, Some(json!({"disabled": false}))).await;
    let second_id = second_ping["webhook_id"].as_str().unwrap().to_owned();
    receiver
        .wait_for(Duration::from_secs(10), "the held ping", |r| r.iter().any(|r| r.webhook_id == second_id))
        .await;
    assert!(
        app.metric("switchboard_outbound_webhook_endpoints_disabled_total{reason=\"gone\"}").await >= 1.0
    );
}

#[tokio::test]
async fn an_endpoint_failing_every_attempt_for_the_configured_time_is_disabled_and_audited() {
    let app = spawn_app_with(
        |settings| {
            quick(settings);
            // About two seconds instead of five days.
            settings.outbound_webhooks.disable_after_failing_days = 2.0 / 86_400.0;
        },
        |_| {},
    )
    .await;
    let receiver = Receiver::start(Duration::ZERO).await;
    receiver.answer(500);
    let user = app.create_user(1, 0).await;
    let (endpoint, _) = create_endpoint(&app, &user, &receiver.url(), &["call.ended"]).await;
    let path = format!("/v1/webhook-endpoints/{endpoint}");
    let started = Instant::now();
    call_api(&app, &user, "POST", &format!("{path}/test"), None).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    let shown = loop {
        let (_, shown) = call_api(&app, &user, "GET", &path, None).await;
        if shown["disabled"] == true {
            break shown;
        }
        assert!(Instant::now() < deadline, "still enabled: {shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(shown["disabled_reason"], "failing", "{shown}");
    assert!(started.elapsed() >= Duration::from_secs(2), "disabled only after failing for the whole period");
    assert!(receiver.received().len() >= 3, "it was retried meanwhile");
    let audit: Value =
        app.admin(app.client.get(app.url("/v1/admin/audit-log"))).send().await.unwrap().json().await.unwrap();
    let entry = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "webhook_endpoint_disabled")
        .unwrap_or_else(|| panic!("no audit entry: {audit}"));
    assert_eq!(entry["details"]["reason"], "failing");
    assert_eq!(entry["details"]["endpoint_id"], endpoint.as_str());
    let diagnostics = app.diagnostics().await;
    assert_eq!(diagnostics["webhook_endpoints_disabled_by_failures"], 1, "{diagnostics}");
    assert!(diagnostics["outbound_webhook_backlog"].as_i64().unwrap() >= 1, "the ping waits: {diagnostics}");
}

#[tokio::test]
async fn redirects_are_not_followed_and_old_messages_are_pruned_with_their_deliveries() {
    let app = spawn_app_with(quick, |_| {}).await;
    let target = Receiver::start(Duration::ZERO).await;
    let redirecting = MockServer::start().await;
    Mock::given(wiremock::matchers::method("POST"))
        .respond_with(ResponseTemplate::new(307).insert_header("location", target.url().as_str()))
        .mount(&redirecting)
        .await;
    let user = app.create_user(1, 0).await;
    let (endpoint, _) =
        create_endpoint(&app, &user, &format!("{}/hook", redirecting.uri()), &["call.ended"]).await;
    let path = format!("/v1/webhook-endpoints/{endpoint}");
    let (_, ping) = call_api(&app, &user, "POST", &format!("{path}/test"), None).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let attempt = loop {
        let (_, log) = call_api(&app, &user, "GET", &format!("{path}/deliveries"), None).await;
        if let Some(attempt) = log["data"][0]["attempt_log"].as_array().and_then(|a| a.first()).cloned() {
            break attempt;
        }
        assert!(Instant::now() < deadline, "no attempt: {log}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempt["status_code"], 307, "{attempt}");
    assert!(attempt["error"].as_str().unwrap().contains("307"), "{attempt}");
    assert!(target.received().is_empty(), "the redirect was not followed");

    // Retention: messages before the cut go, with their deliveries and attempts.
    let mut conn = app.pool.acquire().await.unwrap();
    let pruned = call_service::outbound_webhooks::prune_webhook_messages(
        &mut conn,
        chrono::Utc::now() + chrono::Duration::seconds(1),
    )
    .await
    .unwrap();
    assert_eq!(pruned, 1, "the ping's message");
    let (_, log) = call_api(&app, &user, "GET", &format!("{path}/deliveries"), None).await;
    assert!(log["data"].as_array().unwrap().is_empty(), "{log}");
    let attempts: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_delivery_attempts")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(attempts, 0);
    assert!(ping["id"].is_i64());
}

#[tokio::test]
async fn the_example_receiver_in_docs_verifies_and_prints_a_delivery() {
    let app = spawn_app_with(quick, |_| {}).await;
    let user = app.create_user(1, 0).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    // Create the endpoint first: the receiver needs its secret.
    let (endpoint, secret) = create_endpoint(&app, &user, &url, &["call.ended"]).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/webhook-receiver.py");
    let mut receiver = tokio::process::Command::new("python3")
        .arg(&script)
        .arg(port.to_string())
        .env("SWITCHBOARD_WEBHOOK_SECRET", &secret)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs the example receiver");
    let deadline = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "the example receiver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let call = app.start_call(&user, "+14155550240", 201).await;
    let id = call["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/webhook-endpoints/{endpoint}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, log) =
            call_api(&app, &user, "GET", &format!("{path}/deliveries?status=succeeded"), None).await;
        if !log["data"].as_array().unwrap().is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the example receiver never answered 2xx");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A delivery signed with another secret is refused.
    let forged = app
        .client
        .post(&url)
        .header("webhook-id", "msg_forged")
        .header("webhook-timestamp", chrono::Utc::now().timestamp().to_string())
        .header("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    receiver.start_kill().unwrap();
    let output = receiver.wait_with_output().await.unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains(&format!("1 call.ended {id} completed")), "{printed}");
}
