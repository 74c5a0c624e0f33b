//! Upstream economy benchmark: how many FullStory calls 1,000 lookups cost, and how many 429s we
//! receive when asked for ten times the configured quota. Counted at a fake FullStory on loopback.
//!
//! 1. **Calls per 1,000 lookups.** A simulated hour of support, replayed `ECONOMY_COMPRESSION` times
//!    faster (default 180: an hour in 20 s) with every cache lifetime scaled by the same factor, so
//!    the cache sees the hour it would see: 300 customers of Zipf-like popularity (s = 1); each
//!    question is a single agent's lookup (60 %), a ticket thread re-triggering 1–3 times 2–10
//!    minutes apart (25 %: the requester replies), or 2–5 agents asking about one customer within
//!    30 seconds (15 %). Lookups run through the real lookup core with the default settings
//!    (digest on: a list call and, for the likely session, an events call). Baseline, same run, same
//!    schedule: the lookup core straight on the FullStory client, without the cache.
//! 2. **429s at 10× the quota.** The fake enforces `QUOTA` calls a second (burst `BURST`) with a
//!    strict GCRA limiter and answers 429 + `Retry-After: 1` over it; replaydesk is configured with
//!    the same `fullstory.requests_per_second`/`burst` and asked for 10× that many lookups of
//!    distinct customers (all cache misses) for 2 s. Goal: zero 429s, our limiter holding us under.
//!
//! 3. **Activations per 1,000 lookups** (issue 24): the same hour, each customer's latest session the
//!    same all hour, the lookups spread round robin over one replica or three. Activations are the
//!    events calls the fake answered (one each); List Sessions costs none. Compared: no cache at all
//!    (the baseline, as in 1), three replicas each with its own store (what each replica's in-process
//!    cache saves, as before the shared session data), and replicas sharing one store (the session's
//!    events kept there for every replica).
//!
//! Run: `cargo bench --bench economy`. Bounded: a fixed number of lookups, loopback only.

mod common;

use std::{
    sync::{Arc, atomic::Ordering::Relaxed},
    time::{Duration, Instant},
};

use replaydesk::{
    app::App,
    clock::Clock,
    config::Interval,
    fullstory::SessionsApi,
    identity::{CustomerEmail, Identity},
    lookup::Lookup,
};

use common::Fake;

const LOOKUPS: usize = 1_000;
const CUSTOMERS: usize = 300;
const QUOTA: u32 = 50;
const BURST: u32 = 10;

/// A deterministic pseudo-random sequence (so every run replays the same hour).
struct Rng(fastrand::Rng);

impl Rng {
    /// A customer index drawn with probability ∝ 1/(rank+1).
    fn zipf(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut x = self.0.f64() * total;
        for (i, w) in weights.iter().enumerate() {
            x -= w;
            if x <= 0.0 {
                return i;
            }
        }
        weights.len() - 1
    }
}

/// `(simulated seconds from the start, customer)` for each lookup, in time order.
fn schedule() -> Vec<(f64, usize)> {
    let mut rng = Rng(fastrand::Rng::with_seed(9));
    let weights: Vec<f64> = (0..CUSTOMERS).map(|r| 1.0 / (r as f64 + 1.0)).collect();
    let mut lookups = Vec::with_capacity(LOOKUPS + 8);
    while lookups.len() < LOOKUPS {
        let at = rng.0.f64() * 3600.0;
        let customer = rng.zipf(&weights);
        lookups.push((at, customer));
        match rng.0.u32(0..100) {
            0..60 => {}
            60..85 => {
                let mut t = at;
                for _ in 0..rng.0.u32(1..=3) {
                    t += 120.0 + rng.0.f64() * 480.0;
                    lookups.push((t, customer));
                }
            }
            _ => {
                for _ in 0..rng.0.u32(1..=4) {
                    lookups.push((at + rng.0.f64() * 30.0, customer));
                }
            }
        }
    }
    lookups.truncate(LOOKUPS);
    lookups.sort_by(|a, b| a.0.total_cmp(&b.0));
    lookups
}

