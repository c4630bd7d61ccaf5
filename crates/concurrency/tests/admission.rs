//! Admission raced directly at the ledger: concurrent batches through several pools (as several
//! instances would), FIFO within and across batches, the account's lines, idempotency keys, the
//! do-not-call list, the circuit-open case, Bolna's rate limit (send tokens) raced from several
//! pools, and scheduled calls joining the queue at their time.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use concurrency::{
    admit_calls, enqueue_due_scheduled_calls, release_and_hand_over, send_tokens, start_queue_head,
    sync_account_pool, sync_send_tokens, CallId, CallToAdmit, CallType, QueueStart, SlotPolicy, UserId,
};
use futures::future::join_all;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use uuid::Uuid;

/// The inserted rows, as far as these tests look at them.
#[derive(Debug, Clone, sqlx::FromRow)]
struct Admitted {
    id: Uuid,
    user_id: Uuid,
    status: String,
}

/// Send tokens of every test but the rate limit's own: more than any test starts.
const TOKENS: u32 = 1_000;

fn policy(account_lines: u32) -> SlotPolicy {
    SlotPolicy {
        account_lines,
        send_tokens: TOKENS,
        send_window: Duration::from_secs(60),
        lease: Duration::from_secs(600),
        calls_per_number_per_day: 0,
    }
}

async fn database() -> String {
    let url =
        local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &schema::MIGRATOR).await.unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sync_send_tokens(&mut conn, TOKENS).await.unwrap();
    url
}

async fn instances(url: &str, n: usize) -> Vec<PgPool> {
    let mut pools = Vec::new();
    for _ in 0..n {
        pools.push(PgPoolOptions::new().max_connections(8).connect(url).await.unwrap());
    }
    pools
}

async fn user(pool: &PgPool, direct: i32) -> UserId {
    let id = UserId::new();
    sqlx::query(
        "INSERT INTO users (id, name, direct_call_limit, campaign_call_limit) VALUES ($1, 'u', $2, 0)",
    )
    .bind(id.as_uuid())
    .bind(direct)
    .execute(pool)
    .await
    .unwrap();
    id
}

fn new_call(user: UserId, n: usize, key: Option<&str>) -> CallToAdmit {
    CallToAdmit {
        id: CallId::new(),
        user_id: user,
        call_type: CallType::Direct,
        campaign_id: None,
        contact_id: None,
        agent_id: "agent".into(),
        recipient_phone_number: format!("+1555{n:07}"),
        from_phone_number: None,
        user_data: serde_json::json!({"n": n}),
        idempotency_key: key.map(str::to_owned),
        scheduled_at: None,
        request_fingerprint: vec![0xab, 0xcd],
    }
}

/// Admits one batch in its own committed transaction, as the batch worker does.
async fn admit(pool: &PgPool, calls: &[CallToAdmit], may_reserve: bool, lines: u32) -> Vec<Admitted> {
    let mut tx = pool.begin().await.unwrap();
    let admitted = admit_calls::<Admitted>(&mut tx, calls, may_reserve, &policy(lines)).await.unwrap();
    tx.commit().await.unwrap();
    admitted
}

async fn statuses(pool: &PgPool, user: UserId) -> Vec<String> {
    sqlx::query_scalar("SELECT status FROM calls WHERE user_id = $1 ORDER BY created_at, id")
        .bind(user.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn ledger_counts(pool: &PgPool) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM active_calls), (SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL)",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn concurrent_batches_across_users_and_instances_fill_each_limit_exactly() {
    let url = database().await;
    let pools = instances(&url, 3).await;
    sync_account_pool(&mut pools[0].acquire().await.unwrap(), 100).await.unwrap();
    let mut users = Vec::new();
    for n in 0..6 {
        users.push((user(&pools[0], 1 + n % 3).await, 1 + n % 3));
    }
    // 30 batches of 8 calls, each batch mixing users, all at once through three pools.
    let batches: Vec<Vec<CallToAdmit>> = (0..30)
        .map(|b| (0..8).map(|c| new_call(users[(b + c) % users.len()].0, b * 8 + c, None)).collect())
        .collect();

    let admitted =
        join_all(batches.iter().enumerate().map(|(b, batch)| admit(&pools[b % 3], batch, true, 100))).await;

    assert_eq!(admitted.iter().map(Vec::len).sum::<usize>(), 240, "every call inserted");
    let mut started: HashMap<Uuid, i32> = HashMap::new();
    for call in admitted.iter().flatten() {
        assert!(["initiating", "queued"].contains(&call.status.as_str()), "{call:?}");
        *started.entry(call.user_id).or_default() += i32::from(call.status == "initiating");
    }
    for (user, limit) in &users {
        assert_eq!(
            started.get(&user.as_uuid()).copied().unwrap_or(0),
            *limit,
            "user {user}: exactly its limit"
        );
    }
    let held: i32 = users.iter().map(|(_, limit)| limit).sum();
    assert_eq!(
        ledger_counts(&pools[0]).await,
        (i64::from(held), i64::from(held)),
        "a slot and a line per start"
    );
}

