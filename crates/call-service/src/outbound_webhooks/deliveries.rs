//! `webhook_deliveries` and their attempts: claiming due deliveries (`SKIP LOCKED`, a lease, a cap
//! per endpoint), recording an attempt's outcome, the delivery log, retry and replay, and pruning.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::UserId;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (`next_attempt_at`).
    Pending,
    /// An instance is sending it now.
    Sending,
    /// A 2xx answered it.
    Succeeded,
    /// Every attempt of the retry schedule failed (or its endpoint is gone).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "sending" => Some(Self::Sending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    pub const ALL: [DeliveryStatus; 4] = [Self::Pending, Self::Sending, Self::Succeeded, Self::Failed];
}

/// A delivery this instance now holds, with what it takes to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub endpoint_id: Uuid,
    pub message_id: i64,
    /// This attempt's number (1 for the first ever); also the claim's token.
    pub attempt: i32,
    /// Attempts since the delivery was armed, this one included: the retry schedule's place.
    pub schedule_step: i32,
    pub url: String,
    pub secret: Vec<u8>,
    pub previous_secret: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    pub body: String,
}

/// How one attempt went.
#[derive(Debug, Clone)]
pub struct AttemptOutcome {
    pub started_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
    /// The delivery's next state: `Succeeded`, `Failed`, or `Pending` with its next attempt time.
    pub next: DeliveryStatus,
    pub next_attempt_at: DateTime<Utc>,
}

/// What an attempt says of its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointVerdict {
    /// It answered 2xx: its failure history is cleared.
    Healthy,
    /// It failed this attempt; disable it if it has failed every attempt since `failing_for` ago.
    Failing { disable_after: Duration },
    /// It answered 410 Gone: disable it now.
    Gone,
}

/// Takes up to `limit` due deliveries of enabled endpoints, at most `per_endpoint` in flight per
/// endpoint across instances, and holds them for `lease` (then another instance may take them
/// again: a retry). Oldest due first.
pub async fn claim_due_deliveries(
    conn: &mut PgConnection,
    per_endpoint: i64,
    limit: i64,
    lease: Duration,
) -> sqlx::Result<Vec<ClaimedDelivery>> {
    sqlx::query_as!(
        ClaimedDelivery,
        r#"WITH in_flight AS (
               SELECT endpoint_id, count(*) AS n FROM webhook_deliveries
                WHERE status = 'sending' AND next_attempt_at > now() GROUP BY endpoint_id),
           due AS (
               SELECT d.id, d.next_attempt_at,
                      row_number() OVER (PARTITION BY e.id ORDER BY d.next_attempt_at, d.id) AS place,
                      coalesce(f.n, 0) AS busy
                 FROM webhook_endpoints e
                 LEFT JOIN in_flight f ON f.endpoint_id = e.id
                CROSS JOIN LATERAL (
                      SELECT d.id, d.next_attempt_at FROM webhook_deliveries d
                       WHERE d.endpoint_id = e.id AND d.status IN ('pending', 'sending') AND d.next_attempt_at <= now()
                       ORDER BY d.next_attempt_at, d.id LIMIT $1) d
                WHERE NOT e.disabled),
           chosen AS (
               SELECT w.id FROM webhook_deliveries w JOIN due ON due.id = w.id
                WHERE due.place + due.busy <= $1
                  AND w.status IN ('pending', 'sending') AND w.next_attempt_at <= now()
                ORDER BY due.next_attempt_at, w.id LIMIT $2
                  FOR UPDATE OF w SKIP LOCKED)
           UPDATE webhook_deliveries d
              SET status = 'sending', attempts = d.attempts + 1, schedule_step = d.schedule_step + 1,
                  next_attempt_at = now() + make_interval(secs => $3)
             FROM chosen c, webhook_endpoints e, webhook_messages m
            WHERE d.id = c.id AND e.id = d.endpoint_id AND m.id = d.message_id
           RETURNING d.id, d.endpoint_id, d.message_id, d.attempts AS attempt, d.schedule_step, e.url, e.secret,
                     e.previous_secret, e.previous_secret_expires_at, m.body"#,
        per_endpoint,
        limit,
        lease.as_secs_f64(),
    )
    .fetch_all(conn)
    .await
}

