//! The client over real HTTP against wiremock: request shapes, every fixture, error classes,
//! retry rules and timeouts.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use bolna_client::{
    BolnaClient, BolnaError, BolnaStatus, CallRequest, ClientSettings, Execution, ExecutionStatus,
    RetryPolicy, StartOutcome,
};
use chrono::{TimeZone, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{bearer_token, body_partial_json, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "bn-test-key";

fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("fixture is JSON")
}

fn client(server: &MockServer) -> BolnaClient {
    client_with(server, |_| {})
}

fn client_with(server: &MockServer, change: impl FnOnce(&mut ClientSettings)) -> BolnaClient {
    let mut settings = ClientSettings::new(server.uri(), SecretString::from(KEY));
    settings.request_timeout = Duration::from_millis(500);
    let fast = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    };
    settings.start_retry = fast;
    settings.read_retry = fast;
    change(&mut settings);
    BolnaClient::new(settings).expect("client builds")
}

fn call_request() -> CallRequest {
    serde_json::from_value(fixture("call_request.json")).expect("request fixture parses")
}

#[tokio::test]
async fn start_call_sends_the_documented_request_and_reads_the_answer() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .and(bearer_token(KEY))
        .and(header_exists("user-agent"))
        .and(body_partial_json(json!({
            "agent_id": "8f2c1d7e-5a4b-4c39-9e21-6b0f3a9d4c12",
            "recipient_phone_number": "+919812345678",
            "from_phone_number": "+918035739222",
            "user_data": {"switchboard_call_id": "5b0e6c8e-3f7a-4d2b-9c61-1a2b3c4d5e6f"}
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("call_response.json")))
        .expect(1)
        .mount(&server)
        .await;

    let answer = client(&server).start_call(&call_request()).await.expect("accepted");

    assert_eq!(answer.execution_id, "d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31");
    assert_eq!(answer.status.as_deref(), Some("queued"));
}

#[tokio::test]
async fn optional_request_fields_are_left_out_rather_than_sent_as_null() {
    let request = CallRequest {
        agent_id: "a".into(),
        recipient_phone_number: "+15550001111".into(),
        from_phone_number: None,
        user_data: None,
        scheduled_at: None,
    };
    let body = serde_json::to_value(&request).unwrap();
    assert_eq!(body, json!({"agent_id": "a", "recipient_phone_number": "+15550001111"}));
}

#[test]
fn every_webhook_and_execution_fixture_parses() {
    let dir = format!("{}/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut parsed = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.starts_with("webhook_") {
            continue;
        }
        let execution: Execution =
            serde_json::from_value(fixture(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = name.trim_start_matches("webhook_").trim_end_matches(".json");
        let expected = expected.split_once('_').map(|(_, s)| s).unwrap_or(expected);
        assert!(expected.ends_with(execution.status.as_str()), "{name} has status {}", execution.status);
        assert_eq!(execution.switchboard_call_id(), Some("5b0e6c8e-3f7a-4d2b-9c61-1a2b3c4d5e6f"), "{name}");
        parsed += 1;
    }
    assert_eq!(parsed, 11);
}

#[test]
fn the_completed_fixture_carries_everything_and_the_legacy_shape_reads_the_same() {
    let current: Execution = serde_json::from_value(fixture("webhook_6_completed.json")).unwrap();
    let legacy: Execution = serde_json::from_value(fixture("webhook_legacy_shape_completed.json")).unwrap();

    assert_eq!(current.status, ExecutionStatus::Known(BolnaStatus::Completed));
    assert_eq!(current.duration_seconds(), Some(74.6));
    assert_eq!(current.total_cost, Some(6.42));
    assert_eq!(current.telephony_data.as_ref().unwrap().duration, Some(77.0), "string duration");
    assert_eq!(current.telephony_data.as_ref().unwrap().hangup_provider_code.as_deref(), Some("4000"));
    assert_eq!(current.extracted_data, Some(json!({"order_confirmed": true, "callback_requested": false})));
    assert_eq!(
        current.created_at,
        Some(Utc.with_ymd_and_hms(2026, 9, 1, 5, 0, 2).unwrap() + chrono::TimeDelta::milliseconds(118))
    );
    assert!(current.recording_url().unwrap().ends_with(&current.id));

    assert_eq!(legacy.id, "7432382142914", "integer id read as text");
    assert_eq!(legacy.duration_seconds(), Some(74.6), "conversation_time");
    assert_eq!(legacy.telephony_data.as_ref().unwrap().duration, Some(77.0), "numeric duration");
    assert_eq!(legacy.transcript, current.transcript);
}

#[test]
fn only_id_and_status_are_required() {
    let minimal: Execution =
        serde_json::from_value(json!({"id": "x", "status": "ringing", "new": [1]})).unwrap();
    assert_eq!(minimal.status, ExecutionStatus::Known(BolnaStatus::Ringing));
    assert!(minimal.switchboard_call_id().is_none());
    assert!(serde_json::from_value::<Execution>(json!({"status": "ringing"})).is_err());
    assert!(serde_json::from_value::<Execution>(json!({"id": "x"})).is_err());
    let odd: Execution =
        serde_json::from_value(json!({"id": 5, "status": "teleported", "total_cost": "1.5"})).unwrap();
    assert_eq!(odd.status, ExecutionStatus::Other("teleported".into()));
    assert_eq!(odd.total_cost, Some(1.5));
}

#[tokio::test]
async fn reads_user_me_executions_stop_and_listing_pages() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user/me"))
        .and(bearer_token(KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("user_me.json")))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/executions/d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("webhook_6_completed.json")))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/call/d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31/stop"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("stop_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/agent/agent-1/executions"))
        .and(query_param("from", "2026-09-01T00:00:00.000Z"))
        .and(query_param("to", "2026-09-02T00:00:00.000Z"))
        .and(query_param("page_number", "1"))
        .and(query_param("page_size", "50"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("agent_executions_page.json")))
        .mount(&server)
        .await;
    let client = client(&server);

    let me = client.user_me().await.unwrap();
    let execution = client.get_execution("d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31").await.unwrap();
    let stopped = client.stop_call("d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31").await.unwrap();
    let from = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();
    let page = client
        .list_agent_executions("agent-1", from, from + chrono::TimeDelta::days(1), 1, 50, None)
        .await
        .unwrap();

    assert_eq!(me.concurrency.map(|c| (c.max, c.current)), Some((10, 3)));
    assert_eq!(execution.status, ExecutionStatus::Known(BolnaStatus::Completed));
    assert_eq!(stopped.status.as_deref(), Some("stopped"));
    assert_eq!((page.total, page.has_more, page.data.len()), (2, false, 2));
}

