//! Outbound webhooks: how fast a backlog of deliveries drains to a local receiver, beside the same
//! receiver hit straight with the same bodies and as many requests in flight; and what a draining
//! backlog costs call starts. The backlog is written straight into the tables (as the fan-out
//! writes it) to disabled endpoints, then the endpoints are enabled: the clock measures the sender.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::environment::Stack;

/// Endpoints of the backlog's user, all at the receiver: with 4 in flight each (the default),
/// 32 requests in flight at once.
pub const ENDPOINTS: usize = 8;
pub const IN_FLIGHT: usize = ENDPOINTS * 4;

/// A local HTTP/1.1 receiver (keep-alive) that answers every request 200 at once and counts them.
pub struct Receiver {
    pub url: String,
    pub received: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, count.clone()));
            }
        });
        Ok(Self { url, received, task })
    }
}

async fn serve(stream: tokio::net::TcpStream, count: Arc<AtomicU64>) {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" => break,
                Ok(_) => {
                    if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        count.fetch_add(1, Ordering::Relaxed);
        if reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await.is_err() {
            return;
        }
    }
}

/// A `call.ended` body of a realistic size (about 1.3 KB).
pub fn sample_body(sequence: i64) -> String {
    let data = json!({
        "id": "0193a7c2-5d0e-7c4b-9a1e-2f4b6c8d0e1f", "user_id": "0193a7c2-5d0e-7c4b-9a1e-2f4b6c8d0e20",
        "call_type": "direct", "campaign_id": null, "agent_id": crate::environment::AGENT,
        "recipient_phone_number": "+14155550100", "from_phone_number": null,
        "user_data": {"customer_name": "Asha", "order": "A-1042"}, "status": "completed",
        "provider_status": null, "bolna_execution_id": "5f0e1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "idempotency_key": null, "created_at": "2026-12-04T10:15:00.000Z", "queued_at": null,
        "started_at": "2026-12-04T10:15:00.120Z", "answered_at": "2026-12-04T10:15:04.800Z",
        "ended_at": "2026-12-04T10:16:02.400Z", "conversation_duration": 57.6, "total_cost": 5.16,
        "transcript": "assistant: Hello Asha, this is a reminder about your order A-1042 arriving tomorrow. \
                       user: Thank you, that works. assistant: Great, have a good day.",
        "recording_url": "https://recordings.example.com/5f0e1a2b.mp3", "hangup_by": "user",
        "hangup_reason": "call ended by the user", "answered_by_voice_mail": false,
        "extracted_data": {"confirmed": true, "slot": "morning"}, "error": null, "scheduled_at": null,
        "updated_at": "2026-12-04T10:16:03.100Z"
    });
    body(sequence, &data)
}

fn body(sequence: i64, data: &Value) -> String {
    web::outbound::message_body("call.ended", chrono::Utc::now(), Some(sequence), sequence, &data.to_string())
}

/// A user with [`ENDPOINTS`] disabled endpoints at `url`; returns its key and the endpoints' ids.
pub async fn endpoints(stack: &Stack, url: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (_, key) = stack.user_with_limits(1, 0).await?;
    let mut ids = Vec::new();
    for n in 0..ENDPOINTS {
        let created: Value = stack
            .http
            .post(format!("{}/v1/webhook-endpoints", stack.base_url))
            .bearer_auth(&key)
            .json(&json!({"url": format!("{url}/{n}"), "events": ["call.ended"]}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let id = created["endpoint"]["id"].as_str().context("endpoint id")?.to_owned();
        set_disabled(stack, &key, &id, true).await?;
        ids.push(id);
    }
    Ok((key, ids))
}

pub async fn set_disabled(stack: &Stack, key: &str, id: &str, disabled: bool) -> anyhow::Result<()> {
    stack
        .http
        .patch(format!("{}/v1/webhook-endpoints/{id}", stack.base_url))
        .bearer_auth(key)
        .json(&json!({"disabled": disabled}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

/// Writes `count` messages (one per sequence number) with a delivery to each endpoint, spread
/// evenly: `count` deliveries in all.
pub async fn backlog(pool: &PgPool, endpoints: &[String], count: i64) -> anyhow::Result<()> {
    let body = sample_body(0);
    let user: uuid::Uuid = sqlx::query_scalar("SELECT user_id FROM webhook_endpoints WHERE id = $1::uuid")
        .bind(&endpoints[0])
        .fetch_one(pool)
        .await?;
    let ids: Vec<uuid::Uuid> = endpoints.iter().map(|e| e.parse()).collect::<Result<_, _>>()?;
    let start: i64 =
        sqlx::query_scalar("SELECT coalesce(max(sequence), 0) FROM webhook_messages WHERE user_id = $1")
            .bind(user)
            .fetch_one(pool)
            .await?;
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        let (first, last) = (start + chunk[0] + 1, start + chunk[chunk.len() - 1] + 1);
        sqlx::query(
            "WITH m AS (
                 INSERT INTO webhook_messages (user_id, event_type, sequence, body)
                 SELECT $1, 'call.ended', s, $2 FROM generate_series($3::int8, $4::int8) s RETURNING id, sequence)
             INSERT INTO webhook_deliveries (endpoint_id, message_id)
             SELECT ($5::uuid[])[1 + (m.sequence % $6)], m.id FROM m",
        )
        .bind(user)
        .bind(&body)
        .bind(first)
        .bind(last)
        .bind(&ids)
        .bind(ids.len() as i64)
        .execute(pool)
        .await?;
    }
    // Settle what writing the backlog left (dirty pages, dead rows): the figures that follow
    // measure sending it, not writing it.
    sqlx::query("VACUUM ANALYZE webhook_messages, webhook_deliveries").execute(pool).await?;
    sqlx::query("CHECKPOINT").execute(pool).await?;
    Ok(())
}

/// Deliveries not yet succeeded.
pub async fn unfinished(pool: &PgPool) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar("SELECT count(*) FROM webhook_deliveries WHERE status <> 'succeeded'")
        .fetch_one(pool)
        .await?)
}

/// The baseline: `count` posts of the same body straight to the receiver, [`IN_FLIGHT`] at once,
/// with the same headers. Requests per second.
pub async fn direct(receiver: &Receiver, count: u64) -> anyhow::Result<f64> {
    let http = reqwest::Client::builder().pool_max_idle_per_host(IN_FLIGHT).build()?;
    let body = sample_body(1);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers = (0..IN_FLIGHT).map(|_| {
        let (http, body, next, url) = (http.clone(), body.clone(), next.clone(), receiver.url.clone());
        tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < count {
                let signature = web::outbound::sign("msg_1", 1_733_307_302, &body, [b"bench-key".as_slice()]);
                http.post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", "msg_1")
                    .header("webhook-timestamp", "1733307302")
                    .header("webhook-signature", signature)
                    .body(body.clone())
                    .send()
                    .await?
                    .error_for_status()?;
            }
            Ok::<_, reqwest::Error>(())
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker??;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// Enables the endpoints and waits for the backlog to drain; deliveries per second.
pub async fn drain(
    stack: &Stack,
    pool: &PgPool,
    key: &str,
    endpoints: &[String],
    limit: Duration,
) -> anyhow::Result<f64> {
    let total = unfinished(pool).await?;
    let started = Instant::now();
    for id in endpoints {
        set_disabled(stack, key, id, false).await?;
    }
    while unfinished(pool).await? > 0 {
        anyhow::ensure!(started.elapsed() < limit, "the backlog did not drain within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}
