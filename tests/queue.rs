//! The store and the job queue, tested end to end against both backends.
//!
//! Every test body runs twice, as `<test name>::sqlite` (a fresh database
//! file in a temporary directory) and `<test name>::postgres` (a fresh schema
//! `t_<uuid>` in the database at `REPLAYDESK_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, dropped afterwards). When
//! PostgreSQL is unreachable the postgres variants fail with a message
//! saying so: they never skip.
//!
//! Time is a `ManualClock` wherever the test is about time (leases, backoff,
//! retention), so nothing waits for real seconds; tests about concurrency,
//! wake-ups and shutdown use the system clock with bounds generous enough
//! not to flake on a loaded two-core machine.
//!
//! `enqueue_durability_benchmark` is `#[ignore]`d: run it with
//! `cargo test --release --test queue -- --ignored --nocapture`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use async_trait::async_trait;
use chrono::Utc;
use replaydesk::cli::jobs::{self as cli, JobsCommand};
use replaydesk::clock::{Clock, ManualClock};
use replaydesk::metrics::QueueMetrics;
use replaydesk::queue::{
    self, Effect, ExecutionOutcome, JobContext, JobError, JobHandler, Queue, RunJob, Settings,
};
use replaydesk::store::{
    self, Durability, EffectState, Enqueued, JobState, Lease, Ledgering, NewJob, NextClaim,
    SqlStore, StoreOptions, StoredJob,
};
use serde_json::json;
use tokio::sync::watch;

// ---------------------------------------------------------------- harness

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh database for one test.
struct TestDb {
    backend: Backend,
    store: Arc<SqlStore>,
    url: String,
    options: StoreOptions,
    _dir: Option<Arc<tempfile::TempDir>>,
}

impl TestDb {
    /// Another store on the same database, as a second process would open it.
    async fn reopen(&self) -> Arc<SqlStore> {
        store::open_with(&self.url, self.options.clone())
            .await
            .expect("reopening the test store")
    }
}

fn postgres_url() -> String {
    std::env::var("REPLAYDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn open_test_db(backend: Backend) -> TestDb {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("replaydesk.db").display());
            let options = StoreOptions::default();
            let store = store::open_with(&url, options.clone())
                .await
                .expect("opening a SQLite test store");
            TestDb {
                backend,
                store,
                url,
                options,
                _dir: Some(Arc::new(dir)),
            }
        }
        Backend::Postgres => {
            let url = postgres_url();
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let options = StoreOptions {
                pg_schema: Some(schema),
                ..StoreOptions::default()
            };
            let store = match store::open_with(&url, options.clone()).await {
                Ok(store) => store,
                Err(error) => panic!(
                    "PostgreSQL test store at {} could not be opened: {error:#}\n\
                     Start PostgreSQL or point REPLAYDESK_TEST_POSTGRES_URL at one; \
                     the postgres variants never skip.",
                    store::redact_url(&url)
                ),
            };
            TestDb {
                backend,
                store,
                url,
                options,
                _dir: None,
            }
        }
    }
}

async fn drop_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(url).await else {
        return;
    };
    let _ = sqlx::query("SET lock_timeout = '5s'")
        .execute(&mut conn)
        .await;
    let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
    if let Err(error) = sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
    {
        eprintln!("could not drop test schema {schema}: {error}");
    }
    let _ = conn.close().await;
}

/// Runs `body` on a fresh database of `backend`, then closes and (for
/// PostgreSQL) drops it, whether the body passed or panicked.
async fn run_test<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let db = open_test_db(backend).await;
    let store = db.store.clone();
    let url = db.url.clone();
    let schema = db.options.pg_schema.clone();
    let dir = db._dir.clone();
    let outcome = tokio::spawn(body(db)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), store.close()).await;
    if let Some(schema) = schema {
        drop_schema(&url, &schema).await;
    }
    drop(dir);
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// `both_backends!(name, …)` turns each `async fn name(db: TestDb)` into the
/// tests `name::sqlite` and `name::postgres`.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run_test(Backend::Sqlite, super::$name).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run_test(Backend::Postgres, super::$name).await
                }
            }
        )*
    };
}

/// Polls `check` every 20 ms until it holds, failing after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn job(store: &Arc<SqlStore>, id: i64) -> StoredJob {
    store.get_job(id).await.unwrap().expect("job exists")
}

async fn state_of(store: &Arc<SqlStore>, id: i64) -> JobState {
    job(store, id).await.state
}

fn new_queue(
    db: &TestDb,
    handlers: Vec<Arc<dyn JobHandler>>,
    settings: Settings,
    clock: Clock,
) -> Queue {
    Queue::new(
        db.store.clone(),
        handlers,
        settings,
        clock,
        QueueMetrics::default(),
    )
    .unwrap()
}

/// Settings for step-by-step tests: the step function ignores workers,
/// polling and grace anyway.
fn step_settings() -> Settings {
    Settings {
        workers: 1,
        ..Settings::default()
    }
}

/// Settings for tests of running workers: `workers` of them, none polling within a test (60 s), so
/// only wake-ups, hand-offs and claims with a completion run jobs.
fn unpolled(workers: usize) -> Settings {
    Settings {
        workers,
        poll_interval: Duration::from_secs(60),
        ..Settings::default()
    }
}

// ---------------------------------------------------------------- fakes

#[derive(Clone, Debug)]
enum Step {
    Succeed,
    Retry(&'static str),
    Permanent(&'static str),
    Panic(&'static str),
    Sleep(Duration),
    /// FullStory is down: wait for it (an hour more at each run).
    WaitForFullStory,
    Expire(&'static str),
}

type Script = Box<dyn Fn(&JobContext) -> Step + Send + Sync>;

/// A handler that does what its script says and records what happened.
struct Scripted {
    kind: &'static str,
    script: Script,
    runs: Mutex<HashMap<i64, u32>>,
    dead: Mutex<Vec<(i64, String)>>,
}

impl Scripted {
    fn new(
        kind: &'static str,
        script: impl Fn(&JobContext) -> Step + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Self {
            kind,
            script: Box::new(script),
            runs: Mutex::new(HashMap::new()),
            dead: Mutex::new(Vec::new()),
        })
    }

    fn always(kind: &'static str, step: Step) -> Arc<Self> {
        Self::new(kind, move |_| step.clone())
    }

    fn runs(&self) -> HashMap<i64, u32> {
        self.runs.lock().unwrap().clone()
    }

    fn dead_calls(&self) -> Vec<(i64, String)> {
        self.dead.lock().unwrap().clone()
    }
}

#[async_trait]
impl JobHandler for Scripted {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let runs = {
            let mut all = self.runs.lock().unwrap();
            let runs = all.entry(job.id()).or_default();
            *runs += 1;
            *runs
        };
        let step = (self.script)(job);
        match step {
            Step::Succeed => Ok(()),
            Step::Retry(message) => Err(anyhow!(message).into()),
            Step::Permanent(message) => Err(JobError::permanent(anyhow!(message))),
            Step::Panic(message) => panic!("{message}"),
            Step::Sleep(duration) => {
                tokio::time::sleep(duration).await;
                Ok(())
            }
            // An hour more at each run.
            Step::WaitForFullStory => Err(JobError::Wait {
                upstream: "fullstory",
                until: job.enqueued_at() + chrono::Duration::hours(i64::from(runs)),
                error: anyhow!("FullStory is unavailable (503) after several attempts"),
            }),
            Step::Expire(message) => Err(JobError::Expired(anyhow!(message))),
        }
    }

    async fn on_dead(&self, job: &JobContext, error: &str) {
        self.dead.lock().unwrap().push((job.id(), error.to_owned()));
    }
}

/// A platform that remembers what was posted under which marker.
#[derive(Default)]
struct FakePlatform {
    posted: Mutex<HashMap<String, String>>,
    performed: Mutex<Vec<String>>,
    looked_up: Mutex<Vec<String>>,
    next_id: AtomicU32,
}

impl FakePlatform {
    fn performed(&self) -> Vec<String> {
        self.performed.lock().unwrap().clone()
    }

    fn looked_up(&self) -> Vec<String> {
        self.looked_up.lock().unwrap().clone()
    }
}

#[async_trait]
impl Effect for FakePlatform {
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>> {
        self.looked_up.lock().unwrap().push(marker.to_owned());
        Ok(self.posted.lock().unwrap().get(marker).cloned())
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        self.performed.lock().unwrap().push(marker.to_owned());
        let id = format!("ext-{}", self.next_id.fetch_add(1, Ordering::SeqCst) + 1);
        self.posted
            .lock()
            .unwrap()
            .insert(marker.to_owned(), id.clone());
        Ok(id)
    }
}

/// Posts a note through the ledger; optionally fails its first attempt
/// right after posting.
struct NotePoster {
    platform: Arc<FakePlatform>,
    fail_first_attempt_after_posting: bool,
    results: Mutex<Vec<String>>,
}

impl NotePoster {
    fn new(platform: Arc<FakePlatform>, fail_first_attempt_after_posting: bool) -> Arc<Self> {
        Arc::new(Self {
            platform,
            fail_first_attempt_after_posting,
            results: Mutex::new(Vec::new()),
        })
    }
}

#[async_trait]
impl JobHandler for NotePoster {
    fn kind(&self) -> &'static str {
        "note"
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let id = job.effects().once("note", self.platform.as_ref()).await?;
        self.results.lock().unwrap().push(id);
        if self.fail_first_attempt_after_posting && job.attempt() == 1 {
            return Err(anyhow!("platform timed out after the note was posted").into());
        }
        Ok(())
    }
}

/// What one attempt of a [`WaitingPoster`] does.
#[derive(Clone, Copy, Debug)]
enum PosterStep {
    /// Meets an outage before posting.
    WaitBeforePosting,
    /// Posts, then meets an outage.
    WaitAfterPosting,
    /// Posts, and the platform's answer never comes back (an error, after the post).
    PostTimesOut,
    /// Posts.
    Post,
}

/// A post that reaches the platform and then times out.
struct TimesOut<'a>(&'a FakePlatform);

#[async_trait]
impl Effect for TimesOut<'_> {
    async fn find_existing(&self, marker: &str) -> anyhow::Result<Option<String>> {
        self.0.find_existing(marker).await
    }

    async fn perform(&self, marker: &str) -> anyhow::Result<String> {
        self.0.perform(marker).await?;
        Err(anyhow!("the platform timed out"))
    }
}

/// Posts a note through the ledger, each attempt as its script says.
struct WaitingPoster {
    platform: Arc<FakePlatform>,
    script: Mutex<std::collections::VecDeque<PosterStep>>,
    /// The ledger as each attempt saw it after posting (`Effects::records`).
    seen: Mutex<Vec<Vec<SeenEffect>>>,
}

/// An effect as a job saw it in its ledger: name, state, external id.
type SeenEffect = (String, EffectState, Option<String>);

impl WaitingPoster {
    fn new(platform: Arc<FakePlatform>, script: &[PosterStep]) -> Arc<Self> {
        Arc::new(Self {
            platform,
            script: Mutex::new(script.iter().copied().collect()),
            seen: Mutex::default(),
        })
    }
}