#[tokio::test]
async fn listing_over_more_than_seven_days_is_split_into_windows_and_pages_are_walked() {
    let server = MockServer::start().await;
    let page = |number: u32, more: bool| {
        json!({"page_number": number, "page_size": 50, "total": 3, "has_more": more,
               "data": [{"id": format!("e{number}"), "status": "completed"}]})
    };
    Mock::given(method("GET"))
        .and(path("/v2/agent/a/executions"))
        .and(query_param("page_number", "1"))
        .and(query_param("from", "2026-09-01T00:00:00.000Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(1, true)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/agent/a/executions"))
        .and(query_param("page_number", "2"))
        .and(query_param("from", "2026-09-01T00:00:00.000Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(2, false)))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/agent/a/executions"))
        .and(query_param("page_number", "1"))
        .and(query_param("from", "2026-09-08T00:00:00.000Z"))
        .and(query_param("to", "2026-09-10T00:00:00.000Z"))
        .respond_with(ResponseTemplate::new(200).set_body_json(page(3, false)))
        .expect(1)
        .mount(&server)
        .await;
    let from = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();

    let all = client(&server)
        .agent_executions_between("a", from, from + chrono::TimeDelta::days(9), None)
        .await
        .unwrap();

    assert_eq!(all.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["e1", "e2", "e3"]);
}

#[tokio::test]
async fn listing_refuses_windows_and_pages_outside_bolnas_bounds() {
    let server = MockServer::start().await;
    let from = Utc.with_ymd_and_hms(2026, 9, 1, 0, 0, 0).unwrap();
    let client = client(&server);
    for (to, size) in
        [(from + chrono::TimeDelta::days(8), 50), (from, 50), (from + chrono::TimeDelta::days(1), 51)]
    {
        let error = client.list_agent_executions("a", from, to, 1, size, None).await.unwrap_err();
        assert!(matches!(error, BolnaError::InvalidRequest(_)), "{error}");
        assert_eq!(error.start_outcome(), StartOutcome::NotStarted);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn every_4xx_means_not_started_and_401_or_403_mean_rejected_credentials() {
    for (status, body) in [
        (400, fixture("error_400.json")),
        (401, fixture("error_401.json")),
        (403, fixture("error_403_detail.json")),
        (404, json!({"detail": "Agent not found"})),
        (422, json!({"detail": [{"loc": ["body", "agent_id"], "msg": "field required"}]})),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .and(path("/call"))
            .respond_with(ResponseTemplate::new(status).set_body_json(&body))
            .expect(1)
            .mount(&server)
            .await;

        let error = client(&server).start_call(&call_request()).await.unwrap_err();

        assert_eq!(error.start_outcome(), StartOutcome::NotStarted, "{status}");
        assert_eq!(error.status(), Some(status));
        assert_eq!(error.credentials_rejected(), status == 401 || status == 403, "{status}");
        assert!(error.api_message().is_some(), "{status}: a message is kept");
    }
}

#[tokio::test]
async fn error_messages_come_from_either_body_shape() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user/me"))
        .respond_with(ResponseTemplate::new(403).set_body_json(fixture("error_403_detail.json")))
        .mount(&server)
        .await;
    let error = client(&server).user_me().await.unwrap_err();
    assert_eq!(error.api_message().as_deref(), Some("Invalid API key"));
    assert!(error.to_string().contains("403"));
}

#[tokio::test]
async fn a_5xx_answer_to_a_call_request_is_unknown_and_never_resent() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(502).set_body_string("Bad Gateway"))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server).start_call(&call_request()).await.unwrap_err();

    assert_eq!(error.start_outcome(), StartOutcome::Unknown);
    assert_eq!(error.kind(), "server_error");
}

