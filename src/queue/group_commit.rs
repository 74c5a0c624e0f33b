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
//! [`SqlStore::enqueue_batch`], answers each caller, and repeats until the list is empty. A lone caller is
//! written at once: nothing waits for a batch to fill. Every caller still gets its answer only after the
//! commit, so "2xx means stored" holds as before.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicBool, Ordering},
};

use std::panic::AssertUnwindSafe;

use futures_util::FutureExt;
use tokio::sync::oneshot;

use crate::{
    clock::Clock,
    metrics::QueueMetrics,
    store::{Enqueued, MAX_ENQUEUE_BATCH, NewJob, SqlStore},
};

struct Waiting {
    key: String,
    job: NewJob,
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
    pub(super) async fn enqueue(
        self: &Arc<Self>,
        key: &str,
        job: NewJob,
    ) -> anyhow::Result<Enqueued> {
        let (answer, answered) = oneshot::channel();
        self.lock().push(Waiting {
            key: key.to_owned(),
            job,
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
        loop {
            let batch: Vec<Waiting> = {
                let mut waiting = self.lock();
                let n = waiting.len().min(MAX_ENQUEUE_BATCH);
                waiting.drain(..n).collect()
            };
            if batch.is_empty() {
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
            let (items, answers): (Vec<_>, Vec<_>) = batch
                .into_iter()
                .map(|w| ((w.key, w.job), w.answer))
                .unzip();
            // A panic must not leave `flushing` set (every later enqueue would wait forever).
            let committed = AssertUnwindSafe(self.store.enqueue_batch(items, self.clock.now()))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("enqueue: the store panicked")));
            match committed {
                Ok(results) if results.len() == answers.len() => {
                    for (answer, result) in answers.into_iter().zip(results) {
                        let _ = answer.send(Ok(result));
                    }
                }
                Ok(results) => {
                    let error = format!(
                        "enqueue: {} results for {} deliveries",
                        results.len(),
                        answers.len()
                    );
                    for answer in answers {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
                Err(error) => {
                    let error = format!("{error:#}");
                    for answer in answers {
                        let _ = answer.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}