#[async_trait]
impl JobHandler for WaitingPoster {
    fn kind(&self) -> &'static str {
        "note"
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let step = self.script.lock().unwrap().pop_front().expect("a step");
        let wait = || JobError::Wait {
            upstream: "fullstory",
            until: Utc::now(),
            error: anyhow!("503"),
        };
        if let PosterStep::WaitBeforePosting = step {
            return Err(wait());
        }
        if let PosterStep::PostTimesOut = step {
            job.effects()
                .once("note", &TimesOut(&self.platform))
                .await?;
        }
        job.effects().once("note", self.platform.as_ref()).await?;
        let records = job.effects().records().await?;
        self.seen.lock().unwrap().push(
            records
                .into_iter()
                .map(|r| (r.name, r.state, r.external_id))
                .collect(),
        );
        match step {
            PosterStep::WaitAfterPosting => Err(wait()),
            _ => Ok(()),
        }
    }
}

/// Posts a note, then gives up; its `on_dead` asks the ledger for the note again (as the Zendesk
/// and Intercom handlers do before their last note).
struct NoteThenGiveUp {
    platform: Arc<FakePlatform>,
    seen_on_dead: Mutex<Vec<String>>,
}

#[async_trait]
impl JobHandler for NoteThenGiveUp {
    fn kind(&self) -> &'static str {
        "note"
    }

    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        job.effects().once("note", self.platform.as_ref()).await?;
        Err(JobError::permanent(anyhow!("the ticket was deleted")))
    }

    async fn on_dead(&self, job: &JobContext, _error: &str) {
        let id = job.effects().once("note", self.platform.as_ref()).await;
        self.seen_on_dead.lock().unwrap().push(id.unwrap());
    }
}

// ---------------------------------------------------------------- tests

both_backends!(
    an_outage_makes_a_job_wait_without_spending_attempts_however_long_it_lasts,
    when_an_upstream_is_back_its_waiting_jobs_run_at_once_oldest_first,
    a_job_past_its_deadline_is_expired_not_dead_and_can_be_retried,
    an_enqueued_job_is_claimed_run_and_completed,
    a_duplicate_delivery_key_gives_one_job_and_says_duplicate,
    a_batch_commits_together_and_a_key_repeated_in_it_is_a_duplicate,
    every_delivery_key_stays_with_its_own_job_whatever_the_batches,
    concurrent_enqueues_are_group_committed_with_one_job_per_key,
    a_writer_held_across_batches_commits_each_before_the_next,
    a_claim_gets_the_writer_while_deliveries_keep_coming,
    an_attempts_audit_entry_is_written_with_its_outcome_whatever_it_is,
    four_workers_run_a_thousand_jobs_exactly_once,
    an_expired_lease_is_claimed_again_and_the_old_owner_cannot_finish,
    a_worker_whose_lease_was_taken_over_stops_the_job_and_records_nothing,
    retries_back_off_exponentially_within_jitter_up_to_the_cap,
    the_attempt_cap_makes_a_job_dead_and_calls_on_dead_once,
    a_job_whose_last_attempt_died_with_its_worker_is_dead_not_run_again,
    a_panicking_job_is_a_recorded_failure,
    a_permanent_error_makes_a_job_dead_at_once,
    a_job_of_an_unknown_kind_is_dead_with_a_clear_error,
    a_typed_job_is_stored_under_its_kind_and_its_handler_gets_it_decoded,
    a_payload_that_does_not_fit_its_kind_is_dead_at_once_naming_the_field,
    dead_jobs_are_listed_without_emails_and_can_be_retried_from_the_cli,
    the_effect_ledger_performs_once_and_a_rerun_gets_the_recorded_id,
    an_effect_intent_without_an_external_id_is_looked_up_before_acting_again,
    a_handed_jobs_first_attempt_writes_no_intent_and_records_its_effects_with_its_outcome,
    a_later_attempt_of_a_handed_job_looks_for_an_unrecorded_effect_before_doing_it,
    a_claimed_jobs_first_run_writes_no_intent_and_a_wait_before_any_effect_keeps_it_first,
    retention_scrubs_old_done_and_dead_payloads_and_keeps_recent_ones_and_delivery_keys,
    graceful_shutdown_releases_the_leases_of_unfinished_jobs,
    graceful_shutdown_lets_a_running_job_finish_within_the_grace_period,
    an_idle_worker_is_woken_by_enqueue_well_before_the_poll_interval,
    an_idle_workers_job_is_claimed_in_its_deliverys_commit_and_a_busy_ones_is_queued,
    a_job_leased_in_its_delivery_is_claimed_again_only_once_its_lease_runs_out,
    completing_a_job_can_claim_the_next_in_the_same_commit,
    a_worker_runs_a_backlog_claiming_each_job_with_the_last_ones_completion,
    a_job_stored_by_another_process_is_found_without_an_in_process_wake_up,
    reopening_a_store_keeps_its_jobs_and_runs_no_migration_twice,
);

async fn an_enqueued_job_is_claimed_run_and_completed(db: TestDb) {
    db.store.ping().await.unwrap();
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("greet", Step::Succeed);
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = QueueMetrics::register(&mut registry);
    let queue = Queue::new(
        db.store.clone(),
        vec![handler.clone()],
        step_settings(),
        clock.clock(),
        metrics,
    )
    .unwrap();

    let enqueued = queue
        .enqueue(
            "test:1",
            NewJob::new("greet", json!({"email": "jane@example.com"})),
        )
        .await
        .unwrap();
    assert!(!enqueued.duplicate);
    let queued = job(&db.store, enqueued.job_id).await;
    assert_eq!(queued.state, JobState::Queued);
    assert_eq!(queued.attempts, 0);
    assert_eq!(queued.delivery_key.as_deref(), Some("test:1"));
    assert_eq!(queued.enqueued_at, clock.now());

    clock.advance(Duration::from_millis(1_500));
    let outcome = queue.try_execute_one("w1").await.unwrap();
    assert_eq!(outcome, ExecutionOutcome::Done(enqueued.job_id));
    let done = job(&db.store, enqueued.job_id).await;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.attempts, 1);
    assert_eq!(done.finished_at, Some(clock.now()));
    assert_eq!(done.lock_owner, None);
    assert_eq!(done.payload, json!({"email": "jane@example.com"}));
    assert_eq!(handler.runs(), HashMap::from([(enqueued.job_id, 1)]));
    assert_eq!(
        queue.try_execute_one("w1").await.unwrap(),
        ExecutionOutcome::EmptyQueue
    );

    queue.refresh_metrics().await.unwrap();
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("replaydesk_queue_enqueued_total 1"), "{text}");
    assert!(
        text.contains("replaydesk_queue_jobs{state=\"done\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("replaydesk_queue_jobs{state=\"queued\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("replaydesk_queue_executions_total{outcome=\"done\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("replaydesk_queue_enqueue_to_done_seconds_sum 1.5"),
        "{text}"
    );
}

async fn a_batch_commits_together_and_a_key_repeated_in_it_is_a_duplicate(db: TestDb) {
    let now = Utc::now();
    db.store
        .enqueue("k:old", NewJob::new("lookup", json!({})), now)
        .await
        .unwrap();
    let results = db
        .store
        .enqueue_batch(
            &[
                ("k:a".into(), NewJob::new("lookup", json!({"n": 1}))),
                ("k:old".into(), NewJob::new("lookup", json!({"n": 2}))),
                ("k:a".into(), NewJob::new("lookup", json!({"n": 3}))),
                ("k:b".into(), NewJob::new("lookup", json!({"n": 4}))),
            ],
            now,
        )
        .await
        .unwrap();
    let duplicate: Vec<bool> = results.iter().map(|r| r.duplicate).collect();
    assert_eq!(duplicate, [false, true, true, false]);
    assert_eq!(results[2].job_id, results[0].job_id);
    let jobs = db.store.list_jobs(None, 100).await.unwrap();
    assert_eq!(jobs.len(), 3, "k:old, k:a and k:b");
    let a = db.store.get_job(results[0].job_id).await.unwrap().unwrap();
    assert_eq!(a.payload, json!({"n": 1}), "the first occurrence wins");
}

/// Batches of new keys, of known keys only, of both with a key repeated, of one key, and larger
/// than the prepared sizes: afterwards every key answers its first job, and that job carries the key
/// (SQLite records a batch's keys from the ids its INSERT gave: a range that must hold its jobs, and
/// none when the batch brought no new key).
async fn every_delivery_key_stays_with_its_own_job_whatever_the_batches(db: TestDb) {
    let now = Utc::now();
    let mut first: std::collections::BTreeMap<String, i64> = Default::default();
    let batches: Vec<Vec<String>> = vec![
        vec!["a", "b", "c"],
        vec!["a", "b"],
        vec!["d", "a", "e", "d"],
        vec!["f"],
        vec!["c"],
        vec!["g", "h", "b", "i", "j", "k", "l", "m", "n", "o", "e", "p"],
    ]
    .into_iter()
    .map(|keys| keys.into_iter().map(|k| format!("k:{k}")).collect())
    .collect();
    for keys in &batches {
        let items: Vec<(String, NewJob)> = keys
            .iter()
            .map(|key| (key.clone(), NewJob::new("lookup", json!({ "key": key }))))
            .collect();
        let results = db.store.enqueue_batch(&items, now).await.unwrap();
        for (key, result) in keys.iter().zip(&results) {
            match first.get(key) {
                Some(id) => {
                    assert!(result.duplicate, "{key} in {keys:?}");
                    assert_eq!(result.job_id, *id, "{key} in {keys:?}");
                }
                None => {
                    assert!(!result.duplicate, "{key} in {keys:?}");
                    first.insert(key.clone(), result.job_id);
                }
            }
        }
    }
    assert_eq!(first.len(), 16);
    let mut ids: Vec<i64> = first.values().copied().collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 16, "one job per key");
    assert_eq!(db.store.list_jobs(None, 100).await.unwrap().len(), 16);
    // Read back from the store, by another process: each key's record names its own job.
    let other = db.reopen().await;
    for (key, id) in &first {
        let again = other
            .enqueue(key, NewJob::new("lookup", json!({})), now)
            .await
            .unwrap();
        assert_eq!((again.job_id, again.duplicate), (*id, true), "{key}");
        let job = other.get_job(*id).await.unwrap().unwrap();
        assert_eq!(job.delivery_key.as_deref(), Some(key.as_str()));
        assert_eq!(job.payload, json!({ "key": key }));
    }
}

async fn concurrent_enqueues_are_group_committed_with_one_job_per_key(db: TestDb) {
    let mut registry = prometheus_client::registry::Registry::default();
    let queue = Queue::new(
        db.store.clone(),
        vec![],
        step_settings(),
        Clock::system(),
        QueueMetrics::register(&mut registry),
    )
    .unwrap();
    // 300 deliveries at once over 100 keys: each key three times (a platform retrying).
    let tasks: Vec<_> = (0..300)
        .map(|i| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let key = format!("k:{}", i % 100);
                let result = queue
                    .enqueue(&key, NewJob::new("lookup", json!({ "i": i })))
                    .await
                    .unwrap();
                (key, result)
            })
        })
        .collect();
    let mut by_key: std::collections::HashMap<String, Vec<Enqueued>> = Default::default();
    for task in tasks {
        let (key, result) = task.await.unwrap();
        by_key.entry(key).or_default().push(result);
    }
    assert_eq!(by_key.len(), 100);
    for (key, results) in &by_key {
        assert_eq!(
            results.iter().filter(|r| !r.duplicate).count(),
            1,
            "{key}: one new job"
        );
        assert!(
            results.iter().all(|r| r.job_id == results[0].job_id),
            "{key}: one job id"
        );
    }
    assert_eq!(db.store.list_jobs(None, 1000).await.unwrap().len(), 100);
    // Every delivery went through exactly one group commit, and the commits are counted.
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("replaydesk_queue_commit_batch_size_sum 300.0"),
        "{text}"
    );
    let commits: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("replaydesk_queue_commit_batch_size_count "))
        .and_then(|n| n.trim().parse().ok())
        .expect("the commits are counted");
    assert!((1..=300).contains(&commits), "{commits} commits");
}

