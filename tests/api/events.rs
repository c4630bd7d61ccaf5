//! `GET /v1/events` over real HTTP: streaming across instances, exact replay, isolation, tickets,
//! heartbeats, and a slow client's bounded buffer.

use std::sync::Arc;
use std::time::Duration;

use call_service::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    spawn_app, spawn_app_with, spawn_instance, spawn_instance_with_clock, TestApp, TestUser,
};
use crate::sse::{Event, EventStream, Record};

const WAIT: Duration = Duration::from_secs(15);

fn is_status(event: &Event, call_id: &str, status: &str) -> bool {
    event.event == "call.updated" && event.data["id"] == call_id && event.data["status"] == status
}

fn ids(events: &[Event]) -> Vec<i64> {
    events.iter().map(|e| e.id.expect("every event has an id")).collect()
}

/// One call's changes are made one transaction after another, so their ids rise with the stream.
fn assert_increasing(events: &[Event]) {
    let ids = ids(events);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids {ids:?}");
}

async fn start_and_finish(app: &TestApp, user: &TestUser, recipient: &str) -> String {
    let call = app.start_call(user, recipient, 201).await;
    let id = call["id"].as_str().unwrap().to_owned();
    app.wait_for_status(user, &id, "completed").await;
    id
}

#[tokio::test]
async fn a_change_applied_on_one_instance_is_streamed_by_the_other() {
    let first = spawn_app().await;
    let second = spawn_instance(&first.database_url, first.sim.clone(), |_| {}).await;
    first.route_webhooks_here();
    let user = first.create_user(2, 2).await;
    let mut stream = second.open_events(&user, None).await;

    let call = first.start_call(&user, "+14155550101", 201).await;
    let call_id = call["id"].as_str().unwrap();
    let events = stream.events_until(WAIT, |e| is_status(e, call_id, "completed")).await;

    let last = events.last().unwrap();
    assert_eq!(last.data["bolna_execution_id"], call["bolna_execution_id"]);
    assert_eq!(last.data["user_id"], user.id.as_str());
    assert!(events.iter().all(|e| e.event == "call.updated" && e.data["id"] == call_id), "{events:#?}");
    assert!(events.len() >= 3, "the call's status changes arrive one by one: {events:#?}");
    assert_increasing(&events);
    // The webhooks were applied by the first instance only: the second read them from the database.
    let seen: Vec<&str> = events.iter().map(|e| e.data["status"].as_str().unwrap()).collect();
    assert!(seen.contains(&"in-progress"), "{seen:?}");
}

#[tokio::test]
async fn a_reconnect_with_last_event_id_receives_exactly_the_missed_events() {
    let app = spawn_app().await;
    let user = app.create_user(2, 2).await;
    let mut whole = app.open_events(&user, None).await;
    let mut interrupted = app.open_events(&user, None).await;

    let first_call = app.start_call(&user, "+14155550102", 201).await;
    let first_id = first_call["id"].as_str().unwrap().to_owned();
    let seen_before_drop = interrupted.next_event(WAIT).await.expect("a first event");
    drop(interrupted);
    app.wait_for_status(&user, &first_id, "completed").await;
    let second_id = start_and_finish(&app, &user, "+14155550103").await;

    let everything =
        whole.events_until(WAIT, |e| e.event == "call.ended" && e.data["id"] == second_id.as_str()).await;
    assert_eq!(everything[0], seen_before_drop, "both streams saw the same first event");

    let mut resumed = app.open_events(&user, seen_before_drop.id).await;
    let replayed = resumed.events_until_quiet(Duration::from_millis(1500)).await;
    assert_eq!(ids(&replayed), ids(&everything[1..]), "exactly the missed events, in order");
    let kinds = |events: &[Event]| events.iter().map(|e| e.data["status"].clone()).collect::<Vec<Value>>();
    assert_eq!(kinds(&replayed), kinds(&everything[1..]));

    // A replay that is already current sends nothing more.
    let last = everything.last().unwrap().id;
    let mut current = app.open_events(&user, last).await;
    assert!(current.next_event(Duration::from_millis(800)).await.is_none());
}

