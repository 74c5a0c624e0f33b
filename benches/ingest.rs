//! Ingest benchmark: how fast replaydesk acknowledges signed Slack slash commands, each stored durably
//! (delivery key + job, one transaction) before the 200, beside a no-op route (`GET /healthz`) of the same
//! server measured in the same run. Concurrency 1, 16 and 64; SQLite (synchronous=FULL) and PostgreSQL.
//!
//! Run: `cargo bench --bench ingest` (PostgreSQL from `REPLAYDESK_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; it creates and drops a database `replaydesk_bench`).
//! `INGEST_SECONDS` sets the length of each measurement (default 5).
//!
//! The job workers are not started: this measures the inbound path alone. Client and server share the
//! machine, so compare the ratio to the no-op route, not absolute numbers.

mod common;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::sync::Mutex;

use common::{percentile, post_command};

struct Measure {
    requests: usize,
    errors: usize,
    seconds: f64,
    p50: Duration,
    p99: Duration,
}

impl Measure {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

async fn measure(base: &str, ingest: bool, concurrency: usize, length: Duration) -> Measure {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_default();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(fastrand::u64(..1 << 40)));
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, latencies, errors, counter) = (
                client.clone(),
                latencies.clone(),
                errors.clone(),
                counter.clone(),
            );
            let base = base.to_owned();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while Instant::now() < deadline {
                    let request = if ingest {
                        let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let trigger = format!("{n}.{}.bench", std::process::id());
                        post_command(
                            &client,
                            &base,
                            &trigger,
                            "jane@acme.com",
                            "http://127.0.0.1:9/response",
                        )
                    } else {
                        client.get(format!("{base}/healthz"))
                    };
                    let sent = Instant::now();
                    match request.send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            mine.push(sent.elapsed());
                        }
                        _ => {
                            errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
                latencies.lock().await.extend(mine);
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let mut all = latencies.lock().await.clone();
    all.sort();
    Measure {
        requests: all.len(),
        errors: errors.load(std::sync::atomic::Ordering::Relaxed),
        seconds,
        p50: percentile(&all, 0.50),
        p99: percentile(&all, 0.99),
    }
}

fn main() -> anyhow::Result<()> {
    if !common::measuring("ingest") {
        return Ok(());
    }
    let seconds: u64 = common::env_or("INGEST_SECONDS", 5);
    let length = Duration::from_secs(seconds);
    common::block_on(async {
        let dir = tempfile::TempDir::new()?;
        let backends = [
            (
                "sqlite",
                format!("sqlite://{}/bench.db", dir.path().display()),
            ),
            ("postgres", common::fresh_postgres().await?),
        ];
        println!(
            "| store | concurrency | no-op req/s | ingest req/s | ratio | no-op p50/p99 | ingest p50/p99 | errors |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        for (name, url) in backends {
            // The server alone: no workers, so only the inbound path is measured.
            let service = common::serve(common::config(&url, "http://127.0.0.1:9"), false).await?;
            let base = service.base.clone();
            // Warm up connections and caches.
            measure(&base, true, 4, Duration::from_millis(500)).await;
            for concurrency in [1, 16, 64] {
                let noop = measure(&base, false, concurrency, length).await;
                let ingest = measure(&base, true, concurrency, length).await;
                println!(
                    "| {name} | {concurrency} | {:.0} | {:.0} | {:.2} | {:.2}/{:.2} ms | {:.2}/{:.2} ms | {} |",
                    noop.per_second(),
                    ingest.per_second(),
                    ingest.per_second() / noop.per_second(),
                    noop.p50.as_secs_f64() * 1e3,
                    noop.p99.as_secs_f64() * 1e3,
                    ingest.p50.as_secs_f64() * 1e3,
                    ingest.p99.as_secs_f64() * 1e3,
                    noop.errors + ingest.errors,
                );
            }
            drop(service);
        }
        anyhow::Ok(())
    })
}
