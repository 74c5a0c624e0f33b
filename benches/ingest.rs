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

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use replaydesk::{
    adapters::slack::verify::sign,
    app::{App, AppState},
    clock::Clock,
    config::{Config, Secret, Secrets},
};
use tokio::sync::Mutex;

const SECRET: &str = "bench-signing-secret";

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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn slash_command(n: u64) -> (String, String, String) {
    let body = format!(
        "token=x&team_id=T0BENCH&team_domain=bench&channel_id=C0BENCH&channel_name=support&user_id=U0BENCH\
         &user_name=agent&command=%2Freplays&text=jane%40acme.com&api_app_id=A0BENCH\
         &response_url=http%3A%2F%2F127.0.0.1%3A9%2Fresponse&trigger_id={n}.{}.bench",
        std::process::id()
    );
    let (ts, signature) = sign(SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
    (body, ts, signature)
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
                        let (body, ts, signature) = slash_command(n);
                        client
                            .post(format!("{base}/slack/commands"))
                            .header("content-type", "application/x-www-form-urlencoded")
                            .header("x-slack-request-timestamp", ts)
                            .header("x-slack-signature", signature)
                            .body(body)
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

async fn serve(store_url: String) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let mut config = Config::default();
    config.store.url = store_url;
    config.fullstory.api_key = Secret::new("na1.bench");
    config.fullstory.base_url = Some("http://127.0.0.1:9".into());
    config.slack.signing_secret = Secrets::from_values([SECRET]);
    config.slack.bot_token = Secret::new("xoxb-bench");
    config.log.level = "warn".into();
    let state = AppState::around(Arc::new(App::build(config, Clock::system()).await?))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    // The server alone: no workers, so only the inbound path is measured.
    tokio::spawn(replaydesk::server::serve(state, listener, async move {
        let _ = stopped.await;
    }));
    Ok((format!("http://{address}"), stop))
}

async fn fresh_postgres() -> anyhow::Result<String> {
    use sqlx::Connection;
    let admin = std::env::var("REPLAYDESK_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut connection = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query("DROP DATABASE IF EXISTS replaydesk_bench WITH (FORCE)")
        .execute(&mut connection)
        .await?;
    sqlx::query("CREATE DATABASE replaydesk_bench")
        .execute(&mut connection)
        .await?;
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base)
        .to_owned();
    Ok(format!("{base}/replaydesk_bench"))
}

fn main() -> anyhow::Result<()> {
    replaydesk::install_crypto_provider();
    let seconds: u64 = std::env::var("INGEST_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let length = Duration::from_secs(seconds);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let dir = tempfile::TempDir::new()?;
        let backends = [
            ("sqlite", format!("sqlite://{}/bench.db", dir.path().display())),
            ("postgres", fresh_postgres().await?),
        ];
        println!("| store | concurrency | no-op req/s | ingest req/s | ratio | no-op p50/p99 | ingest p50/p99 | errors |");
        println!("|---|---|---|---|---|---|---|---|");
        for (name, url) in backends {
            let (base, stop) = serve(url).await?;
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
            let _ = stop.send(());
        }
        anyhow::Ok(())
    })
}