fn email(customer: usize, tag: &str) -> Identity {
    Identity::Email(
        CustomerEmail::parse(&format!("customer{customer}.{tag}@acme.com"))
            .unwrap_or_else(|_| unreachable!("a valid address")),
    )
}

/// Replays `schedule` (compressed `compression` times) against `lookup`; returns lookups that failed.
async fn replay(
    app: &App,
    lookup: Arc<Lookup>,
    schedule: &[(f64, usize)],
    compression: f64,
    tag: &str,
) -> usize {
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = schedule
        .iter()
        .map(|(at, customer)| {
            let request = app.lookup_request(vec![email(*customer, tag)]);
            let lookup = lookup.clone();
            let when = start + Duration::from_secs_f64(at / compression);
            tokio::spawn(async move {
                tokio::time::sleep_until(when).await;
                lookup.run(&request).await.is_err()
            })
        })
        .collect();
    let mut failed = 0;
    for task in tasks {
        failed += usize::from(task.await.unwrap_or(true));
    }
    failed
}

/// A SQLite store of its own in `dir`.
fn store_at(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite://{}/{name}.db", dir.path().display())
}

/// Replays `schedule` round robin over `replicas` (each lookup to the next replica).
async fn replay_over(replicas: &[App], schedule: &[(f64, usize)], compression: f64, tag: &str) {
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = schedule
        .iter()
        .enumerate()
        .map(|(i, (at, customer))| {
            let app = &replicas[i % replicas.len()];
            let request = app.lookup_request(vec![email(*customer, tag)]);
            let lookup = app.lookup.clone();
            let when = start + Duration::from_secs_f64(at / compression);
            tokio::spawn(async move {
                tokio::time::sleep_until(when).await;
                let _ = lookup.run(&request).await;
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

fn scaled(d: Duration, compression: f64) -> Interval {
    Interval(d.div_f64(compression))
}

fn main() -> anyhow::Result<()> {
    if !common::measuring("economy") {
        return Ok(());
    }
    let compression: f64 = common::env_or("ECONOMY_COMPRESSION", 180.0);
    common::block_on(async {
        replaydesk::install_crypto_provider();
        let dir = tempfile::TempDir::new()?;
        let store = format!("sqlite://{}/economy.db", dir.path().display());

        // 1. Calls per 1,000 lookups.
        let fake = Fake::start(None).await?;
        let mut config = common::config(&store, &fake.base);
        config.fullstory.requests_per_second = 10_000;
        config.fullstory.burst = 10_000;
        let defaults = config.fullstory.clone();
        config.fullstory.cache_ttl = scaled(defaults.cache_ttl.0, compression);
        config.fullstory.negative_cache_ttl = scaled(defaults.negative_cache_ttl.0, compression);
        config.fullstory.session_cache_ttl = scaled(defaults.session_cache_ttl.0, compression);
        let app = App::build(config, Clock::system()).await?;
        let plan = schedule();
        let distinct = {
            let mut c: Vec<usize> = plan.iter().map(|(_, c)| *c).collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        let uncached = Arc::new(Lookup::new(
            app.fullstory.clone() as Arc<dyn SessionsApi>,
            None,
            Clock::system(),
            app.tombstones.clone(),
        ));
        let failed_uncached = replay(&app, uncached, &plan, compression, "a").await;
        let without = fake.seen.calls();
        fake.seen.reset();
        let failed_cached = replay(&app, app.lookup.clone(), &plan, compression, "b").await;
        let with = fake.seen.calls();
        println!(
            "calls per {LOOKUPS} lookups ({distinct} distinct customers, an hour compressed {compression}×):"
        );
        println!("| | FullStory calls | per lookup | failed lookups |");
        println!("|---|---|---|---|");
        println!(
            "| without the cache (baseline) | {without} | {:.2} | {failed_uncached} |",
            without as f64 / LOOKUPS as f64
        );
        println!(
            "| with the cache | {with} | {:.2} | {failed_cached} |",
            with as f64 / LOOKUPS as f64
        );
        println!(
            "ratio with/without: {:.3} ({:.1}× fewer calls)",
            with as f64 / without.max(1) as f64,
            without as f64 / with.max(1) as f64
        );

        // 3. Activations per 1,000 lookups.
        let stable = Fake::start(None).await?;
        stable.stable_sessions();
        let shared_cache = |store: &str| {
            let mut config = common::config(store, &stable.base);
            config.fullstory.requests_per_second = 10_000;
            config.fullstory.burst = 10_000;
            config.fullstory.cache_ttl = scaled(defaults.cache_ttl.0, compression);
            config.fullstory.negative_cache_ttl =
                scaled(defaults.negative_cache_ttl.0, compression);
            config.fullstory.session_cache_ttl = scaled(defaults.session_cache_ttl.0, compression);
            config
        };
        let one = App::build(shared_cache(&store_at(&dir, "one")), Clock::system()).await?;
        let baseline = Arc::new(Lookup::new(
            one.fullstory.clone() as Arc<dyn SessionsApi>,
            None,
            Clock::system(),
            one.tombstones.clone(),
        ));
        let mut rows = Vec::new();
        replay(&one, baseline, &plan, compression, "d").await;
        rows.push((
            "no cache (baseline)",
            stable.seen.session_events.load(Relaxed),
        ));
        stable.seen.reset();
        replay(&one, one.lookup.clone(), &plan, compression, "e").await;
        rows.push(("1 replica", stable.seen.session_events.load(Relaxed)));
        stable.seen.reset();
        let mut apart = Vec::new();
        for n in 0..3 {
            let store = store_at(&dir, &format!("apart{n}"));
            apart.push(App::build(shared_cache(&store), Clock::system()).await?);
        }
        replay_over(&apart, &plan, compression, "f").await;
        rows.push((
            "3 replicas, a store each (per-replica caches)",
            stable.seen.session_events.load(Relaxed),
        ));
        stable.seen.reset();
        let shared = store_at(&dir, "shared");
        let mut together = Vec::new();
        for _ in 0..3 {
            together.push(App::build(shared_cache(&shared), Clock::system()).await?);
        }
        replay_over(&together, &plan, compression, "g").await;
        let counted = together[0].activations.report().await?.used();
        rows.push((
            "3 replicas sharing one store",
            stable.seen.session_events.load(Relaxed),
        ));
        println!(
            "Activations per {LOOKUPS} lookups (each events call is one; List Sessions costs none):"
        );
        println!("| | Activations | ratio to the baseline |");
        println!("|---|---|---|");
        let base = rows[0].1.max(1) as f64;
        for (name, spent) in &rows {
            println!("| {name} | {spent} | {:.3} |", *spent as f64 / base);
        }
        println!("(the shared store counted {counted} for the last row)");

        // 2. 429s when asked for 10× the quota.
        let strict = Fake::start(Some((QUOTA, BURST))).await?;
        let mut config = common::config(&store, &strict.base);
        config.fullstory.requests_per_second = QUOTA;
        config.fullstory.burst = BURST;
        config.fullstory.digest = replaydesk::config::DigestMode::Never;
        let app = App::build(config, Clock::system()).await?;
        let offered = QUOTA as usize * 10;
        let overload: Vec<(f64, usize)> = (0..offered * 2)
            .map(|i| (i as f64 / offered as f64, i))
            .collect();
        let started = Instant::now();
        let failed = replay(&app, app.lookup.clone(), &overload, 1.0, "c").await;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "offered {offered} lookups/s for 2 s against a quota of {QUOTA}/s (burst {BURST}): \
             {} calls answered, {} × 429 received, {failed} lookups failed, drained in {seconds:.1} s \
             ({:.1} calls/s)",
            strict.seen.calls(),
            strict.seen.rate_limited(),
            strict.seen.calls() as f64 / seconds
        );
        anyhow::Ok(())
    })
}
