//! The simulator over real HTTP: its lifecycle, Bolna-style queueing above the account limit,
//! validation, the listing, and every fault knob.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use bolna_client::{
    BolnaClient, BolnaError, BolnaStatus, CallRequest, ClientSettings, Execution, ExecutionStatus,
    RetryPolicy, StartOutcome,
};
use bolna_sim::{CallFault, FaultUpdate, OutcomeMix, SimConfig, Simulator, WebhookFaults, WebhookTarget};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const KEY: &str = "sim-key";
const TOKEN: &str = "hook-secret";

struct Setup {
    sim: Simulator,
    client: BolnaClient,
    receiver: MockServer,
    /// This test's own webhook path: wiremock servers are pooled across tests in one process, and
    /// an earlier test's simulator may still be posting to the same port.
    hook: String,
}

async fn setup(change: impl FnOnce(&mut SimConfig)) -> Setup {
    let receiver = MockServer::start().await;
    let hook = format!("/hook/{}", uuid::Uuid::new_v4().simple());
    Mock::given(method("POST"))
        .and(path(hook.as_str()))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let mut config = SimConfig {
        api_key: Some(KEY.into()),
        speed: 1000.0,
        outcomes: OutcomeMix::always_completed(),
        webhook: Some(WebhookTarget {
            url: format!("{}{hook}", receiver.uri()),
            header: Some(("X-Webhook-Token".into(), TOKEN.into())),
        }),
        ..SimConfig::default()
    };
    change(&mut config);
    let sim = Simulator::start(config, "127.0.0.1:0").expect("simulator starts");
    let mut settings = ClientSettings::new(sim.base_url(), SecretString::from(KEY));
    settings.request_timeout = Duration::from_millis(500);
    settings.start_retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(100),
    };
    settings.read_retry = settings.start_retry;
    Setup { sim, client: BolnaClient::new(settings).unwrap(), receiver, hook }
}

fn call(recipient: &str) -> CallRequest {
    CallRequest {
        agent_id: "agent-1".into(),
        recipient_phone_number: recipient.into(),
        from_phone_number: Some("+918035739222".into()),
        user_data: Some(json!({"switchboard_call_id": "c-1", "name": "Asha"}).as_object().unwrap().clone()),
        scheduled_at: None,
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Webhook bodies this test's receiver got, as executions, in arrival order.
async fn received(setup: &Setup) -> Vec<Execution> {
    ours(setup)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("webhook body parses as an execution"))
        .collect()
}

async fn ours(setup: &Setup) -> Vec<wiremock::Request> {
    setup
        .receiver
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == setup.hook)
        .collect()
}

fn statuses(executions: &[Execution], id: &str) -> Vec<String> {
    executions.iter().filter(|e| e.id == id).map(|e| e.status.to_string()).collect()
}

const FULL_LIFECYCLE: [&str; 6] =
    ["queued", "initiated", "ringing", "in-progress", "call-disconnected", "completed"];

#[tokio::test]
async fn a_call_runs_its_whole_lifecycle_and_posts_every_change_with_the_header() {
    let s = setup(|_| {}).await;

    let answer = s.client.start_call(&call("+919812345678")).await.expect("accepted");
    wait_until("completion", || s.sim.stats().final_statuses.get("completed") == Some(&1)).await;
    wait_until("six webhooks", || s.sim.stats().webhooks_delivered == 6).await;

    assert_eq!(answer.status.as_deref(), Some("queued"));
    let hooks = received(&s).await;
    assert_eq!(statuses(&hooks, &answer.execution_id), FULL_LIFECYCLE);
    for request in ours(&s).await {
        assert_eq!(request.headers.get("x-webhook-token").unwrap(), TOKEN);
    }
    let completed = hooks.last().unwrap();
    assert_eq!(completed.switchboard_call_id(), Some("c-1"));
    assert!(completed.duration_seconds().unwrap() > 0.0);
    assert!(completed.recording_url().unwrap().ends_with(&answer.execution_id));
    assert!(completed.transcript.is_some() && completed.total_cost.unwrap() > 0.0);
    let disconnected = &hooks[4];
    assert_eq!(
        disconnected.telephony_data.as_ref().unwrap().hangup_reason.as_deref(),
        Some("Call recipient hung up")
    );
    let fetched = s.client.get_execution(&answer.execution_id).await.unwrap();
    assert_eq!(fetched.status, ExecutionStatus::Known(BolnaStatus::Completed));
}