async fn a_writer_held_across_batches_commits_each_before_the_next(db: TestDb) {
    let now = Utc::now();
    let mut writer = db.store.writer().await.unwrap();
    let first = db
        .store
        .enqueue_batch_on(
            &mut writer,
            &[
                ("k:a".into(), NewJob::new("lookup", json!({"n": 1}))),
                ("k:b".into(), NewJob::new("lookup", json!({"n": 2}))),
            ],
            now,
        )
        .await
        .unwrap();
    // Committed while the writer is still held: another connection (a second process) reads it.
    let other = db.reopen().await;
    assert_eq!(other.list_jobs(None, 10).await.unwrap().len(), 2);
    let second = db
        .store
        .enqueue_batch_on(
            &mut writer,
            &[
                ("k:b".into(), NewJob::new("lookup", json!({"n": 3}))),
                ("k:c".into(), NewJob::new("lookup", json!({"n": 4}))),
            ],
            now,
        )
        .await
        .unwrap();
    assert!(first.iter().all(|r| !r.duplicate));
    assert!(second[0].duplicate, "k:b was stored by the batch before");
    assert_eq!(second[0].job_id, first[1].job_id);
    assert!(!second[1].duplicate);
    assert_eq!(other.list_jobs(None, 10).await.unwrap().len(), 3);
    other.close().await;
    drop(writer);
    // Given back: the store's other writes go on.
    db.store
        .enqueue("k:d", NewJob::new("lookup", json!({})), now)
        .await
        .unwrap();
    assert_eq!(db.store.list_jobs(None, 10).await.unwrap().len(), 4);
}

/// The group commit holds the write connection from batch to batch while deliveries keep coming; a
/// claim (on SQLite, a writer of the same one connection) still gets its turn while they do.
async fn a_claim_gets_the_writer_while_deliveries_keep_coming(db: TestDb) {
    let mut registry = prometheus_client::registry::Registry::default();
    let queue = Queue::new(
        db.store.clone(),
        vec![Scripted::always("lookup", Step::Succeed)],
        step_settings(),
        Clock::system(),
        QueueMetrics::register(&mut registry),
    )
    .unwrap();
    queue
        .enqueue("k:first", NewJob::new("lookup", json!({})))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stored = Arc::new(AtomicU32::new(0));
    // 64 senders, each sending its next delivery as soon as the last is stored: some are always
    // waiting for the next commit.
    let senders: Vec<_> = (0..64)
        .map(|sender| {
            let (queue, stop, stored) = (queue.clone(), stop.clone(), stored.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("k:{sender}:{n}");
                    queue
                        .enqueue(&key, NewJob::new("lookup", json!({})))
                        .await
                        .unwrap();
                    stored.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
            })
        })
        .collect();
    eventually("deliveries flowing", Duration::from_secs(10), || {
        let stored = stored.clone();
        async move { stored.load(Ordering::SeqCst) >= 500 }
    })
    .await;
    let claimed = tokio::time::timeout(Duration::from_secs(10), queue.try_execute_one("w1")).await;
    let while_flowing = stored.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.unwrap();
    }
    let outcome = claimed
        .expect("the claim got the write connection while deliveries kept coming")
        .unwrap();
    assert!(
        matches!(outcome, ExecutionOutcome::Done(_)),
        "the oldest job ran: {outcome:?}"
    );
    assert!(while_flowing >= 500, "{while_flowing} deliveries stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_of_another_kind_of_store_is_refused() {
    run_test(Backend::Postgres, |db| async move {
        let sqlite = store::open_with("sqlite::memory:", StoreOptions::default())
            .await
            .unwrap();
        let job = [("k:a".to_owned(), NewJob::new("lookup", json!({})))];
        let mut sqlite_writer = sqlite.writer().await.unwrap();
        let error = db
            .store
            .enqueue_batch_on(&mut sqlite_writer, &job, Utc::now())
            .await
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("another kind of store"),
            "{error:#}"
        );
        drop(sqlite_writer);
        let mut postgres_writer = db.store.writer().await.unwrap();
        assert!(
            sqlite
                .enqueue_batch_on(&mut postgres_writer, &job, Utc::now())
                .await
                .is_err()
        );
        drop(postgres_writer);
        assert!(db.store.list_jobs(None, 10).await.unwrap().is_empty());
        assert!(sqlite.list_jobs(None, 10).await.unwrap().is_empty());
        sqlite.close().await;
    })
    .await
}

/// A batch that fails stores nothing and tells its callers, and the group commit goes on: the next
/// delivery is stored, and the refused one's key was not kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failed_batch_the_group_commit_stores_the_next_delivery() {
    run_test(Backend::Sqlite, |db| async move {
        use sqlx::Connection;
        let mut raw = sqlx::SqliteConnection::connect(&db.url).await.unwrap();
        sqlx::query(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON jobs WHEN NEW.kind = 'poison' \
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END",
        )
        .execute(&mut raw)
        .await
        .unwrap();
        raw.close().await.unwrap();
        let queue = new_queue(&db, vec![], step_settings(), Clock::system());
        let error = queue
            .enqueue("k:poison", NewJob::new("poison", json!({})))
            .await
            .unwrap_err();
        assert!(format!("{error:#}").contains("poisoned"), "{error:#}");
        let next = queue
            .enqueue("k:next", NewJob::new("lookup", json!({})))
            .await
            .unwrap();
        assert!(!next.duplicate);
        let jobs = db.store.list_jobs(None, 10).await.unwrap();
        assert_eq!(jobs.len(), 1, "only the next delivery is stored");
        assert_eq!(jobs[0].id, next.job_id);
        // The refused delivery's key was not kept: sent again, it is new.
        sqlx::query("DROP TRIGGER refuse_poison")
            .execute(&mut sqlx::SqliteConnection::connect(&db.url).await.unwrap())
            .await
            .unwrap();
        let again = queue
            .enqueue("k:poison", NewJob::new("poison", json!({})))
            .await
            .unwrap();
        assert!(!again.duplicate);
    })
    .await
}

async fn a_duplicate_delivery_key_gives_one_job_and_says_duplicate(db: TestDb) {
    let queue = new_queue(&db, vec![], step_settings(), Clock::system());
    let first = queue
        .enqueue("slack:Ev1", NewJob::new("lookup", json!({"n": 1})))
        .await
        .unwrap();
    let again = queue
        .enqueue("slack:Ev1", NewJob::new("lookup", json!({"n": 2})))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(again.job_id, first.job_id);
    assert_eq!(job(&db.store, first.job_id).await.payload, json!({"n": 1}));

    // Concurrent retries of one delivery, e.g. from two replicas.
    let attempts = (0..8).map(|i| {
        let queue = queue.clone();
        tokio::spawn(async move {
            queue
                .enqueue("zendesk:race", NewJob::new("lookup", json!({"i": i})))
                .await
                .unwrap()
        })
    });
    let results: Vec<_> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        results.iter().filter(|r| !r.duplicate).count(),
        1,
        "{results:?}"
    );
    let ids: HashSet<i64> = results.iter().map(|r| r.job_id).collect();
    assert_eq!(ids.len(), 1, "{results:?}");

    let all = db.store.list_jobs(None, 100).await.unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(queue.metrics().duplicates(), 8);
}

async fn four_workers_run_a_thousand_jobs_exactly_once(db: TestDb) {
    const JOBS: i64 = 1_000;
    let handler = Scripted::always("count", Step::Succeed);
    let settings = Settings {
        workers: 4,
        poll_interval: Duration::from_millis(200),
        ..Settings::default()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, Clock::system());
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;

    let started = Instant::now();
    let producers = (0..4).map(|p| {
        let queue = queue.clone();
        tokio::spawn(async move {
            for i in (p..JOBS).step_by(4) {
                let key = format!("bulk:{i}");
                let enqueued = queue
                    .enqueue(&key, NewJob::new("count", json!({"i": i})))
                    .await
                    .unwrap();
                assert!(!enqueued.duplicate);
            }
        })
    });
    for producer in futures_util::future::join_all(producers).await {
        producer.unwrap();
    }
    let store = db.store.clone();
    eventually("all jobs done", Duration::from_secs(120), || {
        let store = store.clone();
        async move {
            let counts = store.count_by_state().await.unwrap();
            counts.contains(&(JobState::Done, JOBS as u64))
        }
    })
    .await;
    let elapsed = started.elapsed();
    stop.send(true).unwrap();
    workers.join().await;

    let runs = handler.runs();
    assert_eq!(runs.len(), JOBS as usize);
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(twice.is_empty(), "jobs run more than once: {twice:?}");
    let done = db
        .store
        .list_jobs(Some(JobState::Done), 2_000)
        .await
        .unwrap();
    assert_eq!(done.len(), JOBS as usize);
    assert!(done.iter().all(|j| j.attempts == 1));
    eprintln!(
        "{:?}: 1,000 jobs enqueued and run by 4 workers in {elapsed:?}",
        db.backend
    );
}

async fn an_expired_lease_is_claimed_again_and_the_old_owner_cannot_finish(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("work", Step::Succeed);
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), clock.clock());
    let id = queue
        .enqueue("k:lease", NewJob::new("work", json!({})))
        .await
        .unwrap()
        .job_id;

    // A worker claims it and dies without a word.
    let lease = chrono::Duration::seconds(30);
    let claimed = db
        .store
        .claim("dead-worker", clock.now() + lease, clock.now())
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(claimed.id, id);
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.lock_owner.as_deref(), Some("dead-worker"));

    clock.advance(Duration::from_secs(29));
    assert_eq!(
        queue.try_execute_one("w2").await.unwrap(),
        ExecutionOutcome::EmptyQueue
    );
    clock.advance(Duration::from_secs(2));
    assert_eq!(
        queue.try_execute_one("w2").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    let done = job(&db.store, id).await;
    assert_eq!(done.state, JobState::Done);
    assert_eq!(done.attempts, 2);

    // The first worker comes back: nothing it says changes the job.
    let now = clock.now();
    assert!(!db.store.complete(id, "dead-worker", now).await.unwrap());
    assert!(
        !db.store
            .retry_later(id, "dead-worker", now, "late", now)
            .await
            .unwrap()
    );
    assert!(
        !db.store
            .mark_dead(id, "dead-worker", "late", now)
            .await
            .unwrap()
    );
    assert!(!db.store.release(id, "dead-worker", now).await.unwrap());
    assert!(
        !db.store
            .renew_lease(id, "dead-worker", now + lease)
            .await
            .unwrap()
    );
    assert_eq!(job(&db.store, id).await, done);
}