/// An attempt made, to record.
#[derive(Debug, Clone)]
pub struct FinishedAttempt {
    pub delivery: ClaimedDelivery,
    pub outcome: AttemptOutcome,
    pub verdict: EndpointVerdict,
}

/// An endpoint an attempt disabled, and why (`gone` or `failing`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledEndpoint {
    pub endpoint_id: Uuid,
    pub url: String,
    pub reason: &'static str,
}

/// Records attempts (a batch; one is the single case): each attempt's row, and each delivery's
/// next state if this instance still holds its claim (a claim whose lease ran out may have been
/// taken again: that attempt's row is kept, its state change is not). Then the endpoints' health:
/// returns the endpoints these attempts disabled.
pub async fn record_attempts(
    conn: &mut PgConnection,
    finished: &[FinishedAttempt],
) -> sqlx::Result<Vec<DisabledEndpoint>> {
    if finished.is_empty() {
        return Ok(Vec::new());
    }
    let column = |f: fn(&FinishedAttempt) -> i64| finished.iter().map(f).collect::<Vec<i64>>();
    let ids = column(|f| f.delivery.id);
    let attempts: Vec<i32> = finished.iter().map(|f| f.delivery.attempt).collect();
    let states: Vec<&str> = finished.iter().map(|f| f.outcome.next.as_str()).collect();
    let next_at: Vec<DateTime<Utc>> = finished.iter().map(|f| f.outcome.next_attempt_at).collect();
    let started: Vec<DateTime<Utc>> = finished.iter().map(|f| f.outcome.started_at).collect();
    let codes: Vec<Option<i32>> = finished.iter().map(|f| f.outcome.status_code).collect();
    let latencies: Vec<i32> = finished.iter().map(|f| f.outcome.latency_ms).collect();
    let errors: Vec<Option<String>> = finished.iter().map(|f| f.outcome.error.clone()).collect();
    let excerpts: Vec<Option<String>> = finished.iter().map(|f| f.outcome.response_excerpt.clone()).collect();
    sqlx::query!(
        r#"WITH input AS (
               SELECT * FROM unnest($1::int8[], $2::int4[], $3::text[], $4::timestamptz[], $5::timestamptz[],
                                    $6::int4[], $7::int4[], $8::text[], $9::text[])
                      AS i (id, attempt, status, next_attempt_at, started_at, status_code, latency_ms, error, excerpt)),
           moved AS (
               UPDATE webhook_deliveries d SET status = i.status, next_attempt_at = i.next_attempt_at
                 FROM input i
                WHERE d.id = i.id AND d.attempts = i.attempt AND d.status = 'sending')
           INSERT INTO webhook_delivery_attempts
                  (delivery_id, attempt, started_at, status_code, latency_ms, error, response_excerpt)
           SELECT i.id, i.attempt, i.started_at, i.status_code, i.latency_ms, i.error, i.excerpt FROM input i
            WHERE EXISTS (SELECT 1 FROM webhook_deliveries WHERE id = i.id)
           ON CONFLICT DO NOTHING"#,
        &ids,
        &attempts,
        &states as &[&str],
        &next_at,
        &started,
        &codes as &[Option<i32>],
        &latencies,
        &errors as &[Option<String>],
        &excerpts as &[Option<String>],
    )
    .execute(&mut *conn)
    .await?;

    let mut healthy: Vec<Uuid> = finished
        .iter()
        .filter(|f| f.verdict == EndpointVerdict::Healthy)
        .map(|f| f.delivery.endpoint_id)
        .collect();
    healthy.sort_unstable();
    healthy.dedup();
    if !healthy.is_empty() {
        sqlx::query!(
            "UPDATE webhook_endpoints SET failing_since = NULL WHERE id = ANY($1) AND failing_since IS NOT NULL",
            &healthy
        )
        .execute(&mut *conn)
        .await?;
    }
    // Failures are rare next to successes: one statement each.
    let mut disabled = Vec::new();
    for failed in finished.iter().filter(|f| f.verdict != EndpointVerdict::Healthy) {
        let endpoint = failed.delivery.endpoint_id;
        let reason = match failed.verdict {
            EndpointVerdict::Healthy => None,
            EndpointVerdict::Gone => sqlx::query_scalar!(
                r#"UPDATE webhook_endpoints SET disabled = true, disabled_reason = 'gone'
                    WHERE id = $1 AND NOT disabled RETURNING 'gone' AS "reason!""#,
                endpoint
            )
            .fetch_optional(&mut *conn)
            .await?
            .map(|_| "gone"),
            EndpointVerdict::Failing { disable_after } => sqlx::query_scalar!(
                r#"UPDATE webhook_endpoints
                      SET failing_since = coalesce(failing_since, $2),
                          disabled = coalesce(failing_since, $2) <= now() - make_interval(secs => $3),
                          disabled_reason = CASE WHEN coalesce(failing_since, $2) <= now() - make_interval(secs => $3)
                                                 THEN 'failing' END
                    WHERE id = $1 AND NOT disabled
                RETURNING disabled"#,
                endpoint,
                failed.outcome.started_at,
                disable_after.as_secs_f64(),
            )
            .fetch_optional(&mut *conn)
            .await?
            .filter(|disabled| *disabled)
            .map(|_| "failing"),
        };
        if let Some(reason) = reason {
            disabled.push(DisabledEndpoint {
                endpoint_id: endpoint,
                url: failed.delivery.url.clone(),
                reason,
            });
        }
    }
    Ok(disabled)
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