#[tokio::test]
async fn early_exits_end_without_a_conversation() {
    let s = setup(|_| {}).await;
    let cases = [
        ("+15550000001", "no-answer"),
        ("+15550000002", "busy"),
        ("+15550000003", "failed"),
        ("+15550000004", "balance-low"),
    ];
    let by_recipient =
        cases.iter().map(|(r, s)| (r.to_string(), CallFault::Outcome { status: s.to_string() })).collect();
    s.sim.set_faults(FaultUpdate { by_recipient: Some(by_recipient), ..FaultUpdate::default() });

    let mut ids = Vec::new();
    for (recipient, _) in cases {
        ids.push(s.client.start_call(&call(recipient)).await.unwrap().execution_id);
    }
    wait_until("four final statuses", || s.sim.stats().final_statuses.values().sum::<u64>() == 4).await;
    wait_until("deliveries", || s.sim.stats().webhooks_delivered == 4 + 4 + 4 + 2).await;

    let hooks = received(&s).await;
    for ((_, outcome), id) in cases.iter().zip(&ids) {
        let seen = statuses(&hooks, id);
        assert_eq!(seen.last().map(String::as_str), Some(*outcome), "{seen:?}");
        assert!(!seen.contains(&"in-progress".to_string()), "{outcome}: {seen:?}");
    }
    assert_eq!(statuses(&hooks, &ids[3]), ["queued", "balance-low"], "nothing dialled");
    let failed = hooks.iter().find(|e| e.status == ExecutionStatus::Known(BolnaStatus::Failed)).unwrap();
    assert!(failed.error_message.is_some());
    assert_eq!(s.sim.stats().lines_in_use, 0);
}

#[tokio::test]
async fn calls_above_the_account_limit_wait_in_queued_first_come_first_served() {
    let s = setup(|c| {
        c.account_concurrency = 2;
        c.hold_calls = true;
    })
    .await;

    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            s.client.start_call(&call(&format!("+1555000010{n}"))).await.expect("never refused").execution_id,
        );
    }
    wait_until("two live calls", || s.sim.stats().lines_in_use == 2).await;
    let status_of = |id: &str| s.sim.execution(id).unwrap().status;
    wait_until("both answered", || {
        status_of(&ids[0]) == ExecutionStatus::Known(BolnaStatus::InProgress)
            && status_of(&ids[1]) == ExecutionStatus::Known(BolnaStatus::InProgress)
    })
    .await;
    let me = s.client.user_me().await.unwrap();

    assert_eq!(me.concurrency.map(|c| (c.max, c.current)), Some((2, 2)));
    for id in &ids[2..] {
        assert_eq!(status_of(id), ExecutionStatus::Known(BolnaStatus::Queued));
    }

    s.client.get_execution(&ids[0]).await.unwrap();
    assert!(s.sim.hang_up_all() >= 2);
    wait_until("the third call starts", || status_of(&ids[2]) != ExecutionStatus::Known(BolnaStatus::Queued))
        .await;
    wait_until("the fourth call starts", || {
        status_of(&ids[3]) != ExecutionStatus::Known(BolnaStatus::Queued)
    })
    .await;
    assert_eq!(
        status_of(&ids[4]),
        ExecutionStatus::Known(BolnaStatus::Queued),
        "FIFO: the fifth still waits"
    );
    s.sim.hang_up_all();
    wait_until("the fifth call starts", || status_of(&ids[4]) != ExecutionStatus::Known(BolnaStatus::Queued))
        .await;
    s.sim.hang_up_all();
    wait_until("all complete", || s.sim.stats().final_statuses.get("completed") == Some(&5)).await;

    let stats = s.sim.stats();
    assert_eq!(stats.lines_high_water, 2, "never more lines than the account has");
    assert_eq!(stats.open_high_water, 5, "all five were accepted at once");
    assert!(stats.double_dials().is_empty());
}

#[tokio::test]
async fn stop_works_only_while_queued() {
    let s = setup(|c| {
        c.account_concurrency = 1;
        c.hold_calls = true;
    })
    .await;
    let live = s.client.start_call(&call("+15550000201")).await.unwrap().execution_id;
    let waiting = s.client.start_call(&call("+15550000202")).await.unwrap().execution_id;
    wait_until("the first is live", || {
        s.sim.execution(&live).unwrap().status == ExecutionStatus::Known(BolnaStatus::InProgress)
    })
    .await;

    let stopped = s.client.stop_call(&waiting).await.expect("queued calls can be stopped");
    let refused = s.client.stop_call(&live).await.unwrap_err();
    let unknown = s.client.stop_call("no-such-execution").await.unwrap_err();

    assert_eq!(stopped.status.as_deref(), Some("stopped"));
    wait_until("stopped", || {
        s.sim.execution(&waiting).unwrap().status == ExecutionStatus::Known(BolnaStatus::Stopped)
    })
    .await;
    assert_eq!(refused.status(), Some(400));
    assert_eq!(unknown.status(), Some(404));
    s.sim.hang_up_all();
    wait_until("the live call completes", || s.sim.stats().final_statuses.get("completed") == Some(&1)).await;
    assert_eq!(s.sim.stats().lines_high_water, 1, "the stopped call never took a line");
}

