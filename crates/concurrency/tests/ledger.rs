//! The ledger against a real PostgreSQL, raced through several pools (as several instances would).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use concurrency::{
    release_call_slot, release_call_slot_by_execution_id, reserve, sync_account_pool, sync_send_tokens,
    update_active_call_with_execution_id, CallId, CallType, Reservation, SlotPolicy, UserId,
};
use futures::future::join_all;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

const LEASE: Duration = Duration::from_secs(600);

/// Send tokens: more than any test here starts.
const TOKENS: u32 = 1_000;

async fn database() -> String {
    let url =
        local_postgres::fresh_test_database(env!("CARGO_TARGET_TMPDIR"), &schema::MIGRATOR).await.unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sync_send_tokens(&mut conn, TOKENS).await.unwrap();
    url
}

async fn user(pool: &PgPool, direct: i32, campaign: i32) -> UserId {
    let id = UserId::new();
    sqlx::query(
        "INSERT INTO users (id, name, direct_call_limit, campaign_call_limit) VALUES ($1, 'u', $2, $3)",
    )
    .bind(id.as_uuid())
    .bind(direct)
    .bind(campaign)
    .execute(pool)
    .await
    .unwrap();
    id
}

async fn call(pool: &PgPool, user: UserId, call_type: CallType) -> CallId {
    let id = CallId::new();
    sqlx::query("INSERT INTO calls (id, user_id, call_type, agent_id, recipient_phone_number, status) VALUES ($1, $2, $3, 'a', '+15550001111', 'queued')")
        .bind(id.as_uuid())
        .bind(user.as_uuid())
        .bind(call_type.as_str())
        .execute(pool)
        .await
        .unwrap();
    id
}

/// Reserves in its own committed transaction, as an admission would.
async fn try_reserve(
    pool: &PgPool,
    user: UserId,
    call_type: CallType,
    call: CallId,
    lines: u32,
) -> Reservation {
    let mut tx = pool.begin().await.unwrap();
    let policy = SlotPolicy {
        account_lines: lines,
        send_tokens: TOKENS,
        send_window: Duration::from_secs(60),
        lease: LEASE,
        calls_per_number_per_day: 0,
    };
    let answer = reserve(&mut tx, user, call_type, call, &policy).await.unwrap();
    tx.commit().await.unwrap();
    answer
}

async fn instances(url: &str, n: usize) -> Vec<PgPool> {
    let mut pools = Vec::new();
    for _ in 0..n {
        pools.push(PgPoolOptions::new().max_connections(8).connect(url).await.unwrap());
    }
    pools
}

#[tokio::test]
async fn concurrent_reservations_never_exceed_the_users_limit_per_type() {
    let url = database().await;
    let pools = instances(&url, 3).await;
    let pool = &pools[0];
    sync_account_pool(&mut pool.acquire().await.unwrap(), 100).await.unwrap();
    let alice = user(pool, 2, 5).await;
    let mut calls = Vec::new();
    for n in 0..60 {
        let call_type = if n % 2 == 0 { CallType::Direct } else { CallType::Campaign };
        calls.push((call(pool, alice, call_type).await, call_type));
    }

    let answers = join_all(
        calls
            .iter()
            .enumerate()
            .map(|(n, (id, call_type))| try_reserve(&pools[n % 3], alice, *call_type, *id, 100)),
    )
    .await;

    let reserved = |t: CallType| {
        calls.iter().zip(&answers).filter(|((_, ct), a)| *ct == t && **a == Reservation::Reserved).count()
    };
    assert_eq!(reserved(CallType::Direct), 2);
    assert_eq!(reserved(CallType::Campaign), 5);
    let held: i64 = sqlx::query_scalar("SELECT count(*) FROM active_calls").fetch_one(pool).await.unwrap();
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!((held, lines), (7, 7), "one account line per held slot");
}

#[tokio::test]
async fn the_account_wide_limit_holds_across_users_and_instances() {
    let url = database().await;
    let pools = instances(&url, 2).await;
    let pool = &pools[0];
    sync_account_pool(&mut pool.acquire().await.unwrap(), 4).await.unwrap();
    let mut calls = Vec::new();
    for _ in 0..10 {
        let u = user(pool, 3, 0).await;
        for _ in 0..3 {
            calls.push((u, call(pool, u, CallType::Direct).await));
        }
    }

    let answers = join_all(
        calls.iter().enumerate().map(|(n, (u, c))| try_reserve(&pools[n % 2], *u, CallType::Direct, *c, 4)),
    )
    .await;

    assert_eq!(answers.iter().filter(|a| **a == Reservation::Reserved).count(), 4);
    assert!(answers.iter().all(|a| matches!(a, Reservation::Reserved | Reservation::AccountLimitReached)));
}

