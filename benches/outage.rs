//! Outage drain benchmark: an outage of FullStory ends with 10,000 lookup jobs waiting for it; how long
//! until they are all answered, as a ratio to the FullStory budget's theoretical minimum
//! (jobs ÷ `fullstory.requests_per_second`).
//!
//! Set-up: a fake FullStory on loopback answering 503 (the outage), the real queue on a fresh SQLite
//! store (`synchronous=FULL`, as in production) with the default 4 workers, the real lookup job with a
//! replier that delivers nowhere through the effect ledger (what is measured is the queue, its
//! ledger and the budget, not a platform),
//! `limits.outage_probe_interval = 1s`, `fullstory.requests_per_second = 500` (burst 10), digest off
//! (one FullStory call per lookup), 10,000 distinct customers (no cache hit). The jobs are enqueued and
//! run during the outage, so each one meets the open breaker and waits (the path production takes);
//! then FullStory comes back, the next probe closes the breaker, the queue makes every waiting job
//! due at once, oldest first, and the clock runs until all 10,000 are done. The figure includes up to
//! one probe interval (1 s) between "FullStory is back" and "replaydesk knows it".
//!
//! Run: `cargo bench --bench outage` (`OUTAGE_JOBS` to change the 10,000). About a minute.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use async_trait::async_trait;
use replaydesk::{
    answer::{
        Answer, LookupHandler, LookupJob, PlatformReplier, Replier, Repliers, ReplyTarget, ReplyTo,
    },
    app::App,
    clock::Clock,
    config::Interval,
    identity::{CustomerEmail, Identity},
    privacy::Requester,
    queue::{Idempotent, JobContext, JobError, JobHandler, Queue, Settings},
    store::{JobState, NewJob},
};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::path_regex};

const PER_SECOND: u32 = 500;
const BURST: u32 = 10;

/// 503 while `down`; else one session for anyone.
struct FullStory {
    down: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
}

impl Respond for FullStory {
    fn respond(&self, _request: &Request) -> ResponseTemplate {
        if self.down.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return ResponseTemplate::new(503);
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let created = chrono::Utc::now().timestamp() - 300;
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"sessions": [{
            "userId": "1", "sessionId": "2", "createdTime": created.to_string(),
            "fsUrl": "https://app.fullstory.com/ui/o-1/session/1:2",
        }]}))
    }
}

/// Delivers nowhere, through the effect ledger as every platform's replier does (the ledger's writes
/// are the queue's, and paced by the same store).
struct Nowhere;

/// Where the bench's answers go (nowhere).
#[derive(serde::Serialize, serde::Deserialize)]
struct NowhereTarget;

impl ReplyTarget for NowhereTarget {
    const PLATFORM: &'static str = "bench";
}

#[async_trait]
impl PlatformReplier for Nowhere {
    type Target = NowhereTarget;

    async fn deliver(
        &self,
        job: &JobContext,
        _target: &NowhereTarget,
        _answer: Answer<'_>,
    ) -> Result<(), JobError> {
        let delivered = Idempotent(|| async { Ok("nowhere".to_owned()) });
        job.effects().once("reply", &delivered).await?;
        Ok(())
    }
}

async fn count(app: &App, state: JobState) -> anyhow::Result<u64> {
    Ok(app
        .store
        .count_by_state()
        .await?
        .into_iter()
        .find(|(s, _)| *s == state)
        .map_or(0, |(_, n)| n))
}

async fn waiting(app: &App) -> anyhow::Result<u64> {
    Ok(app
        .store
        .count_waiting()
        .await?
        .iter()
        .map(|(_, n)| n)
        .sum())
}

fn main() -> anyhow::Result<()> {
    if !common::measuring("outage") {
        return Ok(());
    }
    let jobs: usize = common::env_or("OUTAGE_JOBS", 10_000);
    common::block_on(async {
        let down = Arc::new(AtomicBool::new(true));
        let calls = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let fullstory = MockServer::start().await;
        Mock::given(path_regex("^/"))
            .respond_with(FullStory {
                down: down.clone(),
                calls: calls.clone(),
                failed: failed.clone(),
            })
            .mount(&fullstory)
            .await;
        let dir = tempfile::TempDir::new()?;
        let store = format!("sqlite://{}/outage.db", dir.path().display());
        let mut config = common::config(&store, &fullstory.uri());
        config.fullstory.requests_per_second = PER_SECOND;
        config.fullstory.burst = BURST;
        config.fullstory.digest = replaydesk::config::DigestMode::Never;
        config.fullstory.retry_backoff = Interval(Duration::from_millis(50));
        config.limits.outage_probe_interval = Interval(Duration::from_secs(1));
        let app = Arc::new(App::build(config, Clock::system()).await?);
        let handler: Arc<dyn JobHandler> = Arc::new(LookupHandler {
            app: app.clone(),
            repliers: Repliers::new([Arc::new(Nowhere) as Arc<dyn Replier>]),
        });
        let settings = Settings::from_config(&app.config);
        let workers = settings.workers;
        let queue = Queue::new(
            app.store.clone(),
            vec![handler],
            settings,
            app.clock.clone(),
            app.metrics.queue.clone(),
        )?;

        // The outage: every job is enqueued, tried, and waits.
        let started = Instant::now();
        let now = app.clock.now();
        let mut items = Vec::with_capacity(jobs);
        for i in 0..jobs {
            let job = LookupJob {
                identities: vec![Identity::Email(CustomerEmail::parse(&format!(
                    "customer{i}@shop.test"
                ))?)],
                around: None,
                summary: false,
                digest: None,
                requester: Requester::default(),
                reply: ReplyTo::new(&NowhereTarget),
            };
            items.push((format!("bench:{i}"), NewJob::of(&job)?));
        }
        for chunk in items.chunks(500) {
            app.store.enqueue_batch(chunk, now).await?;
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let running = queue.spawn_workers(stopped).await;
        // All waiting, but for the few a worker holds at that moment (parked jobs wake and wait again).
        while waiting(&app).await? + (workers as u64) < jobs as u64 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let parked_in = started.elapsed();
        let failed_during = failed.load(Ordering::Relaxed);

        // FullStory is back.
        down.store(false, Ordering::SeqCst);
        let back = Instant::now();
        while count(&app, JobState::Done).await? < jobs as u64 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let drained = back.elapsed();
        let _ = stop.send(true);
        running.join().await;

        let minimum = jobs as f64 / f64::from(PER_SECOND);
        let dead = count(&app, JobState::Dead).await?;
        let expired = count(&app, JobState::Expired).await?;
        println!(
            "outage: {jobs} lookup jobs enqueued, tried and waiting in {:.1} s; FullStory got {failed_during} \
             calls during the outage (the breaker's opening, then one probe a second)",
            parked_in.as_secs_f64()
        );
        println!(
            "after recovery: {jobs} jobs done in {:.2} s with {workers} workers, {} FullStory calls, \
             {dead} dead, {expired} expired",
            drained.as_secs_f64(),
            calls.load(Ordering::Relaxed)
        );
        println!(
            "theoretical minimum at {PER_SECOND}/s: {minimum:.2} s; ratio {:.2}",
            drained.as_secs_f64() / minimum
        );
        anyhow::Ok(())
    })
}