/// A delivery with its message's identity and its attempts, newest first.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub id: i64,
    pub message_id: i64,
    pub event_type: String,
    pub event_id: Option<i64>,
    pub sequence: i64,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub attempt_log: Vec<AttemptRecord>,
}

struct DeliveryRow {
    id: i64,
    message_id: i64,
    event_type: String,
    event_id: Option<i64>,
    sequence: i64,
    status: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
}

/// Attempts listed per delivery (the newest).
const ATTEMPTS_SHOWN: i64 = 20;

/// An endpoint's deliveries, newest first, before the delivery `before` (a page's cursor), with
/// `status` when given; `None` when the user has no such endpoint.
pub async fn delivery_log(
    conn: &mut PgConnection,
    user: UserId,
    endpoint: Uuid,
    status: Option<DeliveryStatus>,
    before: Option<i64>,
    limit: i64,
) -> sqlx::Result<Option<Vec<DeliveryRecord>>> {
    let owned = sqlx::query_scalar!(
        r#"SELECT true AS "owned!" FROM webhook_endpoints WHERE id = $1 AND user_id = $2"#,
        endpoint,
        user as UserId
    )
    .fetch_optional(&mut *conn)
    .await?;
    if owned.is_none() {
        return Ok(None);
    }
    let rows = sqlx::query_as!(
        DeliveryRow,
        r#"SELECT d.id, d.message_id, m.event_type, m.event_id, m.sequence, d.status, d.attempts,
                  d.next_attempt_at, d.created_at
             FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id
            WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2) AND ($3::int8 IS NULL OR d.id < $3)
            ORDER BY d.id DESC LIMIT $4"#,
        endpoint,
        status.map(DeliveryStatus::as_str),
        before,
        limit,
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let attempts = attempts_of(conn, &ids).await?;
    Ok(Some(
        rows.into_iter()
            .map(|row| DeliveryRecord {
                attempt_log: attempts.iter().filter(|a| a.delivery_id == row.id).cloned().collect(),
                id: row.id,
                message_id: row.message_id,
                event_type: row.event_type,
                event_id: row.event_id,
                sequence: row.sequence,
                status: row.status,
                attempts: row.attempts,
                next_attempt_at: row.next_attempt_at,
                created_at: row.created_at,
            })
            .collect(),
    ))
}