#[tokio::test]
async fn a_full_user_is_told_its_usage_and_nothing_is_left_behind() {
    let url = database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    sync_account_pool(&mut pool.acquire().await.unwrap(), 10).await.unwrap();
    let bob = user(&pool, 1, 0).await;
    let first = call(&pool, bob, CallType::Direct).await;
    let second = call(&pool, bob, CallType::Direct).await;

    assert_eq!(try_reserve(&pool, bob, CallType::Direct, first, 10).await, Reservation::Reserved);
    assert_eq!(
        try_reserve(&pool, bob, CallType::Direct, first, 10).await,
        Reservation::Reserved,
        "idempotent"
    );
    assert_eq!(
        try_reserve(&pool, bob, CallType::Direct, second, 10).await,
        Reservation::UserLimitReached { active: 1, limit: 1 }
    );
    assert_eq!(
        try_reserve(&pool, bob, CallType::Campaign, second, 10).await,
        Reservation::UserLimitReached { active: 0, limit: 0 }
    );
    let lines: i64 = sqlx::query_scalar("SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(lines, 1);
}

#[tokio::test]
async fn releases_are_idempotent_by_call_id_and_by_execution_id() {
    let url = database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    sync_account_pool(&mut pool.acquire().await.unwrap(), 10).await.unwrap();
    let carol = user(&pool, 2, 0).await;
    let one = call(&pool, carol, CallType::Direct).await;
    let two = call(&pool, carol, CallType::Direct).await;
    try_reserve(&pool, carol, CallType::Direct, one, 10).await;
    try_reserve(&pool, carol, CallType::Direct, two, 10).await;
    let mut conn = pool.acquire().await.unwrap();
    assert!(update_active_call_with_execution_id(&mut conn, two, "exec-2").await.unwrap());

    let first = release_call_slot(&mut conn, one, "test").await.unwrap();
    let again = release_call_slot(&mut conn, one, "test").await.unwrap();
    let by_execution = release_call_slot_by_execution_id(&mut conn, "exec-2", "test").await.unwrap();
    let by_execution_again = release_call_slot_by_execution_id(&mut conn, "exec-2", "test").await.unwrap();

    assert_eq!(first.map(|r| (r.call_id, r.user_id)), Some((one, carol)));
    assert!(again.is_none());
    assert_eq!(by_execution.and_then(|r| r.bolna_execution_id), Some("exec-2".to_owned()));
    assert!(by_execution_again.is_none());
    let (held, lines): (i64, i64) = sqlx::query_as("SELECT (SELECT count(*) FROM active_calls), (SELECT count(*) FROM account_slots WHERE call_id IS NOT NULL)")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((held, lines), (0, 0));
}

#[tokio::test]
async fn execution_ids_are_unique_across_held_slots() {
    let url = database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    sync_account_pool(&mut pool.acquire().await.unwrap(), 10).await.unwrap();
    let dave = user(&pool, 2, 0).await;
    let one = call(&pool, dave, CallType::Direct).await;
    let two = call(&pool, dave, CallType::Direct).await;
    try_reserve(&pool, dave, CallType::Direct, one, 10).await;
    try_reserve(&pool, dave, CallType::Direct, two, 10).await;
    let mut conn = pool.acquire().await.unwrap();

    update_active_call_with_execution_id(&mut conn, one, "same").await.unwrap();
    let clash = update_active_call_with_execution_id(&mut conn, two, "same").await.unwrap_err();

    let constraint = clash.as_database_error().and_then(|e| e.constraint().map(str::to_owned));
    assert_eq!(constraint.as_deref(), Some("idx_active_calls_bolna_execution_id"));
}

#[tokio::test]
async fn shrinking_the_pool_keeps_lines_in_use_until_released() {
    let url = database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    sync_account_pool(&mut conn, 3).await.unwrap();
    let erin = user(&pool, 3, 0).await;
    for _ in 0..3 {
        let c = call(&pool, erin, CallType::Direct).await;
        try_reserve(&pool, erin, CallType::Direct, c, 3).await;
    }

    sync_account_pool(&mut conn, 1).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM account_slots").fetch_one(&pool).await.unwrap();
    let extra = call(&pool, user(&pool, 1, 0).await, CallType::Direct).await;
    let owner: UserId = sqlx::query_scalar::<_, uuid::Uuid>("SELECT user_id FROM calls WHERE id = $1")
        .bind(extra.as_uuid())
        .fetch_one(&pool)
        .await
        .unwrap()
        .into();

    assert_eq!(rows, 3, "lines in use are kept");
    assert_eq!(try_reserve(&pool, owner, CallType::Direct, extra, 1).await, Reservation::AccountLimitReached);
}

#[tokio::test]
async fn every_line_is_found_wherever_the_search_starts_and_a_freed_line_is_reused() {
    // Searches start at a random line and wrap around: fill a small pool many times over.
    let url = database().await;
    let pool = PgPool::connect(&url).await.unwrap();
    sync_account_pool(&mut pool.acquire().await.unwrap(), 5).await.unwrap();
    let owner = user(&pool, 100, 0).await;
    for round in 0..10 {
        let mut held = Vec::new();
        for _ in 0..5 {
            let c = call(&pool, owner, CallType::Direct).await;
            assert_eq!(
                try_reserve(&pool, owner, CallType::Direct, c, 5).await,
                Reservation::Reserved,
                "round {round}"
            );
            held.push(c);
        }
        let sixth = call(&pool, owner, CallType::Direct).await;
        assert_eq!(
            try_reserve(&pool, owner, CallType::Direct, sixth, 5).await,
            Reservation::AccountLimitReached
        );

        let mut conn = pool.acquire().await.unwrap();
        release_call_slot(&mut conn, held[round % 5], "test").await.unwrap();
        assert_eq!(try_reserve(&pool, owner, CallType::Direct, sixth, 5).await, Reservation::Reserved);
        let lines: Vec<i32> = sqlx::query_scalar(
            "SELECT slot_no FROM account_slots WHERE call_id IS NOT NULL ORDER BY slot_no",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(lines, [1, 2, 3, 4, 5], "every line in use, none twice");
        for c in held.iter().chain([&sixth]) {
            release_call_slot(&mut conn, *c, "test").await.unwrap();
        }
    }
}
