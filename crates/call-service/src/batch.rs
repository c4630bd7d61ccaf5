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
//!
//! The batcher owns the whole policy, for every kind alike: when a batch's statement fails, each
//! of its requests is run again alone (a batch of one), so one bad request cannot fail the others.
//! A batch of one is the unbatched case: there is no second path.

use std::future::Future;
use std::ops::{Deref, Range};
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

/// The requests of one batch: a range of what a worker took from the queue (all of it, or one
/// request when a failed batch is run again one by one).
#[derive(Debug)]
pub(crate) struct Batch<Request> {
    requests: Arc<[Request]>,
    range: Range<usize>,
}

impl<Request> Deref for Batch<Request> {
    type Target = [Request];

    fn deref(&self) -> &[Request] {
        &self.requests[self.range.clone()]
    }
}

/// What a runner answers for a batch: one result per request, in order — or the failure of the
/// batch's statement as a whole (nothing of it was committed), which the batcher handles.
pub(crate) type BatchResult<Reply> = Result<Vec<Result<Reply, CallError>>, CallError>;

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
    Request: Send + Sync + 'static,
    Reply: Send + 'static,
{
    /// Starts `config.workers` workers on `runtime`. `run` gets each batch in arrival order and
    /// answers every request, in the same order, or fails as a whole (then each request runs again
    /// alone). `on_batch` is told each batch's size and how long it ran (for metrics).
    pub fn start<Run, Fut>(
        name: &'static str,
        config: BatchConfig,
        runtime: &tokio::runtime::Handle,
        on_batch: impl Fn(usize, std::time::Duration) + Send + Sync + 'static,
        run: Run,
    ) -> Self
    where
        Run: Fn(Batch<Request>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = BatchResult<Reply>> + Send + 'static,
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
                    let mut results = run_with_fallback(name, &*run, requests.into()).await.into_iter();
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

/// Runs a batch; if its statement fails, each request again alone.
async fn run_with_fallback<Request: Send + Sync, Reply, Fut>(
    name: &str,
    run: &(impl Fn(Batch<Request>) -> Fut + ?Sized),
    requests: Arc<[Request]>,
) -> Vec<Result<Reply, CallError>>
where
    Fut: Future<Output = BatchResult<Reply>>,
{
    let n = requests.len();
    match run(Batch { requests: requests.clone(), range: 0..n }).await {
        Ok(results) => results,
        Err(error) if n > 1 => {
            tracing::warn!(error = %error, batch = name, requests = n, "a batch failed; running its requests one by one");
            let mut results = Vec::with_capacity(n);
            for i in 0..n {
                let alone = run(Batch { requests: requests.clone(), range: i..i + 1 }).await;
                results.push(alone.and_then(|mut one| one.pop().unwrap_or_else(|| Err(unanswered(name)))));
            }
            results
        }
        Err(error) => vec![Err(error)],
    }
}

fn unanswered(name: &str) -> CallError {
    CallError::Unexpected(anyhow::anyhow!("batch `{name}` left a request unanswered"))
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
            |requests: Batch<u32>| async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(requests.iter().map(|n| Ok(n * 2)).collect())
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
            |_requests: Batch<u32>| async move { Ok(Vec::new()) },
        );
        let error = batcher.submit(1).await.expect_err("no answer");
        assert!(error.to_string().contains("answered fewer"), "{error}");
    }

    #[tokio::test]
    async fn a_failed_batch_is_run_again_one_by_one_so_only_the_bad_request_fails() {
        let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = runs.clone();
        let batcher: Batcher<u32, u32> = Batcher::start(
            "fallback",
            BatchConfig { workers: 1, max_batch: 16 },
            &tokio::runtime::Handle::current(),
            |_, _| {},
            move |requests: Batch<u32>| {
                let batch: Vec<u32> = requests.to_vec();
                seen.lock().unwrap().push(batch.len());
                async move {
                    // The statement fails whenever the bad request (13) is in it.
                    if batch.contains(&13) {
                        return Err(CallError::Invalid("13 breaks the statement".into()));
                    }
                    Ok(batch.iter().map(|n| Ok(n + 1)).collect())
                }
            },
        );
        let batcher = Arc::new(batcher);
        let submitted: Vec<_> = [11u32, 12, 13, 14]
            .into_iter()
            .map(|n| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(n).await })
            })
            .collect();
        let mut answers = Vec::new();
        for handle in submitted {
            answers.push(handle.await.expect("ran").map_err(|error| error.to_string()));
        }
        assert_eq!(answers[0], Ok(12));
        assert_eq!(answers[1], Ok(13));
        assert!(answers[2].is_err(), "{answers:?}");
        assert_eq!(answers[3], Ok(15));
        let runs = runs.lock().unwrap().clone();
        assert!(runs.iter().filter(|n| **n == 1).count() >= 1, "batches of one: {runs:?}");
    }
}