async fn a_worker_whose_lease_was_taken_over_stops_the_job_and_records_nothing(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("slow", Step::Sleep(Duration::from_secs(60)));
    let settings = Settings {
        lease: Duration::from_millis(300),
        ..step_settings()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, clock.clock());
    let id = queue
        .enqueue("k:stolen", NewJob::new("slow", json!({})))
        .await
        .unwrap()
        .job_id;
    let running = tokio::spawn({
        let queue = queue.clone();
        async move { queue.try_execute_one("w1").await.unwrap() }
    });
    let store = db.store.clone();
    eventually("the job to be running", Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, id).await == JobState::Running }
    })
    .await;

    // Time jumps past the lease (say the worker was frozen) and another
    // worker takes the job over.
    clock.advance(Duration::from_secs(3_600));
    let stolen = db
        .store
        .claim(
            "thief",
            clock.now() + chrono::Duration::seconds(30),
            clock.now(),
        )
        .await
        .unwrap()
        .expect("lapsed lease is claimable");
    assert_eq!(stolen.id, id);

    let outcome = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the first worker noticed within its renewal period")
        .unwrap();
    assert_eq!(outcome, ExecutionOutcome::LeaseLost(id));
    let now = job(&db.store, id).await;
    assert_eq!(now.state, JobState::Running);
    assert_eq!(now.lock_owner.as_deref(), Some("thief"));
}

async fn retries_back_off_exponentially_within_jitter_up_to_the_cap(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("flaky", Step::Retry("upstream 503"));
    let settings = Settings {
        max_attempts: 8,
        backoff_base: Duration::from_secs(2),
        backoff_cap: Duration::from_secs(20),
        ..step_settings()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, clock.clock());
    let id = queue
        .enqueue("k:backoff", NewJob::new("flaky", json!({})))
        .await
        .unwrap()
        .job_id;

    let mut previous = Duration::ZERO;
    for attempt in 1..=7u32 {
        assert_eq!(
            queue.try_execute_one("w").await.unwrap(),
            ExecutionOutcome::Retrying(id)
        );
        let retrying = job(&db.store, id).await;
        assert_eq!(retrying.state, JobState::Queued);
        assert_eq!(retrying.attempts, attempt);
        assert_eq!(retrying.last_error.as_deref(), Some("upstream 503"));
        let delay = (retrying.run_after - clock.now()).to_std().unwrap();
        let nominal = 2.0 * 2f64.powi(attempt as i32 - 1);
        let low = Duration::from_secs_f64((0.8 * nominal).min(20.0));
        let high = Duration::from_secs_f64(nominal.min(20.0));
        let slack = Duration::from_millis(1); // stored in whole milliseconds
        assert!(
            delay + slack >= low && delay <= high,
            "attempt {attempt}: delay {delay:?} outside [{low:?}, {high:?}]"
        );
        assert!(
            delay >= previous,
            "attempt {attempt}: {delay:?} < {previous:?}"
        );
        previous = delay;

        // Not a millisecond early.
        clock.set(retrying.run_after - chrono::Duration::milliseconds(1));
        assert_eq!(
            queue.try_execute_one("w").await.unwrap(),
            ExecutionOutcome::EmptyQueue
        );
        clock.set(retrying.run_after);
    }
    assert_eq!(previous, Duration::from_secs(20), "capped");
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(id)
    );
}

async fn the_attempt_cap_makes_a_job_dead_and_calls_on_dead_once(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("flaky", Step::Retry("flaky upstream"));
    let settings = Settings {
        max_attempts: 3,
        ..step_settings()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings.clone(), clock.clock());
    let id = queue
        .enqueue("k:cap", NewJob::new("flaky", json!({})))
        .await
        .unwrap()
        .job_id;
    let mut outcomes = Vec::new();
    for _ in 0..3 {
        outcomes.push(queue.try_execute_one("w").await.unwrap());
        clock.advance(settings.backoff_cap);
    }
    assert_eq!(
        outcomes,
        [
            ExecutionOutcome::Retrying(id),
            ExecutionOutcome::Retrying(id),
            ExecutionOutcome::Dead(id)
        ]
    );
    let dead = job(&db.store, id).await;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 3);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("gave up after 3 attempts: flaky upstream")
    );
    assert!(dead.finished_at.is_some());
    assert_eq!(
        handler.dead_calls(),
        [(id, "gave up after 3 attempts: flaky upstream".to_owned())]
    );
    assert_eq!(queue.metrics().dead_letters(), 1);

    clock.advance(Duration::from_secs(86_400));
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::EmptyQueue
    );
    assert_eq!(handler.runs()[&id], 3);
    assert_eq!(handler.dead_calls().len(), 1);
}

async fn a_job_whose_last_attempt_died_with_its_worker_is_dead_not_run_again(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("work", Step::Succeed);
    let settings = Settings {
        max_attempts: 1,
        ..step_settings()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, clock.clock());
    let id = queue
        .enqueue("k:last", NewJob::new("work", json!({})))
        .await
        .unwrap()
        .job_id;
    let lease = chrono::Duration::seconds(30);
    db.store
        .claim("crashed-worker", clock.now() + lease, clock.now())
        .await
        .unwrap()
        .unwrap();
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(id)
    );
    let dead = job(&db.store, id).await;
    assert!(
        dead.last_error
            .as_deref()
            .unwrap()
            .contains("lease expired"),
        "{dead:?}"
    );
    assert!(handler.runs().is_empty());
    assert_eq!(handler.dead_calls().len(), 1);
}

/// `JobContext::audit`: an entry is written in the transaction that marks the job done, and on its own
/// after any other outcome (here a panic), so an action taken is never left out of the audit log.
async fn an_attempts_audit_entry_is_written_with_its_outcome_whatever_it_is(db: TestDb) {
    let clock = ManualClock::starting_now();
    let at = clock.clock().now();
    let handler = Scripted::new("audited", move |job| {
        job.audit(store::AuditRecord {
            id: 0,
            at,
            action: "lookup".into(),
            platform: "slack".into(),
            tenant: "T1".into(),
            actor: "U1".into(),
            place: None,
            identities: vec!["hash".into()],
            sessions: 1,
            detail: Some(format!("attempt {}", job.attempt())),
        });
        if job.attempt() == 1 {
            Step::Panic("after the answer")
        } else {
            Step::Succeed
        }
    });
    let settings = Settings {
        max_attempts: 3,
        ..step_settings()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings.clone(), clock.clock());
    let id = queue
        .enqueue("k:audited", NewJob::new("audited", json!({})))
        .await
        .unwrap()
        .job_id;
    let details = |entries: Vec<store::AuditRecord>| {
        let mut details: Vec<String> = entries.into_iter().filter_map(|e| e.detail).collect();
        details.sort();
        details
    };

    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Retrying(id)
    );
    let entries = db.store.audit(None, None, 10).await.unwrap();
    assert_eq!(details(entries), ["attempt 1"], "written after the panic");

    clock.advance(settings.backoff_cap);
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    assert_eq!(job(&db.store, id).await.state, JobState::Done);
    let entries = db.store.audit(None, None, 10).await.unwrap();
    assert_eq!(
        details(entries),
        ["attempt 1", "attempt 2"],
        "written with the completion"
    );
}

async fn a_panicking_job_is_a_recorded_failure(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("boom", Step::Panic("kaboom in the handler"));
    let settings = Settings {
        max_attempts: 2,
        ..step_settings()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings.clone(), clock.clock());
    let id = queue
        .enqueue("k:panic", NewJob::new("boom", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Retrying(id)
    );
    let failed = job(&db.store, id).await;
    assert_eq!(failed.state, JobState::Queued);
    assert_eq!(
        failed.last_error.as_deref(),
        Some("job panicked: kaboom in the handler")
    );

    clock.advance(settings.backoff_cap);
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(id)
    );
    let dead = job(&db.store, id).await;
    assert_eq!(
        dead.last_error.as_deref(),
        Some("gave up after 2 attempts: job panicked: kaboom in the handler")
    );
    assert_eq!(handler.dead_calls().len(), 1);
}

async fn an_outage_makes_a_job_wait_without_spending_attempts_however_long_it_lasts(db: TestDb) {
    let clock = ManualClock::starting_now();
    let outage_runs = 10; // more than max_attempts (6)
    let handler = Scripted::new("lookup", move |job| {
        if job.attempt() == 1 && job.kind() == "lookup" {
            Step::WaitForFullStory
        } else {
            Step::Succeed
        }
    });
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), clock.clock());
    let id = queue
        .enqueue("k:outage", NewJob::new("lookup", json!({})))
        .await
        .unwrap()
        .job_id;
    for _ in 0..outage_runs {
        assert_eq!(
            queue.try_execute_one("w").await.unwrap(),
            ExecutionOutcome::Waiting(id)
        );
        let waiting = job(&db.store, id).await;
        assert_eq!(waiting.state, JobState::Queued);
        assert_eq!(waiting.attempts, 0, "a wait is not an attempt");
        assert_eq!(waiting.waiting_on.as_deref(), Some("fullstory"));
        assert!(
            waiting
                .last_error
                .as_deref()
                .unwrap_or_default()
                .starts_with("waiting: fullstory unavailable"),
            "{:?}",
            waiting.last_error
        );
        assert_eq!(
            queue.try_execute_one("w").await.unwrap(),
            ExecutionOutcome::EmptyQueue,
            "it waits until the time it was given"
        );
        clock.advance(Duration::from_secs(3601));
    }
    let listed = cli::render(
        JobsCommand::List {
            state: None,
            limit: 10,
        },
        db.store.as_ref(),
        clock.now(),
    )
    .await
    .unwrap();
    assert!(
        listed.contains("waiting: fullstory unavailable"),
        "{listed}"
    );
    assert!(handler.dead_calls().is_empty());
    assert_eq!(handler.runs()[&id], outage_runs);
}

async fn when_an_upstream_is_back_its_waiting_jobs_run_at_once_oldest_first(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("lookup", Step::WaitForFullStory);
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), clock.clock());
    let mut waiting = Vec::new();
    for key in ["k:a", "k:b", "k:c"] {
        let id = queue
            .enqueue(key, NewJob::new("lookup", json!({})))
            .await
            .unwrap()
            .job_id;
        waiting.push(id);
        clock.advance(Duration::from_secs(1));
    }
    // Run them newest first, so their waits end in the opposite order of their age.
    for _ in 0..3 {
        let outcome = queue.try_execute_one("w").await.unwrap();
        assert!(
            matches!(outcome, ExecutionOutcome::Waiting(_)),
            "{outcome:?}"
        );
        clock.advance(Duration::from_secs(1));
    }
    let fresh = queue
        .enqueue("k:fresh", NewJob::new("lookup", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        db.store.count_waiting().await.unwrap(),
        [("fullstory".to_owned(), 3)]
    );
    assert_eq!(
        db.store
            .wake_waiting("fullstory", clock.now())
            .await
            .unwrap(),
        3
    );
    let lease = clock.now() + chrono::Duration::seconds(30);
    let mut order = Vec::new();
    for i in 0..4 {
        let claimed = db
            .store
            .claim(&format!("o{i}"), lease, clock.now())
            .await
            .unwrap()
            .expect("due");
        order.push(claimed.id);
    }
    waiting.push(fresh);
    assert_eq!(order, waiting, "the waiting jobs first, oldest first");
}

