//! End-to-end benchmark: a signed Slack slash command received → the answer posted to its
//! `response_url`, through the real server, the durable queue (SQLite), a worker, the lookup core,
//! the FullStory client and the Slack reply client, with FullStory faked on loopback at 0 ms and at
//! 200 ms of injected latency.
//!
//! What it reports: **our added latency** = (reply received at the fake `response_url` − command
//! sent) − the latency injected into the one FullStory call a lookup makes here (digest and summary
//! off, each customer asked once, so no cache hit hides a call), as p50/p99 over sequential commands.
//! Baseline, measured in the same run: a bare `reqwest` round trip to the same fake FullStory; the
//! ratio says how many bare round trips our whole path costs beyond FullStory's own time.
//!
//! Run: `cargo bench --bench e2e` (`E2E_REQUESTS`, default 300 at 0 ms and a fifth of that at 200 ms).
//! Bounded: every wait has a 10 s timeout; loopback only.

mod common;

use std::time::{Duration, Instant};

use common::{Fake, ms, percentile, post_command};

const WAIT: Duration = Duration::from_secs(10);

struct Run {
    added: Vec<Duration>,
    errors: usize,
}

async fn commands(
    client: &reqwest::Client,
    base: &str,
    fake: &Fake,
    injected: Duration,
    n: usize,
    tag: &str,
) -> Run {
    fake.set_latency(injected);
    let mut added = Vec::with_capacity(n);
    let mut errors = 0;
    for i in 0..n {
        let id = format!("{tag}-{i}-{}", fastrand::u32(..));
        let (url, replied) = fake.reply_to(&id);
        let email = format!("customer-{id}@acme.com");
        let sent = Instant::now();
        let acked = post_command(client, base, &format!("{id}.bench"), &email, &url)
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if !acked {
            errors += 1;
            continue;
        }
        match tokio::time::timeout(WAIT, replied).await {
            Ok(Ok(at)) => added.push((at - sent).saturating_sub(injected)),
            _ => errors += 1,
        }
    }
    added.sort();
    Run { added, errors }
}

async fn bare_round_trips(client: &reqwest::Client, fake: &Fake, n: usize) -> Vec<Duration> {
    fake.set_latency(Duration::ZERO);
    let mut all = Vec::with_capacity(n);
    for i in 0..n {
        let sent = Instant::now();
        let ok = client
            .get(format!(
                "{}/sessions/v2?email=bare{i}%40acme.com",
                fake.base
            ))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            all.push(sent.elapsed());
        }
    }
    all.sort();
    all
}

fn main() -> anyhow::Result<()> {
    if !common::measuring("e2e") {
        return Ok(());
    }
    let n: usize = common::env_or("E2E_REQUESTS", 300);
    common::block_on(async {
        let dir = tempfile::TempDir::new()?;
        let fake = Fake::start(None).await?;
        let mut config = common::config(
            &format!("sqlite://{}/e2e.db", dir.path().display()),
            &fake.base,
        );
        config.fullstory.digest = replaydesk::config::DigestMode::Never;
        config.fullstory.requests_per_second = 10_000;
        config.fullstory.burst = 10_000;
        let service = common::serve(config, true).await?;
        let client = reqwest::Client::new();
        // Warm up connections, the store and the worker.
        commands(&client, &service.base, &fake, Duration::ZERO, 20, "warm").await;

        let bare = bare_round_trips(&client, &fake, n).await;
        let bare_p50 = percentile(&bare, 0.5);
        println!(
            "baseline: bare reqwest round trip to the fake FullStory: p50 {:.3} ms, p99 {:.3} ms ({} requests)",
            ms(bare_p50),
            ms(percentile(&bare, 0.99)),
            bare.len()
        );
        println!(
            "| FullStory latency | commands | added p50 | added p99 | p50 / bare round trip | errors |"
        );
        println!("|---|---|---|---|---|---|");
        for (injected, count) in [(Duration::ZERO, n), (Duration::from_millis(200), n / 5)] {
            let run = commands(&client, &service.base, &fake, injected, count.max(1), "run").await;
            let p50 = percentile(&run.added, 0.5);
            println!(
                "| {} ms | {} | {:.2} ms | {:.2} ms | {:.1}× | {} |",
                injected.as_millis(),
                run.added.len(),
                ms(p50),
                ms(percentile(&run.added, 0.99)),
                p50.as_secs_f64() / bare_p50.as_secs_f64().max(1e-9),
                run.errors
            );
        }
        drop(service);
        anyhow::Ok(())
    })
}
