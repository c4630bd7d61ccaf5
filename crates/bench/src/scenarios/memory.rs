//! Server memory with many calls in flight: resident set size of the `switchboard serve` process
//! with `live` calls held at the simulator and `queued` calls waiting, against the same process
//! idle (measured first, in the same run).

use futures::StreamExt;

use crate::environment::Stack;

pub struct Memory {
    pub idle_mib: f64,
    pub loaded_mib: f64,
    pub live: usize,
    pub queued: usize,
}

/// `users` users with `per_user` slots: first `users × per_user` calls go live, then `queued` wait.
pub async fn run(stack: &Stack, users: usize, per_user: i64, queued: usize) -> anyhow::Result<Memory> {
    let idle_mib = stack.servers[0].rss_mib()?;
    let keys = stack.users(users, per_user).await?;
    let live = users * per_user as usize;
    let total = live + queued;
    let mut statuses = futures::stream::iter(0..total)
        .map(|n| {
            let key = &keys[n % keys.len()];
            async move { stack.call(key, &format!("+1888{n:07}")).await.map(|(status, _)| status) }
        })
        .buffered(32);
    let (mut started, mut waiting) = (0, 0);
    while let Some(status) = statuses.next().await {
        match status? {
            201 => started += 1,
            202 => waiting += 1,
            other => anyhow::bail!("a call was answered {other}"),
        }
    }
    anyhow::ensure!(started == live && waiting == queued, "{started} live and {waiting} queued");
    // Let background work (dispatcher passes, the event hub) settle before reading.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let loaded_mib = stack.servers[0].rss_mib()?;
    stack.sim.hang_up_all();
    Ok(Memory { idle_mib, loaded_mib, live: started, queued: waiting })
}
