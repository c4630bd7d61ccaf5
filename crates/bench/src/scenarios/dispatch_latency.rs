//! Queued-call start latency: with a user's only slot busy and one call queued behind it, the time
//! from sending the freeing webhook (`call-disconnected`) to the simulator receiving the queued
//! call's `POST /call`. The baseline is the round trip of a webhook that frees nothing (a repeated
//! `ringing`), measured on the same calls in the same run.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::Utc;

use crate::environment::{execution_body, Stack};

pub struct DispatchLatency {
    /// Milliseconds from sending the freeing webhook to the queued call reaching Bolna.
    pub dispatch_ms: Vec<f64>,
    /// Milliseconds of a plain webhook's round trip.
    pub plain_webhook_ms: Vec<f64>,
}

/// `round` keeps recipients distinct between runs on the same simulator.
pub async fn run(stack: &Stack, samples: usize, round: u32) -> anyhow::Result<DispatchLatency> {
    let mut dispatch_ms = Vec::with_capacity(samples);
    let mut plain_webhook_ms = Vec::with_capacity(samples);
    for n in 0..samples {
        let key = stack.user(1).await?;
        let (status, live) = stack.call(&key, &format!("+1666{round:02}{n:06}")).await?;
        if status != 201 {
            bail!("the first call should start: {status} {live}");
        }
        let queued_recipient = format!("+1777{round:02}{n:06}");
        let (status, queued) = stack.call(&key, &queued_recipient).await?;
        if status != 202 {
            bail!("the second call should queue: {status} {queued}");
        }
        let execution = live["bolna_execution_id"].as_str().context("execution id")?.to_owned();

        let started = Instant::now();
        stack.webhook(&execution_body(&execution, "ringing")).await?;
        plain_webhook_ms.push(started.elapsed().as_secs_f64() * 1000.0);

        let sent = Utc::now();
        let code = stack.webhook(&execution_body(&execution, "call-disconnected")).await?;
        if code != 200 {
            bail!("webhook answered {code}");
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let received = loop {
            if let Some(at) = stack.sim.first_accepted_at(&queued_recipient) {
                break at;
            }
            if Instant::now() > deadline {
                bail!("the queued call never reached Bolna");
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        };
        dispatch_ms.push((received - sent).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    stack.sim.hang_up_all();
    Ok(DispatchLatency { dispatch_ms, plain_webhook_ms })
}
