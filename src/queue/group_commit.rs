//! Group commit for enqueues: deliveries arriving together share one transaction.
//!
//! Why: an acknowledged delivery must be on disk before the 2xx, and a commit costs a disk flush
//! (SQLite `synchronous=FULL`, PostgreSQL's WAL flush). One commit per delivery capped durable ingest at
//! about 2,000 deliveries a second, a few percent of what the server answers on a no-op route. Batching
//! the deliveries that are waiting into one transaction pays that flush once for all of them.
//!
//! How: each caller adds its delivery to a shared list and waits for its own answer. The first caller to
//! find no flush running starts one (a spawned task, so a caller whose HTTP connection drops cannot
//! cancel a commit half-way); the flush takes everything waiting (up to [`MAX_ENQUEUE_BATCH`]), commits it with
//! [`SqlStore::enqueue_batch_on`], answers each caller, and repeats until the list is empty. A lone caller is
//! written at once: nothing waits for a batch to fill. While batches keep coming, the flush holds the
//! store's write connection from one to the next (for at most [`HOLD_WRITER`], then it takes its turn
//! again behind the process's other writers) instead of giving it back to the pool after each commit:
//! on SQLite that give-and-take (a check of the connection on its return, and the wake-ups around it)
//! was about a fifth of each batch's time under load (issue 27, `store::Writer`). Every caller still gets its answer only after the
//! commit, so "2xx means stored" holds as before. A job claimed in this commit (`super::handoff`) is
//! handed to its reserved worker by the flush, after the commit and before its caller's answer.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use anyhow::Context;

use chrono::{DateTime, Utc};
use futures_util::FutureExt;
use tokio::sync::oneshot;

use super::handoff::Reservation;
use crate::{
    clock::Clock,
    metrics::QueueMetrics,
    store::{Enqueued, MAX_ENQUEUE_BATCH, NewJob, SqlStore, Writer},
};

/// How long a flush keeps the write connection while batches keep coming: a few batches' worth under
/// load (a batch's commit takes about a millisecond on SQLite), so the give-and-take is paid once for
/// several batches, while a claim or a completion waiting for the connection waits at most this long
/// and one batch more.
const HOLD_WRITER: Duration = Duration::from_millis(5);

struct Waiting {
    key: String,
    job: NewJob,
    /// The idle worker taken for this job when it carries a lease: it gets the job once committed.
    worker: Option<Reservation>,
    answer: oneshot::Sender<Result<Enqueued, String>>,
}

pub(super) struct GroupCommit {
    store: Arc<SqlStore>,
    clock: Clock,
    metrics: QueueMetrics,
    waiting: Mutex<Vec<Waiting>>,
    flushing: AtomicBool,
}

impl GroupCommit {
    pub(super) fn new(store: Arc<SqlStore>, clock: Clock, metrics: QueueMetrics) -> Arc<Self> {
        Arc::new(Self {
            store,
            clock,
            metrics,
            waiting: Mutex::new(Vec::new()),
            flushing: AtomicBool::new(false),
        })
    }

    /// Stores one delivery and its job, together with any others waiting; returns once committed.
    /// A job with a lease goes to `worker` after the commit (the flush hands it over, so a caller
    /// that stops waiting cannot strand it); `worker` is given back if nothing is stored.
    pub(super) async fn enqueue(
        self: &Arc<Self>,
        key: &str,
        job: NewJob,
        worker: Option<Reservation>,
    ) -> anyhow::Result<Enqueued> {
        let (answer, answered) = oneshot::channel();
        self.lock().push(Waiting {
            key: key.to_owned(),
            job,
            worker,
            answer,
        });
        self.start_flush();
        match answered.await {
            Ok(Ok(enqueued)) => Ok(enqueued),
            Ok(Err(error)) => Err(anyhow::anyhow!(error)),
            Err(_) => Err(anyhow::anyhow!("the enqueue was abandoned")),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Waiting>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a flush unless one is running (which will take what we added).
    fn start_flush(self: &Arc<Self>) {
        if self
            .flushing
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            let this = self.clone();
            tokio::spawn(async move { this.flush().await });
        }
    }

    async fn flush(self: Arc<Self>) {
        // The write connection, held from batch to batch while they keep coming (see `HOLD_WRITER`).
        let mut held: Option<(Writer, Instant)> = None;
        loop {
            let batch: Vec<Waiting> = {
                let mut waiting = self.lock();
                let n = waiting.len().min(MAX_ENQUEUE_BATCH);
                waiting.drain(..n).collect()
            };
            if batch.is_empty() {
                // Given back before the flush ends: the next flush, or another writer, takes it.
                held = None;
                self.flushing.store(false, Ordering::SeqCst);
                // A delivery added between the drain and the store above found a flush running and
                // relies on it: take it over unless another flush already has.
                if self.lock().is_empty()
                    || self
                        .flushing
                        .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
                        .is_err()
                {
                    return;
                }
                continue;
            }
            self.metrics.committed_batch(batch.len());
            let mut items = Vec::with_capacity(batch.len());
            let mut waiters = Vec::with_capacity(batch.len());
            for w in batch {
                items.push((w.key, w.job));
                waiters.push((w.answer, w.worker));
            }
            // Held long enough: given back, so the process's other writers (claims, completions)
            // take their turn in the pool's first-come first-served queue before the next batch.
            if held
                .as_ref()
                .is_some_and(|(_, since)| since.elapsed() >= HOLD_WRITER)
            {
                held = None;
            }
            let now = self.clock.now();
            // A panic must not leave `flushing` set (every later enqueue would wait forever).
            let committed = AssertUnwindSafe(async {
                if held.is_none() {
                    held = Some((self.store.writer().await?, Instant::now()));
                }
                let (writer, _) = held.as_mut().context("enqueue: no writer")?;
                self.store.enqueue_batch_on(writer, &items, now).await
            })
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("enqueue: the store panicked")))
            .and_then(|results| {
                anyhow::ensure!(
                    results.len() == items.len(),
                    "enqueue: {} results for {} deliveries",
                    results.len(),
                    items.len()
                );
                Ok(results)
            });
            match committed {
                Ok(results) => {
                    for (((answer, worker), result), (key, job)) in
                        waiters.into_iter().zip(results).zip(&items)
                    {
                        if let Some(worker) = worker.filter(|_| !result.duplicate) {
                            hand(worker, result.job_id, key, job, now);
                        }
                        let _ = answer.send(Ok(result));
                    }
                }
                // Nothing stored: each reserved worker is given back as its reservation drops. The
                // connection goes back too (a fresh one is taken for the next batch), whatever state
                // the failure left it in.
                Err(error) => {
                    held = None;
                    let error = format!("{error:#}");
                    for (answer, _) in waiters {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// Gives the committed job `job_id`, stored under its lease, to the worker reserved for it.
fn hand(worker: Reservation, job_id: i64, key: &str, job: &NewJob, now: DateTime<Utc>) {
    let owner = job.lease.as_ref().map(|lease| lease.owner.clone());
    match (SqlStore::leased_job(job_id, key, job, now), owner) {
        (Ok(stored), Some(owner)) => worker.hand(stored, owner),
        // Unreachable with a payload written by serde_json; were it reached, the worker goes back
        // and the job runs when its lease runs out.
        (Err(error), _) => {
            tracing::warn!(
                job_id,
                error = format!("{error:#}"),
                "could not hand the job over"
            )
        }
        (Ok(_), None) => {}
    }
}
