//! Group commit for the hot statements: requests of one kind that arrive while earlier ones are at
//! the database are gathered and sent as one set-based statement (one round trip, one commit).
//!
//! `workers` tasks share one queue. An idle worker takes the first request waiting and, without
//! waiting for more, every other request already queued (up to `max_batch`). So a lone request goes
//! out at once, alone — no added latency at low load — and under load the batches grow by
//! themselves to what arrived during one statement. At 32 concurrent clients PostgreSQL spent most
//! of an admission on per-statement work (executor start-up, constraint and trigger set-up, the
//! commit), which a statement for N calls pays once (issue 8).
//!
//! A batch runs in its worker, detached from whoever submitted it: a caller that goes away does
//! not cut a batch between its commit and the replies.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Mutex};

use crate::error::CallError;

/// How the batches of one kind are run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchConfig {
    /// Batches in flight at once (each holds one pooled connection while it runs).
    pub workers: usize,
    /// Most requests in one statement; 1 turns batching off.
    pub max_batch: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self { workers: 1, max_batch: 64 }
    }
}

struct Job<Request, Reply> {
    request: Request,
    reply: oneshot::Sender<Result<Reply, CallError>>,
}

/// The submitting end of a batch queue (cheap to share; the workers stop when it is dropped).
pub(crate) struct Batcher<Request, Reply> {
    name: &'static str,
    queue: mpsc::Sender<Job<Request, Reply>>,
}

impl<Request, Reply> std::fmt::Debug for Batcher<Request, Reply> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<Request, Reply> Batcher<Request, Reply>
where
    Request: Send + 'static,
    Reply: Send + 'static,
{
    /// Starts `config.workers` workers on `runtime`. `run` gets each batch in arrival order and
    /// must answer every request, in the same order (one failed request must not fail the others:
    /// `run` isolates them itself). `on_batch` is told each batch's size and how long it ran (for
    /// metrics).
    pub fn start<Run, Fut>(
        name: &'static str,
        config: BatchConfig,
        runtime: &tokio::runtime::Handle,
        on_batch: impl Fn(usize, std::time::Duration) + Send + Sync + 'static,
        run: Run,
    ) -> Self
    where
        Run: Fn(Vec<Request>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<Reply, CallError>>> + Send + 'static,
    {
        let workers = config.workers.max(1);
        let max_batch = config.max_batch.max(1);
        let (queue, receiver) = mpsc::channel(workers * max_batch * 4);
        let receiver = Arc::new(Mutex::new(receiver));
        let run = Arc::new(run);
        let on_batch = Arc::new(on_batch);
        for _ in 0..workers {
            let (receiver, run, on_batch) = (receiver.clone(), run.clone(), on_batch.clone());
            runtime.spawn(async move {
                while let Some(jobs) = next_batch(&receiver, max_batch).await {
                    let started = std::time::Instant::now();
                    let (requests, replies): (Vec<_>, Vec<_>) =
                        jobs.into_iter().map(|job| (job.request, job.reply)).unzip();
                    let expected = replies.len();
                    let mut results = run(requests).await.into_iter();
                    on_batch(expected, started.elapsed());
                    for reply in replies {
                        let result = results.next().unwrap_or_else(|| {
                            Err(CallError::Unexpected(anyhow::anyhow!(
                                "batch `{name}` answered fewer than its {expected} requests"
                            )))
                        });
                        // The submitter may have gone away; its request was still carried out.
                        let _ = reply.send(result);
                    }
                }
            });
        }
        Self { name, queue }
    }

    /// Queues `request` and waits for its reply. Waits for room when the queue is full
    /// (back-pressure on the callers instead of unbounded memory).
    pub async fn submit(&self, request: Request) -> Result<Reply, CallError> {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Job { request, reply }).await.map_err(|_| self.stopped())?;
        answer.await.map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> CallError {
        CallError::Unexpected(anyhow::anyhow!("the `{}` batch workers have stopped", self.name))
    }
}

/// The next batch: the first job waiting (waits for one), then every job already queued, up to
/// `max_batch`. `None` once every sender is gone and the queue is empty.
async fn next_batch<Request, Reply>(
    receiver: &Mutex<mpsc::Receiver<Job<Request, Reply>>>,
    max_batch: usize,
) -> Option<Vec<Job<Request, Reply>>> {
    let mut receiver = receiver.lock().await;
    let first = receiver.recv().await?;
    let mut jobs = Vec::with_capacity(max_batch.min(receiver.len() + 1));
    jobs.push(first);
    while jobs.len() < max_batch {
        match receiver.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
    Some(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_request_gets_its_own_reply_and_batches_form_under_load() {
        let largest = Arc::new(AtomicUsize::new(0));
        let seen = largest.clone();
        let batcher: Batcher<u32, u32> = Batcher::start(
            "test",
            BatchConfig { workers: 2, max_batch: 16 },
            &tokio::runtime::Handle::current(),
            move |size, _| {
                seen.fetch_max(size, Ordering::Relaxed);
            },
            |requests: Vec<u32>| async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                requests.into_iter().map(|n| Ok(n * 2)).collect()
            },
        );
        let batcher = Arc::new(batcher);
        let mut submitted = tokio::task::JoinSet::new();
        for n in 0..200u32 {
            let batcher = batcher.clone();
            submitted.spawn(async move { (n, batcher.submit(n).await) });
        }
        let mut answered = 0;
        while let Some(joined) = submitted.join_next().await {
            let (n, reply) = joined.expect("the submitter ran");
            assert_eq!(reply.expect("a reply"), n * 2);
            answered += 1;
        }
        assert_eq!(answered, 200);
        let largest = largest.load(Ordering::Relaxed);
        assert!(largest > 1 && largest <= 16, "largest batch {largest}");
    }

    #[tokio::test]
    async fn a_runner_that_answers_too_few_fails_only_the_unanswered() {
        let batcher: Batcher<u32, u32> = Batcher::start(
            "short",
            BatchConfig { workers: 1, max_batch: 1 },
            &tokio::runtime::Handle::current(),
            |_, _| {},
            |_requests: Vec<u32>| async move { Vec::new() },
        );
        let error = batcher.submit(1).await.expect_err("no answer");
        assert!(error.to_string().contains("answered fewer"), "{error}");
    }
}