#[tokio::test]
async fn requests_are_validated_like_bolna() {
    let s = setup(|_| {}).await;
    let http = reqwest::Client::new();
    let post = |body: Value, key: Option<&str>| {
        let mut request = http.post(format!("{}/call", s.sim.base_url())).json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };

    let missing = post(json!({"agent_id": "a"}), Some(KEY)).await.unwrap();
    assert_eq!(missing.status(), 400);
    assert_eq!(
        missing.json::<Value>().await.unwrap(),
        json!({"error": 1001, "message": "recipient_phone_number is required"})
    );
    for body in [
        json!({"agent_id": "a", "recipient_phone_number": "98123"}),
        json!({"recipient_phone_number": "+919812345678"}),
        json!({"agent_id": "a", "recipient_phone_number": "+919812345678", "user_data": [1]}),
    ] {
        assert_eq!(post(body, Some(KEY)).await.unwrap().status(), 400);
    }
    let no_key =
        post(json!({"agent_id": "a", "recipient_phone_number": "+919812345678"}), None).await.unwrap();
    assert_eq!(no_key.status(), 401);
    assert_eq!(no_key.json::<Value>().await.unwrap(), json!({"error": 401, "message": "Access denied"}));
    let wrong_key = post(json!({"agent_id": "a", "recipient_phone_number": "+919812345678"}), Some("nope"))
        .await
        .unwrap();
    assert_eq!(wrong_key.status(), 403);
    assert_eq!(s.sim.stats().accepted, 0);
}

#[tokio::test]
async fn the_agent_listing_pages_and_enforces_its_window() {
    let s = setup(|c| c.hold_calls = true).await;
    for n in 0..3 {
        s.client.start_call(&call(&format!("+1555000030{n}"))).await.unwrap();
    }
    let mut other = call("+15550000399");
    other.agent_id = "agent-2".into();
    s.client.start_call(&other).await.unwrap();
    let now = chrono::Utc::now();

    let first = s
        .client
        .list_agent_executions(
            "agent-1",
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
            1,
            2,
            None,
        )
        .await
        .unwrap();
    let second = s
        .client
        .list_agent_executions(
            "agent-1",
            now - chrono::TimeDelta::hours(1),
            now + chrono::TimeDelta::hours(1),
            2,
            2,
            None,
        )
        .await
        .unwrap();
    let all = s
        .client
        .agent_executions_between(
            "agent-1",
            now - chrono::TimeDelta::days(10),
            now + chrono::TimeDelta::hours(1),
            None,
        )
        .await
        .unwrap();

    assert_eq!((first.total, first.has_more, first.data.len()), (3, true, 2));
    assert_eq!((second.has_more, second.data.len()), (false, 1));
    assert_eq!(all.len(), 3);
    assert!(all.iter().all(|e| e.context_details.is_none()), "listing items are trimmed");
    let raw = reqwest::Client::new()
        .get(format!(
            "{}/v2/agent/agent-1/executions?from=2026-01-01T00:00:00Z&to=2026-01-09T00:00:00Z",
            s.sim.base_url()
        ))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400, "more than 7 days");
    s.sim.hang_up_all();
}

#[tokio::test]
async fn rate_limits_and_server_errors_start_nothing() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![
            CallFault::RateLimited { retry_after_seconds: Some(0.05) },
            CallFault::ServerError { status: 500 },
        ]),
        ..FaultUpdate::default()
    });

    let refused = s.client.start_call(&call("+15550000401")).await.unwrap_err();

    // The 429 was retried (the client's rule), and the retry hit the 500.
    assert_eq!(refused.status(), Some(500));
    assert_eq!(refused.start_outcome(), StartOutcome::Unknown, "a 5xx is unknown to the caller");
    let stats = s.sim.stats();
    assert_eq!((stats.call_requests, stats.accepted), (2, 0), "nothing was started by either");
}