#[tokio::test]
async fn a_call_request_that_timed_out_is_sent_exactly_once_and_is_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("call_response.json"))
                .set_delay(Duration::from_secs(2)),
        )
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server).start_call(&call_request()).await.unwrap_err();

    assert!(matches!(error, BolnaError::Timeout), "{error}");
    assert_eq!(error.start_outcome(), StartOutcome::Unknown);
}

#[tokio::test]
async fn an_unreadable_success_answer_is_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>oops</html>"))
        .expect(1)
        .mount(&server)
        .await;

    let error = client(&server).start_call(&call_request()).await.unwrap_err();

    assert!(matches!(error, BolnaError::Decode { status: 200, .. }), "{error}");
    assert_eq!(error.start_outcome(), StartOutcome::Unknown);
}

#[tokio::test]
async fn a_429_call_request_is_retried_honouring_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "0.2")
                .set_body_json(json!({"error": 429, "message": "Too many requests"})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("call_response.json")))
        .expect(1)
        .mount(&server)
        .await;
    let client = client_with(&server, |s| s.start_retry.max_delay = Duration::from_secs(1));
    let started = std::time::Instant::now();

    let answer = client.start_call(&call_request()).await.expect("second attempt succeeds");

    assert_eq!(answer.execution_id, "d41f7a60-2c3e-4b8e-a1f5-0e9b7c2d6a31");
    assert!(started.elapsed() >= Duration::from_millis(200), "waited for Retry-After");
}

#[tokio::test]
async fn persistent_429s_give_up_after_the_bounded_attempts_as_not_started() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/call"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({"error": 429, "message": "slow down"})))
        .expect(3)
        .mount(&server)
        .await;

    let error = client(&server).start_call(&call_request()).await.unwrap_err();

    assert!(error.is_rate_limited());
    assert_eq!(error.start_outcome(), StartOutcome::NotStarted);
}

#[tokio::test]
async fn a_refused_connection_is_not_started_and_retried() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut settings = ClientSettings::new(format!("http://127.0.0.1:{port}"), SecretString::from(KEY));
    settings.start_retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };

    let error = BolnaClient::new(settings).unwrap().start_call(&call_request()).await.unwrap_err();

    assert!(matches!(error, BolnaError::Connect(_)), "{error}");
    assert_eq!(error.start_outcome(), StartOutcome::NotStarted);
}

#[tokio::test]
async fn reads_retry_5xx_then_succeed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/executions/e1"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/executions/e1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "e1", "status": "in-progress"})))
        .expect(1)
        .mount(&server)
        .await;

    let execution = client(&server).get_execution("e1").await.expect("third attempt");

    assert_eq!(execution.status, ExecutionStatus::Known(BolnaStatus::InProgress));
}

#[tokio::test]
async fn read_timeouts_are_retried_then_reported() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/user/me"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture("user_me.json"))
                .set_delay(Duration::from_secs(2)),
        )
        .expect(3)
        .mount(&server)
        .await;

    let error = client(&server).user_me().await.unwrap_err();

    assert!(matches!(error, BolnaError::Timeout));
}

/// A bare HTTP/1.1 server that answers every request with the documented `POST /call` answer on
/// kept-alive connections, and counts the connections it accepted.
async fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = accepted.clone();
    let body = serde_json::to_vec(&fixture("call_response.json")).unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = body.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(read @ 1..) = socket.read(&mut chunk).await {
                    buffer.extend_from_slice(&chunk[..read]);
                    // Answer every complete request (head, then a body of Content-Length bytes).
                    while let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
                        let length: usize = head
                            .lines()
                            .find_map(|line| line.strip_prefix("content-length:"))
                            .map_or(0, |value| value.trim().parse().unwrap());
                        if buffer.len() < end + 4 + length {
                            break;
                        }
                        buffer.drain(..end + 4 + length);
                        let head = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                            body.len()
                        );
                        socket.write_all(head.as_bytes()).await.unwrap();
                        socket.write_all(&body).await.unwrap();
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn a_call_reuses_a_connection_only_while_it_has_been_idle_briefly() {
    use std::sync::atomic::Ordering;
    let (url, accepted) = counting_server().await;
    let client = |reuse: Duration| {
        let mut settings = ClientSettings::new(url.clone(), SecretString::from(KEY));
        settings.call_connection_reuse = reuse;
        BolnaClient::new(settings).unwrap()
    };

    let brief = client(Duration::from_millis(300));
    brief.start_call(&call_request()).await.unwrap();
    brief.start_call(&call_request()).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "back-to-back calls share one connection");
    tokio::time::sleep(Duration::from_millis(600)).await;
    brief.start_call(&call_request()).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "after a quiet spell past the window: a new connection");

    let never = client(Duration::ZERO);
    never.start_call(&call_request()).await.unwrap();
    never.start_call(&call_request()).await.unwrap();
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "without a window every call connects anew");
}