#[tokio::test]
async fn fifo_holds_within_a_batch_across_batches_and_when_a_slot_frees() {
    let url = database().await;
    let pool = &instances(&url, 1).await[0];
    sync_account_pool(&mut pool.acquire().await.unwrap(), 10).await.unwrap();
    let alice = user(pool, 2).await;

    let first = admit(
        pool,
        &[new_call(alice, 1, None), new_call(alice, 2, None), new_call(alice, 3, None)],
        true,
        10,
    )
    .await;
    let by_id: HashMap<Uuid, String> = first.iter().map(|c| (c.id, c.status.clone())).collect();
    let first_ids: Vec<Uuid> = statuses_ids(pool, alice).await;
    assert_eq!(
        first_ids.iter().map(|id| by_id[id].as_str()).collect::<Vec<_>>(),
        ["initiating", "initiating", "queued"],
        "the first two in batch order take the slots"
    );

    // A slot frees: the oldest waiting call takes it, not a newer one.
    let mut tx = pool.begin().await.unwrap();
    let handed =
        release_and_hand_over(&mut tx, CallId::from(first_ids[0]), "test", &policy(10)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(handed.next.map(|id| id.as_uuid()), Some(first_ids[2]), "the head of the queue");

    // The queue is empty again but both slots are held: a new call waits.
    admit(pool, &[new_call(alice, 4, None)], true, 10).await;
    // One slot frees without a hand-over (a re-queue would do this): a slot is free while a call
    // waits — the next new call must still queue behind it.
    let mut tx = pool.begin().await.unwrap();
    concurrency::release_call_slot(&mut tx, CallId::from(first_ids[1]), "test").await.unwrap();
    tx.commit().await.unwrap();
    let later = admit(pool, &[new_call(alice, 5, None)], true, 10).await;
    assert_eq!(later[0].status, "queued", "FIFO: a free slot does not let a newer call pass a waiting one");
    assert_eq!(statuses(pool, alice).await, ["initiating", "initiating", "initiating", "queued", "queued"]);
}

async fn statuses_ids(pool: &PgPool, user: UserId) -> Vec<Uuid> {
    sqlx::query_scalar("SELECT id FROM calls WHERE user_id = $1 ORDER BY created_at, id")
        .bind(user.as_uuid())
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_accounts_lines_cap_every_user_together_and_the_calls_without_a_line_queue() {
    let url = database().await;
    let pools = instances(&url, 2).await;
    sync_account_pool(&mut pools[0].acquire().await.unwrap(), 3).await.unwrap();
    let (bob, carol) = (user(&pools[0], 5).await, user(&pools[0], 5).await);
    let batches: Vec<Vec<CallToAdmit>> =
        (0..6).map(|b| vec![new_call(if b % 2 == 0 { bob } else { carol }, b, None)]).collect();

    let admitted =
        join_all(batches.iter().enumerate().map(|(b, batch)| admit(&pools[b % 2], batch, true, 3))).await;

    let started = admitted.iter().flatten().filter(|c| c.status == "initiating").count();
    assert_eq!(started, 3, "three lines, three calls: {admitted:?}");
    assert_eq!(ledger_counts(&pools[0]).await, (3, 3));
}

#[tokio::test]
async fn one_idempotency_key_makes_one_call_within_a_batch_and_across_racing_batches() {
    let url = database().await;
    let pools = instances(&url, 3).await;
    sync_account_pool(&mut pools[0].acquire().await.unwrap(), 10).await.unwrap();
    let dave = user(&pools[0], 5).await;
    let batches: Vec<Vec<CallToAdmit>> = (0..9)
        .map(|b| vec![new_call(dave, 100 + b, Some("same-key")), new_call(dave, 200 + b, Some("same-key"))])
        .collect();

    let admitted =
        join_all(batches.iter().enumerate().map(|(b, batch)| admit(&pools[b % 3], batch, true, 10))).await;

    assert_eq!(admitted.iter().map(Vec::len).sum::<usize>(), 1, "{admitted:?}");
    assert_eq!(statuses(&pools[0], dave).await, ["initiating"]);
    assert_eq!(ledger_counts(&pools[0]).await, (1, 1));
}

#[tokio::test]
async fn a_number_on_the_do_not_call_list_is_not_admitted_and_an_open_circuit_queues_everything() {
    let url = database().await;
    let pool = &instances(&url, 1).await[0];
    sync_account_pool(&mut pool.acquire().await.unwrap(), 10).await.unwrap();
    let erin = user(pool, 3).await;
    let listed = new_call(erin, 7, None);
    sqlx::query("INSERT INTO do_not_call (user_id, phone_number) VALUES ($1, $2)")
        .bind(erin.as_uuid())
        .bind(&listed.recipient_phone_number)
        .execute(pool)
        .await
        .unwrap();

    let admitted = admit(pool, &[listed, new_call(erin, 8, None)], true, 10).await;
    assert_eq!(admitted.len(), 1, "the listed number is not inserted");
    assert_eq!(admitted[0].status, "initiating");

    let held_back = admit(pool, &[new_call(erin, 9, None), new_call(erin, 10, None)], false, 10).await;
    assert!(held_back.iter().all(|c| c.status == "queued"), "circuit open: {held_back:?}");
    assert_eq!(ledger_counts(pool).await, (1, 1), "no slot taken while held back");
}

#[tokio::test]
async fn the_send_tokens_cap_starts_per_window_across_instances_and_free_again_after_it() {
    let url = database().await;
    let pools = instances(&url, 3).await;
    sync_account_pool(&mut pools[0].acquire().await.unwrap(), 100).await.unwrap();
    sync_send_tokens(&mut pools[0].acquire().await.unwrap(), 10).await.unwrap();
    let rate = SlotPolicy { send_tokens: 10, send_window: Duration::from_secs(2), ..policy(100) };
    let mut users = Vec::new();
    for _ in 0..4 {
        users.push(user(&pools[0], 20).await);
    }
    // 40 calls of four users, in batches of 4 through three pools at once: 10 tokens, 10 starts.
    let batches: Vec<Vec<CallToAdmit>> =
        (0..10).map(|b| (0..4).map(|c| new_call(users[c], b * 4 + c, None)).collect()).collect();
    let admitted = join_all(batches.iter().enumerate().map(|(b, batch)| {
        let pool = pools[b % 3].clone();
        async move {
            let mut tx = pool.begin().await.unwrap();
            let admitted = admit_calls::<Admitted>(&mut tx, batch, true, &rate).await.unwrap();
            tx.commit().await.unwrap();
            admitted
        }
    }))
    .await;
    let started = admitted.iter().flatten().filter(|c| c.status == "initiating").count();
    assert_eq!(started, 10, "one start per send token");
    let mut conn = pools[0].acquire().await.unwrap();
    let tokens = send_tokens(&mut conn, &rate).await.unwrap();
    assert_eq!(tokens.free, 0);
    let frees_at = tokens.next_free_at.expect("the first token frees a window after it was taken");

    // A queue head waits for a token, not for a slot: the rate limit says so.
    let waiting = users
        .iter()
        .find(|u| admitted.iter().flatten().any(|c| c.user_id == u.as_uuid() && c.status == "queued"))
        .copied()
        .unwrap();
    let mut tx = pools[1].begin().await.unwrap();
    assert_eq!(
        start_queue_head(&mut tx, waiting, CallType::Direct, &rate).await.unwrap(),
        QueueStart::RateLimitReached
    );
    tx.commit().await.unwrap();

    // Once the window has passed, the tokens are free again and the head starts.
    let wait = (frees_at - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(50);
    tokio::time::sleep(wait).await;
    let mut tx = pools[2].begin().await.unwrap();
    assert!(matches!(
        start_queue_head(&mut tx, waiting, CallType::Direct, &rate).await.unwrap(),
        QueueStart::Started(_)
    ));
    tx.commit().await.unwrap();
    assert_eq!(send_tokens(&mut conn, &rate).await.unwrap().free, 9);
}

#[tokio::test]
async fn a_scheduled_call_holds_nothing_until_its_time_then_queues_in_the_order_of_that_time() {
    let url = database().await;
    let pool = &instances(&url, 1).await[0];
    sync_account_pool(&mut pool.acquire().await.unwrap(), 10).await.unwrap();
    let fay = user(pool, 1).await;
    let at = chrono::DateTime::from_timestamp(chrono::Utc::now().timestamp() + 3600, 0).unwrap();
    let mut scheduled = new_call(fay, 1, None);
    scheduled.scheduled_at = Some(at);
    let busy = new_call(fay, 2, None);
    let admitted = admit(pool, &[scheduled.clone(), busy.clone()], true, 10).await;
    let status_of = |id: CallId| admitted.iter().find(|c| c.id == id.as_uuid()).map(|c| c.status.clone());
    assert_eq!(status_of(scheduled.id).as_deref(), Some("scheduled"));
    assert_eq!(status_of(busy.id).as_deref(), Some("initiating"), "the scheduled call did not take the slot");
    assert_eq!(ledger_counts(pool).await, (1, 1));

    // Not yet due: nothing moves.
    let mut conn = pool.acquire().await.unwrap();
    let early = enqueue_due_scheduled_calls(&mut conn, at - chrono::TimeDelta::seconds(1), 10).await.unwrap();
    assert_eq!((early.enqueued, early.next_due_at), (0, Some(at)));
    // A call queued after the scheduled time is behind it; one queued before is ahead.
    let before = admit(pool, &[new_call(fay, 3, None)], true, 10).await;
    assert_eq!(before[0].status, "queued");
    let due = enqueue_due_scheduled_calls(&mut conn, at, 10).await.unwrap();
    assert_eq!((due.enqueued, due.next_due_at), (1, None));
    let mut tx = pool.begin().await.unwrap();
    let handed = release_and_hand_over(&mut tx, busy.id, "test", &policy(10)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(handed.next.map(|id| id.as_uuid()), Some(before[0].id), "queued an hour earlier: first");
}