async fn a_job_past_its_deadline_is_expired_not_dead_and_can_be_retried(db: TestDb) {
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("lookup", Step::Expire("the answer's deadline passed"));
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), clock.clock());
    let id = queue
        .enqueue("k:late", NewJob::new("lookup", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Expired(id)
    );
    let expired = job(&db.store, id).await;
    assert_eq!(expired.state, JobState::Expired);
    assert!(handler.dead_calls().is_empty(), "no 'gave up' message");
    let listed = cli::render(
        JobsCommand::List {
            state: Some(JobState::Expired),
            limit: 10,
        },
        db.store.as_ref(),
        clock.now(),
    )
    .await
    .unwrap();
    assert!(
        listed.contains("expired: the answer's deadline passed"),
        "{listed}"
    );
    let counts = db.store.count_by_state().await.unwrap();
    assert!(counts.contains(&(JobState::Expired, 1)), "{counts:?}");
    clock.advance(Duration::from_secs(60));
    let retried = cli::render(
        JobsCommand::Retry {
            id: Some(id),
            all_dead: false,
        },
        db.store.as_ref(),
        clock.now(),
    )
    .await
    .unwrap();
    assert!(retried.contains("queued again"), "{retried}");
    let again = job(&db.store, id).await;
    assert_eq!(again.state, JobState::Queued);
    assert_eq!(
        again.retried_at.map(|t| t.timestamp_millis()),
        Some(clock.now().timestamp_millis())
    );
}

async fn a_permanent_error_makes_a_job_dead_at_once(db: TestDb) {
    let handler = Scripted::always("strict", Step::Permanent("payload names no customer"));
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), Clock::system());
    let id = queue
        .enqueue("k:perm", NewJob::new("strict", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(id)
    );
    let dead = job(&db.store, id).await;
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(dead.attempts, 1);
    assert_eq!(
        dead.last_error.as_deref(),
        Some("permanent error: payload names no customer")
    );
    assert_eq!(
        handler.dead_calls(),
        [(id, "permanent error: payload names no customer".to_owned())]
    );
}

async fn a_job_of_an_unknown_kind_is_dead_with_a_clear_error(db: TestDb) {
    let handler = Scripted::always("known", Step::Succeed);
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), Clock::system());
    let id = queue
        .enqueue("k:mystery", NewJob::new("mystery", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(id)
    );
    let dead = job(&db.store, id).await;
    assert_eq!(
        dead.last_error.as_deref(),
        Some("no handler registered for job kind \"mystery\" (known kinds: known)")
    );
    assert!(handler.runs().is_empty());
}

/// A typed payload and its handler, which remembers what it was given.
#[derive(serde::Serialize, serde::Deserialize)]
struct Greet {
    name: String,
    times: u32,
}

impl queue::Job for Greet {
    const KIND: &'static str = "greet";
}

#[derive(Default)]
struct Greeter {
    greeted: Mutex<Vec<String>>,
    dead: Mutex<Vec<Option<String>>>,
}

#[async_trait]
impl RunJob for Greeter {
    type Job = Greet;

    async fn run(&self, _: &JobContext, job: Greet) -> Result<(), JobError> {
        let greeting = format!("{} ×{}", job.name, job.times);
        self.greeted.lock().unwrap().push(greeting);
        Ok(())
    }

    async fn on_dead(&self, _: &JobContext, job: Option<Greet>, _: &str) {
        self.dead.lock().unwrap().push(job.map(|j| j.name));
    }
}

async fn a_typed_job_is_stored_under_its_kind_and_its_handler_gets_it_decoded(db: TestDb) {
    let greeter = Arc::new(Greeter::default());
    let queue = new_queue(&db, vec![greeter.clone()], step_settings(), Clock::system());
    let greet = Greet {
        name: "Ada".into(),
        times: 2,
    };
    let id = queue.push("k:typed", &greet).await.unwrap().job_id;
    let stored = job(&db.store, id).await;
    assert_eq!(
        (stored.kind.as_str(), stored.payload),
        ("greet", json!({"name": "Ada", "times": 2}))
    );
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    assert_eq!(*greeter.greeted.lock().unwrap(), ["Ada ×2"]);
}

async fn a_payload_that_does_not_fit_its_kind_is_dead_at_once_naming_the_field(db: TestDb) {
    let greeter = Arc::new(Greeter::default());
    let queue = new_queue(&db, vec![greeter.clone()], step_settings(), Clock::system());
    let wrong_type = queue
        .enqueue(
            "k:wrong",
            NewJob::new("greet", json!({"name": "Ada", "times": "jane@acme.com"})),
        )
        .await
        .unwrap()
        .job_id;
    let missing = queue
        .enqueue("k:missing", NewJob::new("greet", json!({"name": "Ada"})))
        .await
        .unwrap()
        .job_id;
    for id in [wrong_type, missing] {
        assert_eq!(
            queue.try_execute_one("w").await.unwrap(),
            ExecutionOutcome::Dead(id)
        );
        assert_eq!(job(&db.store, id).await.attempts, 1);
    }
    assert_eq!(
        job(&db.store, wrong_type).await.last_error.unwrap(),
        format!(
            "permanent error: job {wrong_type} is not a \"greet\" payload: times: invalid value"
        ),
        "the field is named, its value (maybe an email) is not quoted"
    );
    assert_eq!(
        job(&db.store, missing).await.last_error.unwrap(),
        format!(
            "permanent error: job {missing} is not a \"greet\" payload: .: missing field `times`"
        )
    );
    assert!(greeter.greeted.lock().unwrap().is_empty());
    assert_eq!(
        *greeter.dead.lock().unwrap(),
        [None, None],
        "on_dead gets no payload"
    );
}

async fn dead_jobs_are_listed_without_emails_and_can_be_retried_from_the_cli(db: TestDb) {
    let healed = Arc::new(AtomicBool::new(false));
    let handler = Scripted::new("lookup", {
        let healed = healed.clone();
        move |_| {
            if healed.load(Ordering::SeqCst) {
                Step::Succeed
            } else {
                Step::Permanent("no FullStory user for jane.doe@example.com")
            }
        }
    });
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), Clock::system());
    let a = queue
        .enqueue(
            "k:a",
            NewJob::new("lookup", json!({"email": "jane.doe@example.com"})),
        )
        .await
        .unwrap()
        .job_id;
    let b = queue
        .enqueue(
            "k:b",
            NewJob::new("lookup", json!({"email": "bob@example.org"})),
        )
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(a)
    );
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(b)
    );
    let store = db.store.as_ref();
    let now = Utc::now();

    let list = cli::render(
        JobsCommand::List {
            state: Some(JobState::Dead),
            limit: 50,
        },
        store,
        now,
    )
    .await
    .unwrap();
    assert!(list.contains("lookup") && list.contains("dead"), "{list}");
    assert!(list.contains("j***@example.com"), "{list}");
    assert!(!list.contains("jane.doe@"), "{list}");
    assert!(!list.contains("bob@"), "payloads are never listed: {list}");

    let show = cli::render(JobsCommand::Show { id: a }, store, now)
        .await
        .unwrap();
    assert!(
        show.contains("\"email\": \"jane.doe@example.com\""),
        "{show}"
    );
    assert!(show.contains("state:         dead"), "{show}");

    healed.store(true, Ordering::SeqCst);
    let retried = cli::render(
        JobsCommand::Retry {
            id: Some(a),
            all_dead: false,
        },
        store,
        now,
    )
    .await
    .unwrap();
    assert_eq!(retried, format!("job {a} queued again\n"));
    let again = job(&db.store, a).await;
    assert_eq!(again.state, JobState::Queued);
    assert_eq!(again.attempts, 0);
    let not_dead = cli::render(
        JobsCommand::Retry {
            id: Some(a),
            all_dead: false,
        },
        store,
        now,
    )
    .await
    .unwrap_err();
    assert!(not_dead.to_string().contains("not dead"), "{not_dead}");
    let missing = cli::render(JobsCommand::Show { id: 999_999 }, store, now)
        .await
        .unwrap_err();
    assert!(missing.to_string().contains("no job 999999"), "{missing}");

    let all = cli::render(
        JobsCommand::Retry {
            id: None,
            all_dead: true,
        },
        store,
        now,
    )
    .await
    .unwrap();
    assert_eq!(all, "1 dead job queued again\n");
    let mut outcomes = vec![
        queue.try_execute_one("w").await.unwrap(),
        queue.try_execute_one("w").await.unwrap(),
    ];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(
        outcomes,
        [ExecutionOutcome::Done(a), ExecutionOutcome::Done(b)]
    );
    let none = cli::render(
        JobsCommand::List {
            state: Some(JobState::Dead),
            limit: 50,
        },
        store,
        now,
    )
    .await
    .unwrap();
    assert_eq!(none, "no jobs\n");
}

async fn the_effect_ledger_performs_once_and_a_rerun_gets_the_recorded_id(db: TestDb) {
    let clock = ManualClock::starting_now();
    let platform = Arc::new(FakePlatform::default());
    let poster = NotePoster::new(platform.clone(), true);
    let settings = step_settings();
    let queue = new_queue(&db, vec![poster.clone()], settings.clone(), clock.clock());
    let id = queue
        .enqueue("k:note", NewJob::new("note", json!({})))
        .await
        .unwrap()
        .job_id;

    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Retrying(id)
    );
    clock.advance(settings.backoff_cap);
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(id)
    );

    assert_eq!(platform.performed().len(), 1);
    assert!(
        platform.looked_up().is_empty(),
        "a done row needs no lookup"
    );
    assert_eq!(*poster.results.lock().unwrap(), ["ext-1", "ext-1"]);
    let effects = db.store.effects_for_job(id).await.unwrap();
    assert_eq!(effects.len(), 1);
    let note = &effects[0];
    assert_eq!(note.state, EffectState::Done);
    assert_eq!(note.external_id.as_deref(), Some("ext-1"));
    assert_eq!(platform.performed(), std::slice::from_ref(&note.marker));
    let prefix = format!("rd-{id}-note-");
    assert!(note.marker.starts_with(&prefix), "{}", note.marker);
    assert_eq!(note.marker.len(), prefix.len() + 8, "{}", note.marker);
}