async fn attempts_of(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<Vec<AttemptRecord>> {
    sqlx::query_as!(
        AttemptRecord,
        r#"SELECT a.delivery_id, a.attempt, a.started_at, a.status_code, a.latency_ms, a.error, a.response_excerpt
             FROM unnest($1::int8[]) AS d (id)
            CROSS JOIN LATERAL (SELECT * FROM webhook_delivery_attempts a WHERE a.delivery_id = d.id
                                ORDER BY a.attempt DESC LIMIT $2) a"#,
        ids,
        ATTEMPTS_SHOWN,
    )
    .fetch_all(conn)
    .await
}

/// What a retry found.
#[derive(Debug, Clone)]
pub enum RetryOutcome {
    /// Armed: due at once, at the start of the retry schedule.
    Armed(Box<DeliveryRecord>),
    /// An instance is sending it right now: a second, concurrent send is never started.
    InFlight,
    NotFound,
}

/// Arms one delivery again.
pub async fn retry_delivery(
    conn: &mut PgConnection,
    user: UserId,
    endpoint: Uuid,
    delivery: i64,
) -> sqlx::Result<RetryOutcome> {
    let row = sqlx::query!(
        r#"SELECT d.status FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.id = $1 AND d.endpoint_id = $2 AND e.user_id = $3 FOR UPDATE OF d"#,
        delivery,
        endpoint,
        user as UserId,
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(RetryOutcome::NotFound) };
    if row.status == DeliveryStatus::Sending.as_str() {
        return Ok(RetryOutcome::InFlight);
    }
    sqlx::query!(
        "UPDATE webhook_deliveries SET status = 'pending', schedule_step = 0, next_attempt_at = now() WHERE id = $1",
        delivery
    )
    .execute(&mut *conn)
    .await?;
    let log = delivery_log(conn, user, endpoint, None, Some(delivery + 1), 1).await?.unwrap_or_default();
    Ok(log.into_iter().next().map_or(RetryOutcome::NotFound, |record| RetryOutcome::Armed(Box::new(record))))
}

/// Re-sends every message of the user since `since` whose type the endpoint subscribes to now,
/// whether or not it was sent there before (deliveries in flight are left to finish). Returns how
/// many deliveries were armed.
pub async fn replay_since(
    conn: &mut PgConnection,
    user: UserId,
    endpoint: Uuid,
    since: DateTime<Utc>,
) -> sqlx::Result<Option<u64>> {
    let Some(events) = sqlx::query_scalar!(
        "SELECT events FROM webhook_endpoints WHERE id = $1 AND user_id = $2",
        endpoint,
        user as UserId
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let armed = sqlx::query!(
        r#"INSERT INTO webhook_deliveries AS d (endpoint_id, message_id)
           SELECT $1, m.id FROM webhook_messages m
            WHERE m.user_id = $2 AND m.created_at >= $3 AND m.event_type = ANY($4)
           ON CONFLICT (endpoint_id, message_id) DO UPDATE
              SET status = 'pending', schedule_step = 0, next_attempt_at = now()
            WHERE d.status <> 'sending'"#,
        endpoint,
        user as UserId,
        since,
        &events,
    )
    .execute(conn)
    .await?;
    Ok(Some(armed.rows_affected()))
}

/// Deliveries waiting or in flight, and how long the oldest has waited, per endpoint.
#[derive(Debug, Clone)]
pub struct DeliveryStats {
    pub endpoint_id: Uuid,
    pub user_id: UserId,
    pub backlog: i64,
    pub oldest_seconds: f64,
}

/// Backlog per endpoint with any (for metrics and diagnostics).
pub async fn delivery_stats(conn: &mut PgConnection) -> sqlx::Result<Vec<DeliveryStats>> {
    sqlx::query_as!(
        DeliveryStats,
        r#"SELECT d.endpoint_id, e.user_id AS "user_id: UserId", count(*) AS "backlog!",
                  EXTRACT(EPOCH FROM now() - min(d.created_at))::float8 AS "oldest_seconds!"
             FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
            WHERE d.status IN ('pending', 'sending')
            GROUP BY d.endpoint_id, e.user_id"#
    )
    .fetch_all(conn)
    .await
}

/// Deletes up to 1,000 messages created before `before`, with their deliveries and attempts;
/// rows another transaction holds are left for the next pass. Returns how many.
pub async fn prune_webhook_messages(conn: &mut PgConnection, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let deleted = sqlx::query!(
        r#"DELETE FROM webhook_messages WHERE id IN (
               SELECT id FROM webhook_messages WHERE created_at < $1 LIMIT 1000 FOR UPDATE SKIP LOCKED)"#,
        before
    )
    .execute(conn)
    .await?;
    Ok(deleted.rows_affected())
}