#[tokio::test]
async fn another_users_events_never_appear() {
    let app = spawn_app().await;
    let alice = app.create_user(2, 2).await;
    let bob = app.create_user(2, 2).await;
    let mut alice_stream = app.open_events(&alice, None).await;
    let mut bob_stream = app.open_events(&bob, None).await;

    let alice_call = start_and_finish(&app, &alice, "+14155550104").await;
    let bob_call = start_and_finish(&app, &bob, "+14155550105").await;

    let alice_events = alice_stream.events_until(WAIT, |e| is_status(e, &alice_call, "completed")).await;
    let alice_more = alice_stream.events_until_quiet(Duration::from_millis(800)).await;
    let bob_events = bob_stream.events_until(WAIT, |e| is_status(e, &bob_call, "completed")).await;
    for event in alice_events.iter().chain(&alice_more) {
        assert_eq!(event.data["user_id"], alice.id.as_str(), "{event:?}");
        assert_eq!(event.data["id"], alice_call.as_str());
    }
    for event in &bob_events {
        assert_eq!(event.data["user_id"], bob.id.as_str(), "{event:?}");
    }

    // Bob's event id used as Alice's Last-Event-ID replays nothing of Bob's: it reads as unknown.
    let mut probe = app.open_events(&alice, bob_events[0].id).await;
    let first = probe.next_event(WAIT).await.unwrap();
    assert_eq!(first.event, "reset");
    assert_eq!(first.data["reason"], "events_expired");
    assert!(probe.next_event(Duration::from_millis(800)).await.is_none(), "nothing of Bob's follows");
}

#[tokio::test]
async fn a_ticket_opens_one_stream_once_and_expires_after_its_lifetime() {
    let base = spawn_app().await;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let app = spawn_instance_with_clock(&base.database_url, base.sim.clone(), |_| {}, clock.clone()).await;
    let user = app.create_user(2, 2).await;

    let ticket = app.event_ticket(&user).await;
    assert!(ticket.starts_with("sbt_"));
    let url = app.url(&format!("/v1/events?ticket={ticket}"));
    let mut stream = EventStream::new(app.client.get(&url).send().await.unwrap());
    let call = start_and_finish(&app, &user, "+14155550106").await;
    stream.events_until(WAIT, |e| is_status(e, &call, "completed")).await;

    let again = app.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "a ticket works once");
    assert_eq!(again.headers()["content-type"], "application/problem+json");

    let late = app.event_ticket(&user).await;
    clock.advance(chrono::TimeDelta::seconds(61));
    let expired = app.client.get(app.url(&format!("/v1/events?ticket={late}"))).send().await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED, "a ticket expires after 60 s");

    let within = app.event_ticket(&user).await;
    clock.advance(chrono::TimeDelta::seconds(59));
    let ok = app.client.get(app.url(&format!("/v1/events?ticket={within}"))).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK, "still valid at 59 s");
}