async fn an_effect_intent_without_an_external_id_is_looked_up_before_acting_again(db: TestDb) {
    let platform = Arc::new(FakePlatform::default());
    let poster = NotePoster::new(platform.clone(), false);
    let queue = new_queue(&db, vec![poster.clone()], step_settings(), Clock::system());
    let posted = queue
        .enqueue("k:posted", NewJob::new("note", json!({})))
        .await
        .unwrap()
        .job_id;
    let lost = queue
        .enqueue("k:lost", NewJob::new("note", json!({})))
        .await
        .unwrap()
        .job_id;

    // Earlier attempts recorded their intent and died: one after posting
    // (the note is on the platform), one before.
    let now = Utc::now();
    db.store
        .record_effect_intent(posted, "note", "rd-posted-marker", now)
        .await
        .unwrap();
    db.store
        .record_effect_intent(lost, "note", "rd-lost-marker", now)
        .await
        .unwrap();
    platform
        .posted
        .lock()
        .unwrap()
        .insert("rd-posted-marker".to_owned(), "zd-note-77".to_owned());

    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(posted)
    );
    assert_eq!(platform.looked_up(), ["rd-posted-marker"]);
    assert!(
        platform.performed().is_empty(),
        "found on the platform: not posted again"
    );
    let found = db.store.effect(posted, "note").await.unwrap().unwrap();
    assert_eq!(found.state, EffectState::Done);
    assert_eq!(found.external_id.as_deref(), Some("zd-note-77"));

    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(lost)
    );
    assert_eq!(platform.looked_up(), ["rd-posted-marker", "rd-lost-marker"]);
    assert_eq!(
        platform.performed(),
        ["rd-lost-marker"],
        "performed once, with the recorded marker"
    );
    assert_eq!(*poster.results.lock().unwrap(), ["zd-note-77", "ext-1"]);
}

/// A step-by-step queue whose `note` jobs are run by a [`WaitingPoster`] following `script` on a
/// platform of its own (retries due at once), and one such job stored under `key`.
async fn a_waiting_poster(
    db: &TestDb,
    script: &[PosterStep],
    key: &str,
) -> (Arc<FakePlatform>, Arc<WaitingPoster>, Queue, i64) {
    let platform = Arc::new(FakePlatform::default());
    let poster = WaitingPoster::new(platform.clone(), script);
    let settings = Settings {
        backoff_base: Duration::ZERO,
        ..step_settings()
    };
    let queue = new_queue(db, vec![poster.clone()], settings, Clock::system());
    let id = queue
        .enqueue(key, NewJob::new("note", json!({})))
        .await
        .unwrap()
        .job_id;
    (platform, poster, queue, id)
}

/// Runs one attempt of the first due job of `queue`, and what became of it.
async fn step_once(queue: &Queue) -> ExecutionOutcome {
    queue.try_execute_one("w").await.unwrap()
}

async fn a_claimed_jobs_first_run_writes_no_intent_and_a_wait_before_any_effect_keeps_it_first(
    db: TestDb,
) {
    use PosterStep::*;
    let ledgering = |id: i64| {
        let store = db.store.clone();
        async move { job(&store, id).await.ledgering }
    };
    let (platform, poster, queue, id) = a_waiting_poster(
        &db,
        &[WaitBeforePosting, WaitBeforePosting, Post],
        "k:waits-then-posts",
    )
    .await;
    // An outage met twice before anything was done (a drain after it, say): each attempt is still
    // the job's first run, so the note goes out with no intent and no search of the platform, under
    // the marker derived from when the job was stored, recorded with the completion.
    for _ in 0..2 {
        assert_eq!(step_once(&queue).await, ExecutionOutcome::Waiting(id));
        assert_eq!(ledgering(id).await, Ledgering::Unrun);
    }
    assert_eq!(step_once(&queue).await, ExecutionOutcome::Done(id));
    let stored = job(&db.store, id).await;
    assert_eq!(stored.ledgering, Ledgering::FirstRun);
    let marker = queue::ledger::first_run_marker(id, "note", stored.enqueued_at.timestamp_millis());
    assert_eq!(platform.performed(), [marker.as_str()]);
    assert!(platform.looked_up().is_empty(), "nothing to look for");
    // While it ran, the job saw its note in its ledger before the store had a row for it.
    let done = (EffectState::Done, Some("ext-1".to_owned()));
    assert_eq!(
        *poster.seen.lock().unwrap(),
        [vec![("note".to_owned(), done.0, done.1.clone())]]
    );
    let effect = db.store.effect(id, "note").await.unwrap().unwrap();
    assert_eq!(
        (effect.state, effect.external_id, effect.marker),
        (done.0, done.1.clone(), marker)
    );

    // A first run that posts, then meets an outage: its note is recorded before its wait, which
    // leaves the job settled; the next claim finds the ledger's row and runs with intents, finding
    // the note there.
    let (platform, _, queue, id) =
        a_waiting_poster(&db, &[WaitAfterPosting, Post], "k:posts-then-waits").await;
    assert_eq!(step_once(&queue).await, ExecutionOutcome::Waiting(id));
    assert_eq!(ledgering(id).await, Ledgering::Unrun);
    assert_eq!(step_once(&queue).await, ExecutionOutcome::Done(id));
    assert_eq!(ledgering(id).await, Ledgering::Intents);
    assert_eq!(platform.performed().len(), 1, "posted once");
    assert!(platform.looked_up().is_empty(), "the ledger knew");

    // A first run whose post timed out (it reached the platform; the answer did not come back): its
    // retry records the note as an intent under its marker, and the next attempt, following the
    // ledger's rows, looks for that marker and finds the note.
    let (platform, _, queue, id) =
        a_waiting_poster(&db, &[PostTimesOut, Post], "k:post-times-out").await;
    assert_eq!(step_once(&queue).await, ExecutionOutcome::Retrying(id));
    assert_eq!(ledgering(id).await, Ledgering::Unrun);
    let intent = db.store.effect(id, "note").await.unwrap().unwrap();
    assert_eq!(intent.state, EffectState::Intent);
    assert_eq!(step_once(&queue).await, ExecutionOutcome::Done(id));
    assert_eq!(ledgering(id).await, Ledgering::Intents);
    assert_eq!(
        platform.performed(),
        [intent.marker.as_str()],
        "posted once"
    );
    assert_eq!(platform.looked_up(), [intent.marker.as_str()]);
    let stored = job(&db.store, id).await;
    assert_eq!(
        intent.marker,
        queue::ledger::first_run_marker(id, "note", stored.enqueued_at.timestamp_millis())
    );

    // A handed job's first run sees its own effects in its ledger too (an erasure's receipt, posted
    // by the attempt that did the deletions, lists them).
    let platform = Arc::new(FakePlatform::default());
    let poster = WaitingPoster::new(platform.clone(), &[Post]);
    let queue = new_queue(&db, vec![poster.clone()], unpolled(1), Clock::system());
    hand_one_note(&db, &queue, "k:handed-sees", JobState::Done).await;
    assert_eq!(
        *poster.seen.lock().unwrap(),
        [vec![("note".to_owned(), done.0, done.1)]]
    );
}

/// The lease owner of a job handed over by a process that died before running it.
const DEAD_PROCESS: &str = "handed@1:dead";

/// Stores a `kind` job under `key` as a delivery's commit does for a hand-off (running, leased for
/// 30 s to [`DEAD_PROCESS`], its attempt counted) whose process then died. Returns the job's id.
async fn store_handed_to_a_dead_process(
    db: &TestDb,
    key: &str,
    kind: &str,
    clock: &ManualClock,
) -> i64 {
    let mut new = NewJob::new(kind, json!({}));
    new.lease = Some(Lease {
        owner: DEAD_PROCESS.into(),
        until: clock.now() + chrono::Duration::seconds(30),
    });
    let enqueued = db
        .store
        .enqueue_batch(&[(key.to_owned(), new)], clock.now())
        .await
        .unwrap();
    enqueued[0].job_id
}

/// Starts `queue`'s workers, lets them go idle, enqueues one `note` job under `key` (handed to an idle
/// worker: asserted), waits until it is `state`, and stops the workers. Returns the job's id.
async fn hand_one_note(db: &TestDb, queue: &Queue, key: &str, state: JobState) -> i64 {
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = queue
        .enqueue(key, NewJob::new("note", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(queue.metrics().handed_jobs(), 1);
    let store = db.store.clone();
    eventually(&format!("{key} {state:?}"), Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, id).await == state }
    })
    .await;
    stop.send(true).unwrap();
    workers.join().await;
    id
}

async fn a_handed_jobs_first_attempt_writes_no_intent_and_records_its_effects_with_its_outcome(
    db: TestDb,
) {
    let platform = Arc::new(FakePlatform::default());
    let poster = NotePoster::new(platform.clone(), false);
    let failing_platform = Arc::new(FakePlatform::default());
    // No poll the test waits for (a worker polling may be out of its idle wait at the enqueue);
    // a retry due at once, found by the worker as soon as its failed attempt is recorded.
    let settings = Settings {
        workers: 1,
        poll_interval: Duration::from_secs(60),
        backoff_base: Duration::ZERO,
        ..Settings::default()
    };
    let queue = new_queue(&db, vec![poster.clone()], settings.clone(), Clock::system());
    let id = hand_one_note(&db, &queue, "k:handed-note", JobState::Done).await;
    // Done with its effect in one transaction, under the marker every later attempt would derive.
    let handed_at = job(&db.store, id).await.handed_at.expect("handed");
    let effect = db.store.effect(id, "note").await.unwrap().unwrap();
    assert_eq!(effect.state, EffectState::Done);
    assert_eq!(effect.external_id.as_deref(), Some("ext-1"));
    assert_eq!(
        effect.marker,
        queue::ledger::first_run_marker(id, "note", handed_at.timestamp_millis())
    );
    assert_eq!(platform.performed(), [effect.marker.as_str()]);
    assert!(platform.looked_up().is_empty(), "nothing to look for");

    // A first attempt that posts and then fails: its effect is recorded before the retry is, so
    // the retry (a claim, not a hand-off) finds it in the ledger and does not post again.
    let poster = NotePoster::new(failing_platform.clone(), true);
    let queue = new_queue(&db, vec![poster.clone()], settings, Clock::system());
    let id = hand_one_note(&db, &queue, "k:handed-retry", JobState::Done).await;
    assert_eq!(job(&db.store, id).await.attempts, 2);
    assert_eq!(failing_platform.performed().len(), 1, "posted once");
    assert!(failing_platform.looked_up().is_empty(), "the ledger knew");
    assert_eq!(*poster.results.lock().unwrap(), ["ext-1", "ext-1"]);

    // A first attempt that posts and then gives up: `on_dead`, in the same attempt, finds the note
    // (recorded before it runs) and does not post it again.
    let platform = Arc::new(FakePlatform::default());
    let giver = Arc::new(NoteThenGiveUp {
        platform: platform.clone(),
        seen_on_dead: Mutex::new(Vec::new()),
    });
    let queue = new_queue(&db, vec![giver.clone()], unpolled(1), Clock::system());
    let id = hand_one_note(&db, &queue, "k:handed-dead", JobState::Dead).await;
    assert_eq!(platform.performed().len(), 1, "posted once");
    assert_eq!(*giver.seen_on_dead.lock().unwrap(), ["ext-1"]);
    let effect = db.store.effect(id, "note").await.unwrap().unwrap();
    assert_eq!(effect.external_id.as_deref(), Some("ext-1"));
}

