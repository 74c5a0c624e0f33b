//! Memory and start-up benchmark of the real binary: `replaydesk serve` as a child process (SQLite,
//! Slack on, FullStory faked on loopback).
//!
//! - **Start-up**: from spawn to the first `GET /readyz` answered 200 (a fresh store each run, so the
//!   migrations are included), median of `FOOTPRINT_RUNS` (default 9). Baseline, same run: spawning
//!   the same binary with `--version` until it exits, median of as many runs; the ratio is what
//!   getting ready costs beyond starting the process at all.
//! - **Peak RSS** (`VmHWM` in `/proc/PID/status`): idle (ready, 2 s later) and after
//!   `FOOTPRINT_LOAD_SECONDS` (default 5) of signed slash commands at concurrency 16, each a distinct
//!   customer looked up and answered by the workers. Ratio: under load / idle.
//!
//! Run: `cargo bench --bench footprint` (Linux: it reads `/proc`). Bounded: every wait has a timeout,
//! and the child is killed when the bench ends or fails.

mod common;

use std::{
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;

use common::{Fake, ms, post_command};

const BIN: &str = env!("CARGO_BIN_EXE_replaydesk");
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The child `replaydesk serve`, killed when dropped.
struct Serve {
    child: Child,
    base: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Serve {
    fn spawn(dir: &std::path::Path, fullstory: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(BIN)
            .arg("serve")
            .current_dir(dir)
            .env_clear()
            .env("REPLAYDESK_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env(
                "REPLAYDESK_STORE__URL",
                format!("sqlite://{}/serve.db", dir.display()),
            )
            .env("REPLAYDESK_SLACK__SIGNING_SECRET", common::SECRET)
            .env("REPLAYDESK_SLACK__BOT_TOKEN", "xoxb-bench")
            .env("REPLAYDESK_FULLSTORY__API_KEY", "na1.bench")
            .env("REPLAYDESK_FULLSTORY__BASE_URL", fullstory)
            .env("REPLAYDESK_FULLSTORY__REQUESTS_PER_SECOND", "10000")
            .env("REPLAYDESK_FULLSTORY__BURST", "10000")
            .env("REPLAYDESK_LIMITS__PER_SOURCE_PER_MINUTE", "1000000000")
            .env("REPLAYDESK_LIMITS__PER_SOURCE_BURST", "1000000000")
            .env("REPLAYDESK_LOG__LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawning replaydesk serve")?;
        Ok(Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Polls `/readyz` until it answers 200.
    async fn ready(&self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        while Instant::now() < deadline {
            let answer = client.get(format!("{}/readyz", self.base)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        anyhow::bail!("replaydesk serve was not ready within {READY_TIMEOUT:?}")
    }

    /// Peak resident set size so far, in MiB.
    fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmHWM in /proc/PID/status")?;
        Ok(kib / 1024.0)
    }
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

/// Signed slash commands at `concurrency` for `length`; returns how many were acknowledged.
async fn load(base: &str, fake: &Fake, concurrency: usize, length: Duration) -> usize {
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + length;
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (client, done, base) = (client.clone(), done.clone(), base.to_owned());
            let url = format!("{}/response/load", fake.base);
            tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < deadline {
                    i += 1;
                    let id = format!("{worker}-{i}-{}", fastrand::u32(..));
                    let email = format!("customer-{id}@acme.com");
                    let sent = post_command(&client, &base, &format!("{id}.load"), &email, &url)
                        .send()
                        .await;
                    if sent.is_ok_and(|r| r.status().is_success()) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    done.load(Ordering::Relaxed)
}

fn main() -> anyhow::Result<()> {
    if !common::measuring("footprint") {
        return Ok(());
    }
    let runs: usize = common::env_or("FOOTPRINT_RUNS", 9);
    let load_seconds: u64 = common::env_or("FOOTPRINT_LOAD_SECONDS", 5);
    common::block_on(async {
        let fake = Fake::start(None).await?;
        let client = reqwest::Client::new();

        let mut version = Vec::with_capacity(runs);
        let mut ready = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let status = Command::new(BIN)
                .arg("--version")
                .stdout(Stdio::null())
                .status()?;
            anyhow::ensure!(status.success(), "replaydesk --version failed");
            version.push(started.elapsed());

            let dir = tempfile::TempDir::new()?;
            let started = Instant::now();
            let serve = Serve::spawn(dir.path(), &fake.base)?;
            serve.ready(&client).await?;
            ready.push(started.elapsed());
        }
        let (version, ready) = (median(version), median(ready));
        println!(
            "start-up to /readyz 200: median {:.1} ms over {runs} runs; baseline `--version` spawn→exit \
             {:.1} ms; ratio {:.1}×",
            ms(ready),
            ms(version),
            ready.as_secs_f64() / version.as_secs_f64().max(1e-9)
        );

        let dir = tempfile::TempDir::new()?;
        let serve = Serve::spawn(dir.path(), &fake.base)?;
        serve.ready(&client).await?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let idle = serve.peak_rss_mib()?;
        let acked = load(&serve.base, &fake, 16, Duration::from_secs(load_seconds)).await;
        // Let the workers finish what was queued.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let loaded = serve.peak_rss_mib()?;
        println!(
            "peak RSS: idle {idle:.1} MiB; after {load_seconds} s of slash commands at concurrency 16 \
             ({acked} acknowledged, {} looked up at the fake) {loaded:.1} MiB; ratio {:.2}×",
            fake.seen.calls(),
            loaded / idle.max(1e-9)
        );
        anyhow::Ok(())
    })
}