#[tokio::test]
async fn streams_refuse_missing_or_bad_credentials_and_bad_input() {
    let app = spawn_app().await;
    let user = app.create_user(1, 1).await;
    let cases = [
        app.client.get(app.url("/v1/events")),
        app.client.get(app.url("/v1/events")).bearer_auth("sb_not_a_real_key"),
        app.client.get(app.url("/v1/events?ticket=sbt_forged")),
        app.client.post(app.url("/v1/events/tickets")),
    ];
    for request in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
    let bad_id =
        app.client.get(app.url("/v1/events")).bearer_auth(&user.key).header("Last-Event-ID", "abc").send();
    let bad_id = bad_id.await.unwrap();
    assert_eq!(bad_id.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_param =
        app.client.get(app.url("/v1/events?since=1")).bearer_auth(&user.key).send().await.unwrap();
    assert_eq!(unknown_param.status(), StatusCode::BAD_REQUEST);
    assert_eq!(unknown_param.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn an_idle_stream_sends_heartbeats_and_a_gone_event_id_gets_reset_then_live_events() {
    let app = spawn_app_with(|s| s.events.heartbeat_seconds = 1, |_| {}).await;
    let user = app.create_user(1, 1).await;
    let mut stream = app.open_events(&user, Some(987_654_321)).await;
    match stream.next_record(WAIT).await {
        Some(Record::Comment(text)) => assert_eq!(text, "connected"),
        other => panic!("expected the opening comment, got {other:?}"),
    }
    let reset = stream.next_event(WAIT).await.unwrap();
    assert_eq!((reset.event.as_str(), reset.data["reason"].as_str()), ("reset", Some("events_expired")));
    let started = std::time::Instant::now();
    assert_eq!(stream.next_record(Duration::from_secs(3)).await, Some(Record::Comment("heartbeat".into())));
    assert!(started.elapsed() >= Duration::from_millis(500));
    let call = start_and_finish(&app, &user, "+14155550107").await;
    stream.events_until(WAIT, |e| is_status(e, &call, "completed")).await;
}

#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off_with_a_reset_and_memory_stays_bounded() {
    let app = spawn_app_with(|s| s.events.client_buffer = 8, |_| {}).await;
    let user = app.create_user(1, 1).await;
    let call = start_and_finish(&app, &user, "+14155550108").await;

    // A client with a tiny receive window that sends its request and then does not read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let address = app.address.trim_start_matches("http://").parse().unwrap();
    let mut connection = socket.connect(address).await.unwrap();
    let request = format!(
        "GET /v1/events HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        user.key
    );
    connection.write_all(request.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // 20,000 changes of the user's call (about 30 MB of events), far more than the socket holds.
    sqlx::query(
        "INSERT INTO events (user_id, kind, subject_id, status, payload)
         SELECT $1::uuid, 'call.updated', $2::uuid, 'completed',
                (SELECT payload FROM events WHERE subject_id = $2::uuid ORDER BY id DESC LIMIT 1)
         FROM generate_series(1, 20000)",
    )
    .bind(&user.id)
    .bind(&call)
    .execute(&app.pool)
    .await
    .unwrap();
    // The hub gives up on the stream once its buffer is full: wait for that, not for a fixed time.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        // A request may fail while the server is busy writing to the stalled socket: ask again.
        let metrics = match app.client.get(app.url("/metrics")).send().await {
            Ok(response) => response.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if metrics.contains("switchboard_event_resets_total{reason=\"client_too_slow\"} 1") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the slow client was never cut off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Now read all of it: the stream carries what was buffered, then `reset`, then it ends.
    let mut received = Vec::new();
    let read = tokio::time::timeout(WAIT, connection.read_to_end(&mut received)).await;
    assert!(read.is_ok(), "the server closed the stream");
    let text = String::from_utf8_lossy(&received);
    let events = text.matches("event: call.updated").count();
    assert!(events < 20_000, "the slow client was cut off, not sent everything ({events})");
    let tail = &text[text.len().saturating_sub(300)..];
    let last_event = &text[text.rfind("event: ").unwrap()..];
    assert!(
        last_event.starts_with("event: reset\ndata: {\"reason\":\"client_too_slow\"}\n\n"),
        "the last event is a reset: …{tail}"
    );
    assert!(text.ends_with("0\r\n\r\n"), "then the chunked body ends: …{tail}");

    // A new connection: the pooled one may be the one the server was busy on while polling.
    let metrics = reqwest::Client::new().get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("switchboard_event_resets_total{reason=\"client_too_slow\"} 1"), "{metrics}");
    // A fresh stream works normally afterwards.
    let mut fresh = app.open_events(&user, None).await;
    assert!(matches!(fresh.next_record(WAIT).await, Some(Record::Comment(_))));
}

#[tokio::test]
async fn cors_allows_configured_origins_on_the_stream() {
    let app =
        spawn_app_with(|s| s.http.cors_allowed_origins = vec!["https://app.example.com".into()], |_| {})
            .await;
    let user = app.create_user(1, 1).await;
    let response = app
        .client
        .get(app.url("/v1/events"))
        .bearer_auth(&user.key)
        .header("Origin", "https://app.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["access-control-allow-origin"], "https://app.example.com");
    let ticket = app
        .client
        .post(app.url("/v1/events/tickets"))
        .bearer_auth(&user.key)
        .header("Origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(ticket.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_event_whose_transaction_commits_late_is_streamed_before_the_later_ones_not_skipped() {
    let app = spawn_app().await;
    let user = app.create_user(2, 2).await;
    let call = start_and_finish(&app, &user, "+14155550777").await;
    let mut stream = app.open_events(&user, None).await;
    while stream.next_event(Duration::from_millis(500)).await.is_some() {}
    let copy_of_the_last_event = "INSERT INTO events (user_id, kind, subject_id, status, payload)
         SELECT $1::uuid, 'call.updated', $2::uuid, 'completed',
                (SELECT payload FROM events WHERE subject_id = $2::uuid ORDER BY id DESC LIMIT 1)
         RETURNING id";

    // A transaction takes an event id and stays open; a later one takes a larger id and commits.
    let mut late = app.pool.begin().await.unwrap();
    let early_id: i64 = sqlx::query_scalar(copy_of_the_last_event)
        .bind(&user.id)
        .bind(&call)
        .fetch_one(&mut *late)
        .await
        .unwrap();
    let later_id: i64 = sqlx::query_scalar(copy_of_the_last_event)
        .bind(&user.id)
        .bind(&call)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(early_id < later_id);

    // Streaming the committed later event now would move the reader past the open one for ever.
    let held = stream.next_event(Duration::from_secs(1)).await;
    assert!(held.is_none(), "streamed while an older transaction was still open: {held:?}");
    late.commit().await.unwrap();

    let first = stream.next_event(WAIT).await.expect("the late event");
    let second = stream.next_event(WAIT).await.expect("the later event");
    assert_eq!((first.id, second.id), (Some(early_id), Some(later_id)), "in commit-safe order, none skipped");
}