#[tokio::test]
async fn accepted_then_502_runs_the_call_although_the_caller_saw_an_error() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::AcceptThenError { status: 502 }]),
        ..FaultUpdate::default()
    });

    let error = s.client.start_call(&call("+15550000501")).await.unwrap_err();

    assert_eq!(error.start_outcome(), StartOutcome::Unknown);
    assert_eq!(s.sim.stats().accepted, 1, "the call was accepted and runs");
    wait_until("it completes", || s.sim.stats().final_statuses.get("completed") == Some(&1)).await;
    assert_eq!(s.sim.stats().call_requests, 1, "the client did not resend it");
}

#[tokio::test]
async fn accepted_then_slow_answers_time_out_at_the_caller_but_the_call_runs() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::AcceptThenDelay { delay_ms: 1_000 }]),
        ..FaultUpdate::default()
    });

    let error = s.client.start_call(&call("+15550000601")).await.unwrap_err();

    assert!(matches!(error, BolnaError::Timeout));
    assert_eq!(s.sim.stats().accepted, 1);
    assert_eq!(s.sim.stats().call_requests, 1);
}

#[tokio::test]
async fn added_latency_delays_the_answer() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        next_calls: Some(vec![CallFault::Latency { delay_ms: 150 }]),
        ..FaultUpdate::default()
    });
    let started = Instant::now();

    s.client.start_call(&call("+15550000701")).await.unwrap();

    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn bolna_down_answers_503_to_every_call_until_it_is_back() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate { api_down: Some(true), ..FaultUpdate::default() });
    let down = s.client.start_call(&call("+15550000801")).await.unwrap_err();
    s.sim.set_faults(FaultUpdate { api_down: Some(false), ..FaultUpdate::default() });
    let up = s.client.start_call(&call("+15550000801")).await;

    assert_eq!(down.status(), Some(503));
    assert!(up.is_ok());
    assert_eq!(s.sim.stats().accepted, 1);
}

#[tokio::test]
async fn duplicate_webhooks_are_sent_twice() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        webhooks: Some(WebhookFaults { duplicate_probability: 1.0, ..WebhookFaults::default() }),
        ..FaultUpdate::default()
    });

    let id = s.client.start_call(&call("+15550000901")).await.unwrap().execution_id;
    wait_until("twelve deliveries", || s.sim.stats().webhooks_delivered == 12).await;

    let seen = statuses(&received(&s).await, &id);
    let expected: Vec<String> = FULL_LIFECYCLE.iter().flat_map(|s| [s.to_string(), s.to_string()]).collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn out_of_order_webhooks_arrive_after_their_successor() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        webhooks: Some(WebhookFaults { out_of_order_probability: 1.0, ..WebhookFaults::default() }),
        ..FaultUpdate::default()
    });

    let id = s.client.start_call(&call("+15550001001")).await.unwrap().execution_id;
    wait_until("six deliveries", || s.sim.stats().webhooks_delivered == 6).await;

    let seen = statuses(&received(&s).await, &id);
    assert_ne!(seen, FULL_LIFECYCLE, "order changed");
    let mut sorted = seen.clone();
    sorted.sort();
    let mut expected: Vec<String> = FULL_LIFECYCLE.iter().map(|s| s.to_string()).collect();
    expected.sort();
    assert_eq!(sorted, expected, "nothing lost");
    assert_eq!(seen[0], "initiated", "queued was held back behind initiated");
}

#[tokio::test]
async fn dropped_webhooks_never_arrive() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate {
        webhooks: Some(WebhookFaults { drop_probability: 1.0, ..WebhookFaults::default() }),
        ..FaultUpdate::default()
    });

    s.client.start_call(&call("+15550001101")).await.unwrap();
    wait_until("completion", || s.sim.stats().final_statuses.get("completed") == Some(&1)).await;
    wait_until("six drops", || s.sim.stats().webhooks_dropped == 6).await;

    assert!(ours(&s).await.is_empty());
}

#[tokio::test]
async fn webhooks_are_retried_through_an_outage_and_a_failing_receiver() {
    let s = setup(|_| {}).await;
    s.sim.set_faults(FaultUpdate { webhook_outage_ms: Some(300), ..FaultUpdate::default() });
    let failing = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&failing)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&failing).await;

    let id = s.client.start_call(&call("+15550001201")).await.unwrap().execution_id;
    wait_until("delivered after the outage", || s.sim.stats().webhooks_delivered == 6).await;
    let outage_failures = s.sim.stats().webhooks.iter().filter(|w| w.answer.is_none()).count();
    s.sim.set_webhook(WebhookTarget { url: format!("{}/hook", failing.uri()), header: None });
    let second = s.client.start_call(&call("+15550001202")).await.unwrap().execution_id;
    wait_until("delivered through 503s", || s.sim.stats().webhooks_delivered == 12).await;

    assert!(outage_failures >= 1, "attempts failed during the outage");
    assert_eq!(statuses(&received(&s).await, &id), FULL_LIFECYCLE, "order kept through retries");
    let answers: Vec<Option<u16>> =
        s.sim.stats().webhooks.iter().filter(|w| w.execution_id == second).map(|w| w.answer).collect();
    assert_eq!(&answers[..3], [Some(503), Some(503), Some(200)]);
    assert_eq!(s.sim.stats().webhooks_given_up, 0);
}