async fn a_later_attempt_of_a_handed_job_looks_for_an_unrecorded_effect_before_doing_it(
    db: TestDb,
) {
    // Two handed jobs whose process died during their first attempt, before anything was
    // recorded: one after its note was posted (under the derived marker), one before.
    let clock = ManualClock::starting_now();
    let platform = Arc::new(FakePlatform::default());
    let poster = NotePoster::new(platform.clone(), false);
    let queue = new_queue(&db, vec![poster.clone()], step_settings(), clock.clock());
    let mut ids = Vec::new();
    for key in ["k:posted", "k:lost"] {
        ids.push(store_handed_to_a_dead_process(&db, key, "note", &clock).await);
    }
    let (posted, lost) = (ids[0], ids[1]);
    let marker = |id: i64| {
        let store = db.store.clone();
        async move {
            let handed_at = job(&store, id).await.handed_at.expect("handed");
            queue::ledger::first_run_marker(id, "note", handed_at.timestamp_millis())
        }
    };
    let (posted_marker, lost_marker) = (marker(posted).await, marker(lost).await);
    platform
        .posted
        .lock()
        .unwrap()
        .insert(posted_marker.clone(), "zd-note-9".to_owned());

    clock.advance(Duration::from_secs(31));
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(posted)
    );
    assert_eq!(platform.looked_up(), [posted_marker.as_str()]);
    assert!(platform.performed().is_empty(), "found: not posted again");
    let found = db.store.effect(posted, "note").await.unwrap().unwrap();
    assert_eq!(
        (found.state, found.external_id.as_deref()),
        (EffectState::Done, Some("zd-note-9"))
    );

    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(lost)
    );
    assert_eq!(platform.looked_up(), [posted_marker, lost_marker.clone()]);
    assert_eq!(
        platform.performed(),
        [lost_marker],
        "posted once, under the derived marker"
    );
    assert_eq!(*poster.results.lock().unwrap(), ["zd-note-9", "ext-1"]);
}

async fn retention_scrubs_old_done_and_dead_payloads_and_keeps_recent_ones_and_delivery_keys(
    db: TestDb,
) {
    let clock = ManualClock::starting_now();
    let ok = Scripted::always("ok", Step::Succeed);
    let bad = Scripted::always("bad", Step::Permanent("nope for a@b.example"));
    let settings = Settings {
        retention: Duration::from_secs(7 * 86_400),
        ..step_settings()
    };
    let queue = new_queue(&db, vec![ok.clone(), bad.clone()], settings, clock.clock());
    let email = json!({"email": "customer@example.com"});
    let old = queue
        .enqueue("k:old", NewJob::new("ok", email.clone()))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(old)
    );
    let dead = queue
        .enqueue("k:dead", NewJob::new("bad", email.clone()))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Dead(dead)
    );
    clock.advance(Duration::from_secs(6 * 86_400));
    let recent = queue
        .enqueue("k:recent", NewJob::new("ok", email.clone()))
        .await
        .unwrap()
        .job_id;
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(recent)
    );
    let waiting = queue
        .enqueue("k:waiting", NewJob::new("ok", email.clone()))
        .await
        .unwrap()
        .job_id;
    clock.advance(Duration::from_secs(2 * 86_400));

    assert_eq!(queue.purge_expired().await.unwrap(), 2);
    let scrubbed = job(&db.store, old).await;
    assert_eq!(scrubbed.payload, serde_json::Value::Null);
    assert_eq!(scrubbed.payload_purged_at, Some(clock.now()));
    assert_eq!(scrubbed.state, JobState::Done);
    assert_eq!(job(&db.store, recent).await.payload, email);
    // A dead job past retention keeps neither the address nor its error (issue 14: before, forever).
    let dead = job(&db.store, dead).await;
    assert_eq!(dead.payload, serde_json::Value::Null);
    assert_eq!(dead.last_error, None);
    assert_eq!(dead.state, JobState::Dead);
    assert_eq!(job(&db.store, waiting).await.payload, email);
    assert_eq!(queue.purge_expired().await.unwrap(), 0);

    // The delivery key outlives the payload and still refuses a late retry.
    let late = queue
        .enqueue("k:old", NewJob::new("ok", email.clone()))
        .await
        .unwrap();
    assert!(late.duplicate);
    assert_eq!(late.job_id, old);

    let purge = JobsCommand::Purge {
        done_older_than: Duration::from_secs(86_400),
    };
    let out = cli::render(purge, db.store.as_ref(), clock.now())
        .await
        .unwrap();
    assert!(
        out.starts_with("scrubbed the payloads of 1 done job finished more than 1d ago"),
        "{out}"
    );
    assert_eq!(
        job(&db.store, recent).await.payload,
        serde_json::Value::Null
    );
    let show = cli::render(
        JobsCommand::Show { id: old },
        db.store.as_ref(),
        clock.now(),
    )
    .await
    .unwrap();
    assert!(show.contains("payload:       purged at"), "{show}");
}

async fn graceful_shutdown_releases_the_leases_of_unfinished_jobs(db: TestDb) {
    let handler = Scripted::always("forever", Step::Sleep(Duration::from_secs(3_600)));
    let settings = Settings {
        workers: 2,
        shutdown_grace: Duration::from_millis(300),
        ..Settings::default()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, Clock::system());
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    let id = queue
        .enqueue("k:forever", NewJob::new("forever", json!({})))
        .await
        .unwrap()
        .job_id;
    let store = db.store.clone();
    eventually("the job to be running", Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, id).await == JobState::Running }
    })
    .await;

    let signalled = Instant::now();
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), workers.join())
        .await
        .expect("workers stop after the grace period");
    assert!(signalled.elapsed() >= Duration::from_millis(300));
    let released = job(&db.store, id).await;
    assert_eq!(released.state, JobState::Queued);
    assert_eq!(released.lock_owner, None);
    assert_eq!(released.locked_until, None);
    assert_eq!(
        released.attempts, 0,
        "an interrupted attempt is not counted"
    );
    assert!(released.run_after <= Utc::now());
}

async fn graceful_shutdown_lets_a_running_job_finish_within_the_grace_period(db: TestDb) {
    let handler = Scripted::always("short", Step::Sleep(Duration::from_millis(400)));
    let settings = Settings {
        workers: 2,
        shutdown_grace: Duration::from_secs(20),
        ..Settings::default()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, Clock::system());
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    let id = queue
        .enqueue("k:short", NewJob::new("short", json!({})))
        .await
        .unwrap()
        .job_id;
    let store = db.store.clone();
    eventually("the job to be running", Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, id).await == JobState::Running }
    })
    .await;
    stop.send(true).unwrap();
    // Enqueued after the signal: no worker claims it any more.
    let later = queue
        .enqueue("k:later", NewJob::new("short", json!({})))
        .await
        .unwrap()
        .job_id;
    tokio::time::timeout(Duration::from_secs(15), workers.join())
        .await
        .expect("workers stop once the job is done");
    assert_eq!(state_of(&db.store, id).await, JobState::Done);
    assert_eq!(state_of(&db.store, later).await, JobState::Queued);
    assert_eq!(handler.runs().len(), 1);
}

async fn an_idle_worker_is_woken_by_enqueue_well_before_the_poll_interval(db: TestDb) {
    let handler = Scripted::always("wake", Step::Succeed);
    let queue = new_queue(&db, vec![handler.clone()], unpolled(2), Clock::system());
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    // Let both workers find the queue empty and go to sleep.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let started = Instant::now();
    let id = queue
        .enqueue("k:wake", NewJob::new("wake", json!({})))
        .await
        .unwrap()
        .job_id;
    let store = db.store.clone();
    eventually("the job to be done", Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, id).await == JobState::Done }
    })
    .await;
    let took = started.elapsed();
    stop.send(true).unwrap();
    workers.join().await;
    assert!(took < Duration::from_secs(10), "{took:?}");
    eprintln!("{:?}: woken and done in {took:?}", db.backend);
}

