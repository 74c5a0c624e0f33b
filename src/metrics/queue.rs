//! Prometheus metrics of the job queue.
//!
//! # Contract
//! [`QueueMetrics::register`] adds these to the caller's registry under full
//! names (register into a registry without a prefix):
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `replaydesk_queue_jobs{state}` | gauge | jobs per state, refreshed by the queue's maintenance task every 15 s (and by [`crate::queue::Queue::refresh_metrics`]) |
//! | `replaydesk_queue_enqueued_total` | counter | new jobs recorded |
//! | `replaydesk_queue_duplicates_total` | counter | deliveries refused as duplicates |
//! | `replaydesk_queue_executions_total{outcome}` | counter | attempts by outcome: done, retry, wait, expired, dead, lease_lost, released; and `cancelled` (an operator's `jobs cancel`) |
//! | `replaydesk_queue_dead_letters_total` | counter | jobs that went dead |
//! | `replaydesk_queue_waiting_jobs{upstream}` | gauge | queued jobs waiting for a down upstream (refreshed with `replaydesk_queue_jobs`) |
//! | `replaydesk_queue_expired_total` | counter | jobs whose answer's deadline passed while an upstream was down (state `expired`) |
//! | `replaydesk_queue_enqueue_to_done_seconds` | histogram | enqueue → done latency |
//! | `replaydesk_queue_attempts` | histogram | attempts a job used, observed when it is done or dead |
//! | `replaydesk_queue_commit_batch_size` | histogram | deliveries stored by one group commit (one transaction, one disk flush) |
//! | `replaydesk_queue_handed_total` | counter | new jobs claimed in their delivery's own commit and handed to an idle worker of this process (no claim of their own) |
//!
//! Cloning is cheap (one `Arc`); [`QueueMetrics::default`] gives a set that is
//! registered nowhere, for tests and tools.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

struct Inner {
    jobs: Family<StateLabel, Gauge>,
    enqueued: Counter,
    duplicates: Counter,
    executions: Family<OutcomeLabel, Counter>,
    dead_letters: Counter,
    waiting: Family<UpstreamLabel, Gauge>,
    expired: Counter,
    enqueue_to_done: Histogram,
    attempts: Histogram,
    commit_batch: Histogram,
    handed: Counter,
}

/// The queue's metrics; see the module docs for names.
#[derive(Clone)]
pub struct QueueMetrics(Arc<Inner>);

impl Default for QueueMetrics {
    fn default() -> Self {
        Self(Arc::new(Inner {
            jobs: Family::default(),
            enqueued: Counter::default(),
            duplicates: Counter::default(),
            executions: Family::default(),
            dead_letters: Counter::default(),
            waiting: Family::default(),
            expired: Counter::default(),
            // 50 ms … ~7 h
            enqueue_to_done: Histogram::new(exponential_buckets(0.05, 2.0, 20)),
            attempts: Histogram::new([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0]),
            // 1 … 256 (store::MAX_ENQUEUE_BATCH)
            commit_batch: Histogram::new(exponential_buckets(1.0, 2.0, 9)),
            handed: Counter::default(),
        }))
    }
}

impl std::fmt::Debug for QueueMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueMetrics")
            .field("enqueued", &self.0.enqueued.get())
            .field("duplicates", &self.0.duplicates.get())
            .field("dead_letters", &self.0.dead_letters.get())
            .finish_non_exhaustive()
    }
}

impl QueueMetrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let this = Self::default();
        let m = &this.0;
        registry.register("replaydesk_queue_jobs", "Jobs by state", m.jobs.clone());
        registry.register(
            "replaydesk_queue_enqueued",
            "Jobs recorded from accepted deliveries",
            m.enqueued.clone(),
        );
        registry.register(
            "replaydesk_queue_duplicates",
            "Deliveries refused because their delivery key was seen before",
            m.duplicates.clone(),
        );
        registry.register(
            "replaydesk_queue_executions",
            "Job attempts by outcome",
            m.executions.clone(),
        );
        registry.register(
            "replaydesk_queue_dead_letters",
            "Jobs that gave up (dead)",
            m.dead_letters.clone(),
        );
        registry.register(
            "replaydesk_queue_waiting_jobs",
            "Queued jobs waiting for an upstream that is down (their waits are not attempts)",
            m.waiting.clone(),
        );
        registry.register(
            "replaydesk_queue_expired",
            "Jobs whose answer's deadline passed while an upstream was down (state expired)",
            m.expired.clone(),
        );
        registry.register(
            "replaydesk_queue_enqueue_to_done_seconds",
            "Time from enqueue to done",
            m.enqueue_to_done.clone(),
        );
        registry.register(
            "replaydesk_queue_attempts",
            "Attempts a job used, observed when done or dead",
            m.attempts.clone(),
        );
        registry.register(
            "replaydesk_queue_commit_batch_size",
            "Deliveries stored by one group commit (one transaction, one disk flush)",
            m.commit_batch.clone(),
        );
        registry.register(
            "replaydesk_queue_handed",
            "New jobs claimed in their delivery's own commit and handed to an idle worker of this process",
            m.handed.clone(),
        );
        this
    }

    /// A new job claimed in its delivery's commit and handed to a worker.
    pub(crate) fn handed(&self) {
        self.0.handed.inc();
    }

    /// New jobs handed to a worker so far.
    pub fn handed_jobs(&self) -> u64 {
        self.0.handed.get()
    }

    /// One group commit of `deliveries`.
    pub(crate) fn committed_batch(&self, deliveries: usize) {
        self.0.commit_batch.observe(deliveries as f64);
    }

    pub(crate) fn enqueued(&self, duplicate: bool) {
        if duplicate {
            self.0.duplicates.inc();
        } else {
            self.0.enqueued.inc();
        }
    }

    pub(crate) fn execution(&self, outcome: &'static str) {
        self.0
            .executions
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
    }

    pub(crate) fn done(&self, attempts: u32, enqueue_to_done_secs: f64) {
        self.0
            .enqueue_to_done
            .observe(enqueue_to_done_secs.max(0.0));
        self.0.attempts.observe(f64::from(attempts));
    }

    pub(crate) fn dead(&self, attempts: u32) {
        self.0.dead_letters.inc();
        self.0.attempts.observe(f64::from(attempts));
    }

    /// Jobs by state (each state's name, as the store writes it).
    pub(crate) fn set_counts(&self, counts: &[(&'static str, u64)]) {
        for (state, n) in counts {
            self.0
                .jobs
                .get_or_create(&StateLabel { state })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Jobs waiting per upstream; upstreams no longer listed drop out (FullStory is always shown).
    pub(crate) fn set_waiting(&self, waiting: &[(String, u64)]) {
        self.0.waiting.clear();
        self.0
            .waiting
            .get_or_create(&UpstreamLabel {
                upstream: "fullstory".into(),
            })
            .set(0);
        for (upstream, n) in waiting {
            self.0
                .waiting
                .get_or_create(&UpstreamLabel {
                    upstream: upstream.clone(),
                })
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    pub(crate) fn expired(&self) {
        self.0.expired.inc();
    }

    /// Duplicates refused so far (for tests and logs).
    pub fn duplicates(&self) -> u64 {
        self.0.duplicates.get()
    }

    /// Dead letters so far (for tests and logs).
    pub fn dead_letters(&self) -> u64 {
        self.0.dead_letters.get()
    }
}