#[tokio::test]
async fn double_dials_are_visible_per_recipient() {
    let s = setup(|_| {}).await;
    s.client.start_call(&call("+15550001301")).await.unwrap();
    s.client.start_call(&call("+15550001301")).await.unwrap();
    s.client.start_call(&call("+15550001302")).await.unwrap();

    assert_eq!(s.sim.stats().double_dials(), [("+15550001301", 2)]);
}

#[tokio::test]
async fn bolna_can_go_away_refusing_connections_and_come_back_with_its_executions() {
    let s = setup(|c| c.hold_calls = true).await;
    let before = s.client.start_call(&call("+15550001401")).await.unwrap().execution_id;

    s.sim.go_down().await;
    let refused = s.client.start_call(&call("+15550001402")).await.unwrap_err();
    s.sim.come_back().unwrap();
    let after = s.client.get_execution(&before).await.unwrap();

    assert!(matches!(refused, BolnaError::Connect(_)), "{refused}");
    assert_eq!(refused.start_outcome(), StartOutcome::NotStarted);
    assert_eq!(after.id, before, "executions survive the outage");
    assert!(s.client.start_call(&call("+15550001403")).await.is_ok());
    s.sim.hang_up_all();
}

#[tokio::test]
async fn post_call_over_the_rate_limit_is_429_with_retry_after_until_the_window_moves_on() {
    let s = setup(|c| c.rate_limit = Some(bolna_sim::RateLimit { calls: 3, window_ms: 1_000 })).await;
    let http = reqwest::Client::new();
    let send = |n: u32| {
        http.post(format!("{}/call", s.sim.base_url()))
            .bearer_auth(KEY)
            .json(&json!({"agent_id": "agent-1", "recipient_phone_number": format!("+1555000030{n}")}))
            .send()
    };
    let mut codes = Vec::new();
    for n in 0..3 {
        codes.push(send(n).await.unwrap().status().as_u16());
    }
    let refused = send(3).await.unwrap();
    assert_eq!(codes, [200, 200, 200]);
    assert_eq!(refused.status().as_u16(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(s.sim.stats().rate_limited, 1);
    assert_eq!(s.sim.stats().accepted, 3);
    tokio::time::sleep(Duration::from_millis(1_050)).await;
    assert_eq!(send(4).await.unwrap().status().as_u16(), 200, "the window moved on");
}

#[tokio::test]
async fn outside_the_agents_hours_a_call_is_rescheduled_takes_no_line_and_stops_on_request() {
    use chrono::Timelike;
    // Open for two hours from now in London; an Indian number is five and a half hours ahead.
    let hour = chrono::Utc::now().hour();
    let s = setup(|c| {
        c.guardrails = Some(bolna_sim::CallingHours { start_hour: hour, end_hour: (hour + 2).min(24) });
        c.hold_calls = true;
    })
    .await;
    let deferred = s.client.start_call(&call("+919812300002")).await.unwrap().execution_id;
    let now = s.client.start_call(&call("+447700900002")).await.unwrap().execution_id;
    wait_until("rescheduled", || {
        s.sim.execution(&deferred).unwrap().status == ExecutionStatus::Known(BolnaStatus::Rescheduled)
    })
    .await;
    wait_until("the other is live", || {
        s.sim.execution(&now).unwrap().status == ExecutionStatus::Known(BolnaStatus::InProgress)
    })
    .await;
    assert_eq!(s.sim.stats().lines_in_use, 1, "a rescheduled call holds no line");

    s.client.stop_call(&deferred).await.expect("a rescheduled call can be stopped");
    wait_until("stopped", || {
        s.sim.execution(&deferred).unwrap().status == ExecutionStatus::Known(BolnaStatus::Stopped)
    })
    .await;
    let stats = s.sim.stats();
    assert_eq!((stats.rescheduled, stats.dialled), (1, 1));
    s.sim.hang_up_all();
}