async fn an_idle_workers_job_is_claimed_in_its_deliverys_commit_and_a_busy_ones_is_queued(
    db: TestDb,
) {
    // One worker, and a poll interval no test waits for: only the hand-off (or a wake-up) runs jobs.
    let handler = Scripted::new("handed", |job| {
        if job.payload()["slow"] == json!(true) {
            Step::Sleep(Duration::from_millis(400))
        } else {
            Step::Succeed
        }
    });
    let queue = new_queue(&db, vec![handler.clone()], unpolled(1), Clock::system());
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    let idle = || async { tokio::time::sleep(Duration::from_millis(300)).await };
    idle().await;

    // The worker is idle: the job is stored running, leased, its attempt counted, and handed over.
    let slow = queue
        .enqueue("k:slow", NewJob::new("handed", json!({"slow": true})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(queue.metrics().handed_jobs(), 1);
    let stored = job(&db.store, slow).await;
    assert!(
        stored.state == JobState::Running || stored.state == JobState::Done,
        "{stored:?}"
    );
    assert_eq!(stored.attempts, 1);
    // The worker is busy with it: the next job is stored queued, for a claim.
    let queued = queue
        .enqueue("k:queued", NewJob::new("handed", json!({})))
        .await
        .unwrap()
        .job_id;
    assert_eq!(queue.metrics().handed_jobs(), 1);
    let stored = job(&db.store, queued).await;
    assert_eq!((stored.state, stored.attempts), (JobState::Queued, 0));
    let store = db.store.clone();
    eventually("both jobs done", Duration::from_secs(10), || {
        let store = store.clone();
        async move {
            state_of(&store, slow).await == JobState::Done
                && state_of(&store, queued).await == JobState::Done
        }
    })
    .await;

    // A duplicate delivery takes the idle worker and gives it back: the worker is idle again and
    // the next job is handed to it (a worker left waiting for the duplicate's job would wait forever).
    idle().await;
    let again = queue
        .enqueue("k:slow", NewJob::new("handed", json!({"slow": true})))
        .await
        .unwrap();
    assert!(again.duplicate);
    idle().await;
    let started = Instant::now();
    let next = queue
        .enqueue("k:next", NewJob::new("handed", json!({})))
        .await
        .unwrap()
        .job_id;
    eventually("the next job done", Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, next).await == JobState::Done }
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(queue.metrics().handed_jobs(), 2);
    stop.send(true).unwrap();
    workers.join().await;

    let runs = handler.runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    for id in [slow, queued, next] {
        assert_eq!(job(&db.store, id).await.attempts, 1, "job {id}");
    }
    assert!(job(&db.store, queued).await.handed_at.is_none());
    let show = cli::render(JobsCommand::Show { id: slow }, &db.store, Utc::now())
        .await
        .unwrap();
    assert!(show.contains("handed at:"), "{show}");
    assert!(show.contains("ledger:        first run"), "{show}");
}

async fn completing_a_job_can_claim_the_next_in_the_same_commit(db: TestDb) {
    let clock = ManualClock::starting_now();
    let queue = new_queue(&db, vec![], step_settings(), clock.clock());
    let mut ids = Vec::new();
    for key in ["k:first", "k:second"] {
        let enqueued = queue
            .enqueue(key, NewJob::new("work", json!({})))
            .await
            .unwrap();
        ids.push(enqueued.job_id);
    }
    let lease = chrono::Duration::seconds(30);
    let first = db
        .store
        .claim("w:1", clock.now() + lease, clock.now())
        .await
        .unwrap()
        .expect("claimable");
    assert_eq!(first.id, ids[0]);

    // The first's completion claims the second: done and running in one commit.
    clock.advance(Duration::from_secs(1));
    let now = clock.now();
    // Completes `id` as `owner`, claiming the next due job as `next`, in one transaction.
    let finish = |id: i64, owner: &'static str, next: &'static str| {
        let store = db.store.clone();
        async move {
            let next = NextClaim {
                owner: next,
                lease_until: now + lease,
            };
            store
                .complete_and_claim(id, owner, now, &[], &[], Some(next))
                .await
                .unwrap()
        }
    };
    let (completed, claimed) = finish(first.id, "w:1", "w:2").await;
    assert!(completed);
    let claimed = claimed.expect("the second job is due");
    assert_eq!(claimed.id, ids[1]);
    assert_eq!(claimed.state, JobState::Running);
    assert_eq!(claimed.attempts, 1);
    assert_eq!(claimed.lock_owner.as_deref(), Some("w:2"));
    assert_eq!(job(&db.store, claimed.id).await, claimed);
    let done = job(&db.store, first.id).await;
    assert_eq!(
        (done.state, done.lock_owner.as_deref()),
        (JobState::Done, None)
    );

    // Nothing left to claim: completed, nothing claimed.
    let (completed, claimed) = finish(ids[1], "w:2", "w:3").await;
    assert!(completed);
    assert_eq!(claimed, None);
    assert_eq!(state_of(&db.store, ids[1]).await, JobState::Done);

    // A lease no longer held completes nothing, and the job keeps its state.
    let again = queue
        .enqueue("k:third", NewJob::new("work", json!({})))
        .await
        .unwrap()
        .job_id;
    let (completed, claimed) = finish(first.id, "w:1", "w:4").await;
    assert!(!completed);
    assert_eq!(done, job(&db.store, first.id).await);
    // The claim stands on its own: the third job is the worker's.
    assert_eq!(claimed.map(|j| j.id), Some(again));
}

async fn a_worker_runs_a_backlog_claiming_each_job_with_the_last_ones_completion(db: TestDb) {
    // A backlog stored before any worker starts (none idle: every job queued, none handed), then one
    // worker that never polls within the test: after the first claim, each job is claimed in the
    // commit that completes the one before.
    let handler = Scripted::always("backlog", Step::Succeed);
    let queue = new_queue(&db, vec![handler.clone()], unpolled(1), Clock::system());
    let mut ids = Vec::new();
    for n in 0..5 {
        let enqueued = queue
            .enqueue(
                &format!("k:backlog:{n}"),
                NewJob::new("backlog", json!({"n": n})),
            )
            .await
            .unwrap();
        ids.push(enqueued.job_id);
    }
    assert_eq!(queue.metrics().handed_jobs(), 0);
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    let store = db.store.clone();
    let all = ids.clone();
    eventually("the backlog done", Duration::from_secs(10), || {
        let (store, all) = (store.clone(), all.clone());
        async move {
            for id in all {
                if state_of(&store, id).await != JobState::Done {
                    return false;
                }
            }
            true
        }
    })
    .await;
    stop.send(true).unwrap();
    workers.join().await;
    let runs = handler.runs();
    assert_eq!(runs.len(), ids.len(), "{runs:?}");
    assert!(runs.values().all(|n| *n == 1), "{runs:?}");
    for id in ids {
        let stored = job(&db.store, id).await;
        assert_eq!(stored.attempts, 1, "job {id}");
        assert_eq!(stored.lock_owner, None, "job {id}");
        assert!(stored.handed_at.is_none(), "job {id}");
    }
}

async fn a_job_leased_in_its_delivery_is_claimed_again_only_once_its_lease_runs_out(db: TestDb) {
    // A process that stored a job under its lease and died before running it: the job waits for
    // the lease like a job whose worker died mid-attempt, then runs; that attempt is its second.
    let clock = ManualClock::starting_now();
    let handler = Scripted::always("orphan", Step::Succeed);
    let queue = new_queue(&db, vec![handler.clone()], step_settings(), clock.clock());
    let id = store_handed_to_a_dead_process(&db, "k:orphan", "orphan", &clock).await;
    let stored = job(&db.store, id).await;
    assert_eq!(stored.state, JobState::Running);
    assert_eq!(stored.lock_owner.as_deref(), Some(DEAD_PROCESS));
    assert_eq!(stored.attempts, 1);

    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::EmptyQueue,
        "its lease still holds"
    );
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        queue.try_execute_one("w").await.unwrap(),
        ExecutionOutcome::Done(id)
    );
    assert_eq!(job(&db.store, id).await.attempts, 2);
    assert_eq!(handler.runs().get(&id), Some(&1));
}

async fn a_job_stored_by_another_process_is_found_without_an_in_process_wake_up(db: TestDb) {
    // PostgreSQL: LISTEN/NOTIFY wakes the idle worker though the poll
    // interval is a minute. SQLite has no cross-process signal: polling.
    let poll = match db.backend {
        Backend::Postgres => Duration::from_secs(60),
        Backend::Sqlite => Duration::from_millis(250),
    };
    let handler = Scripted::always("remote", Step::Succeed);
    let settings = Settings {
        workers: 1,
        poll_interval: poll,
        ..Settings::default()
    };
    let queue = new_queue(&db, vec![handler.clone()], settings, Clock::system());
    let (stop, shutdown) = watch::channel(false);
    let workers = queue.spawn_workers(shutdown).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let other_process = db.reopen().await;
    let id = other_process
        .enqueue("k:remote", NewJob::new("remote", json!({})), Utc::now())
        .await
        .unwrap()
        .job_id;
    let store = db.store.clone();
    eventually("the job to be done", Duration::from_secs(10), || {
        let store = store.clone();
        async move { state_of(&store, id).await == JobState::Done }
    })
    .await;
    stop.send(true).unwrap();
    workers.join().await;
    other_process.close().await;
}

async fn reopening_a_store_keeps_its_jobs_and_runs_no_migration_twice(db: TestDb) {
    let id = db
        .store
        .enqueue("k:persist", NewJob::new("any", json!([1, 2])), Utc::now())
        .await
        .unwrap()
        .job_id;
    let again = db.reopen().await;
    assert_eq!(
        again.get_job(id).await.unwrap().unwrap().payload,
        json!([1, 2])
    );
    assert!(
        again
            .enqueue("k:persist", NewJob::new("any", json!(null)), Utc::now())
            .await
            .unwrap()
            .duplicate
    );
    again.close().await;
}

#[tokio::test]
async fn an_unsupported_store_url_is_refused_with_the_password_hidden() {
    let error = store::open("mysql://app:hunter2@db/x").await.err().unwrap();
    let text = format!("{error:#}");
    assert!(text.contains("unsupported store URL"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

#[tokio::test]
async fn an_in_memory_sqlite_store_works_for_throwaway_use() {
    let store = store::open("sqlite::memory:").await.unwrap();
    let first = store
        .enqueue("k", NewJob::new("x", json!({})), Utc::now())
        .await
        .unwrap();
    let claimed = store
        .claim("w", Utc::now() + chrono::Duration::seconds(30), Utc::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claimed.id, first.job_id);
    assert!(store.complete(first.job_id, "w", Utc::now()).await.unwrap());
}

/// A batch SQLite refuses half-way (its jobs' INSERT has more binds than SQLite takes, after the
/// transaction began and the keys were read) is rolled back on the same connection: an in-memory
/// store, whose one connection is its database, keeps what it had and goes on storing.
#[tokio::test]
async fn a_batch_refused_half_way_leaves_an_in_memory_store_as_it_was() {
    let store = store::open("sqlite::memory:").await.unwrap();
    let kept = store
        .enqueue("k:kept", NewJob::new("x", json!({})), Utc::now())
        .await
        .unwrap();
    let too_many: Vec<(String, NewJob)> = (0..4_000)
        .map(|i| (format!("k:{i}"), NewJob::new("x", json!({}))))
        .collect();
    let error = store
        .enqueue_batch(&too_many, Utc::now())
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("too many SQL variables"),
        "{error:#}"
    );
    let jobs = store.list_jobs(None, 10).await.unwrap();
    assert_eq!(jobs.len(), 1, "the refused batch stored nothing");
    assert_eq!(jobs[0].id, kept.job_id, "and the store kept what it had");
    let next = store
        .enqueue("k:0", NewJob::new("x", json!({})), Utc::now())
        .await
        .unwrap();
    assert!(!next.duplicate, "the refused batch's keys were not kept");
    let again = store
        .enqueue("k:kept", NewJob::new("x", json!({})), Utc::now())
        .await
        .unwrap();
    assert_eq!((again.job_id, again.duplicate), (kept.job_id, true));
}

// ---------------------------------------------------------------- benchmark

/// Enqueue cost by durability: SQLite `synchronous=FULL` vs `NORMAL` (both
/// WAL) and PostgreSQL, one writer and 16 concurrent writers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: cargo test --release --test queue -- --ignored --nocapture"]
async fn enqueue_durability_benchmark() {
    const SEQUENTIAL: usize = 1_000;
    const CONCURRENT: usize = 16;
    const PER_TASK: usize = 250;

    async fn measure(label: &str, store: Arc<SqlStore>) {
        let payload =
            json!({"email": "customer@example.com", "ticket": 12345, "text": "x".repeat(200)});
        let started = Instant::now();
        for i in 0..SEQUENTIAL {
            store
                .enqueue(
                    &format!("seq:{i}"),
                    NewJob::new("bench", payload.clone()),
                    Utc::now(),
                )
                .await
                .unwrap();
        }
        let sequential = started.elapsed();

        let started = Instant::now();
        let tasks = (0..CONCURRENT).map(|t| {
            let store = store.clone();
            let payload = payload.clone();
            tokio::spawn(async move {
                let mut worst = Duration::ZERO;
                for i in 0..PER_TASK {
                    let one = Instant::now();
                    store
                        .enqueue(
                            &format!("par:{t}:{i}"),
                            NewJob::new("bench", payload.clone()),
                            Utc::now(),
                        )
                        .await
                        .unwrap();
                    worst = worst.max(one.elapsed());
                }
                worst
            })
        });
        let worst = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .map(Result::unwrap)
            .max()
            .unwrap_or_default();
        let concurrent = started.elapsed();
        let total = CONCURRENT * PER_TASK;
        println!(
            concat!(
                "{:<16} 1 writer: {:>6.0} enqueues/s ({:>5.2} ms each) | ",
                "{} writers: {:>6.0} enqueues/s (worst {:>6.1} ms)"
            ),
            label,
            SEQUENTIAL as f64 / sequential.as_secs_f64(),
            sequential.as_secs_f64() * 1_000.0 / SEQUENTIAL as f64,
            CONCURRENT,
            total as f64 / concurrent.as_secs_f64(),
            worst.as_secs_f64() * 1_000.0,
        );
        store.close().await;
    }

    for durability in [Durability::Full, Durability::Normal] {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = store::open_with(
            &url,
            StoreOptions {
                durability,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        measure(&format!("sqlite {durability:?}"), store).await;
    }
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let url = postgres_url();
    let store = store::open_with(
        &url,
        StoreOptions {
            pg_schema: Some(schema.clone()),
            ..StoreOptions::default()
        },
    )
    .await
    .expect("PostgreSQL for the benchmark");
    measure("postgres", store).await;
    drop_schema(&url, &schema).await;
}
