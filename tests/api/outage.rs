//! An upstream outage, with real processes: FullStory answers 503 for longer than the queue's whole
//! retry schedule (2 + 4 + 8 + 16 + 32 s of backoff over 6 attempts, which used to make every job dead
//! with a "gave up" note), while a Zendesk ticket and a Slack `/replays` arrive, signed as the
//! platforms sign them.
//!
//! What must hold, counted at the fakes: the Slack user is told that the answer will follow (within
//! 30 s of asking, though the test asserts only that it came before FullStory was back); the ticket
//! gets no note during the outage; after recovery exactly one note with the session and one Slack
//! answer; no job dead or expired; and FullStory got at most what the breaker allows: per process, the
//! failures that open it (plus the calls already in flight), then one probe per
//! `limits.outage_probe_interval`. The same with the serving process killed (`kill -9`) during the
//! outage and started again.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use replaydesk::{
    adapters::slack::verify::sign,
    outbound::{
        Admission, Breaker, BreakerSettings, BreakerState, Breakers, OPEN_AFTER, RedisLink,
    },
    store::{self, JobState},
};
use serde_json::Value;
use tempfile::TempDir;
use wiremock::{
    Mock, MockServer, Request, Respond, ResponseTemplate,
    matchers::{method, path, path_regex},
};

use super::{
    fakes::FakeZendesk,
    processes::{MeteredApi, MeteredFullStory, Replica, deliver, environment, wait_until},
    slack::command_fields,
};

const SLACK_SECRET: &str = "outage-slack-signing-secret";
/// How long FullStory is down: longer than the old retry schedule (62 s of backoff).
const OUTAGE: Duration = Duration::from_secs(70);
const PROBE_INTERVAL_SECS: u64 = 1;
const WORKERS: usize = 4;

/// FullStory answering 503 while `down`, counting the calls it got meanwhile; then a working FullStory.
struct DownFor {
    down: Arc<AtomicBool>,
    during_outage: Arc<AtomicUsize>,
    up: MeteredApi,
}

impl Respond for DownFor {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        if self.down.load(Ordering::SeqCst) {
            self.during_outage.fetch_add(1, Ordering::SeqCst);
            return ResponseTemplate::new(503).set_body_string("upstream unavailable");
        }
        self.up.respond(request)
    }
}

struct Outage {
    fullstory: MeteredFullStory,
    down: Arc<AtomicBool>,
    during_outage: Arc<AtomicUsize>,
}

impl Outage {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(AtomicUsize::new(0));
        let down = Arc::new(AtomicBool::new(true));
        let during_outage = Arc::new(AtomicUsize::new(0));
        Mock::given(path_regex("^/"))
            .respond_with(DownFor {
                down: down.clone(),
                during_outage: during_outage.clone(),
                up: MeteredApi {
                    arrivals: arrivals.clone(),
                    rejected: rejected.clone(),
                    limit: None,
                    delay: Duration::ZERO,
                },
            })
            .mount(&server)
            .await;
        Self {
            fullstory: MeteredFullStory {
                server,
                arrivals,
                rejected,
            },
            down,
            during_outage,
        }
    }
}

/// Slack's `response_url` (and Web API), recording what is posted.
async fn fake_slack() -> MockServer {
    let slack = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/T1/outage/xyz"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&slack)
        .await;
    Mock::given(path_regex("^/api/"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"ok": true})))
        .mount(&slack)
        .await;
    slack
}

/// The texts posted to the `response_url`, oldest first.
async fn slack_posts(slack: &MockServer) -> Vec<String> {
    slack
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == "/hooks/T1/outage/xyz")
        .map(|r| {
            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
            body.to_string()
        })
        .collect()
}

async fn slash_command(http: &reqwest::Client, replica: &Replica, response_url: &str) -> u16 {
    let fields = command_fields("jane@acme.com", "trigger-outage-1", response_url);
    let body = serde_urlencoded::to_string(&fields).unwrap();
    let (ts, signature) = sign(
        SLACK_SECRET,
        chrono::Utc::now().timestamp(),
        body.as_bytes(),
    );
    http.post(format!("{}/slack/commands", replica.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn an_outage_is_waited_out(kill_during_outage: bool) {
    super::helpers::capture_logs();
    replaydesk::install_crypto_provider();
    let outage = Outage::start().await;
    let zendesk = FakeZendesk::start().await;
    let slack = fake_slack().await;
    let dir = TempDir::new().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("replaydesk.db").display());
    let mut env = environment(
        &store_url,
        &zendesk,
        &outage.fullstory,
        "na1.outage-key-0123456789",
    );
    env.extend(
        [
            ("REPLAYDESK_SLACK__SIGNING_SECRET", SLACK_SECRET.to_owned()),
            ("REPLAYDESK_SLACK__BOT_TOKEN", "xoxb-outage".into()),
            ("REPLAYDESK_SLACK__API_URL", format!("{}/api", slack.uri())),
            // The fake's host, listed like any other (loopback is not exempt).
            ("REPLAYDESK_SLACK__RESPONSE_URL_HOSTS", "127.0.0.1".into()),
            (
                "REPLAYDESK_LIMITS__OUTAGE_PROBE_INTERVAL",
                format!("{PROBE_INTERVAL_SECS}s"),
            ),
            ("REPLAYDESK_QUEUE__WORKERS", WORKERS.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let ticket = 90_001;
    zendesk.add_ticket(ticket, "Checkout is broken", "The Pay button does nothing.");
    let http = reqwest::Client::new();
    let response_url = format!("{}/hooks/T1/outage/xyz", slack.uri());

    let started = Instant::now();
    let mut replica = Replica::start(&env).await;
    assert_eq!(deliver(&http, &replica, ticket).await, 200);
    assert_eq!(slash_command(&http, &replica, &response_url).await, 200);
    wait_until(
        "the Slack user is told that the answer will follow",
        Duration::from_secs(30),
        async || {
            slack_posts(&slack)
                .await
                .iter()
                .any(|p| p.contains("unavailable"))
        },
    )
    .await;
    let mut processes = 1;
    if kill_during_outage {
        tokio::time::sleep(OUTAGE / 3).await;
        replica.kill().await;
        replica = Replica::start(&env).await;
        processes += 1;
    }
    let rest = OUTAGE.saturating_sub(started.elapsed());
    tokio::time::sleep(rest).await;
    assert!(
        zendesk.notes(ticket).is_empty(),
        "no note during the outage (no \"gave up\")"
    );
    let outage_lasted = started.elapsed();
    outage.down.store(false, Ordering::SeqCst);
    let calls_during_outage = outage.during_outage.load(Ordering::SeqCst);

    let store = store::open(&store_url).await.unwrap();
    wait_until(
        "the note and the Slack answer after recovery",
        Duration::from_secs(60),
        async || {
            zendesk.notes(ticket).len() == 1
                && slack_posts(&slack)
                    .await
                    .iter()
                    .any(|p| p.contains("app.fullstory.com"))
        },
    )
    .await;
    // Anything that would come twice has had time to.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notes = zendesk.notes(ticket);
    assert_eq!(notes.len(), 1, "exactly one note: {notes:?}");
    assert!(notes[0].contains("app.fullstory.com"), "{}", notes[0]);
    let posts = slack_posts(&slack).await;
    let answers = posts
        .iter()
        .filter(|p| p.contains("app.fullstory.com"))
        .count();
    let notices = posts.iter().filter(|p| p.contains("unavailable")).count();
    assert_eq!(
        (notices, answers),
        (1, 1),
        "told once, answered once: {posts:#?}"
    );
    let counts = store.count_by_state().await.unwrap();
    for ended in [JobState::Dead, JobState::Expired] {
        assert!(counts.contains(&(ended, 0)), "{counts:?}");
    }
    drop(replica);
    store.close().await;

    // Per process: the failures that open the breaker, plus what the other workers had in flight;
    // then one probe per interval over the outage (and one more for a partial interval).
    let probes = outage_lasted.as_secs() / PROBE_INTERVAL_SECS + 1;
    let bound = processes * (OPEN_AFTER as usize + WORKERS) + usize::try_from(probes).unwrap();
    println!(
        "{calls_during_outage} FullStory calls during a {outage_lasted:?} outage ({processes} \
         process(es), probe every {PROBE_INTERVAL_SECS}s); bound {bound}"
    );
    assert!(
        calls_during_outage <= bound,
        "{calls_during_outage} FullStory calls during a {outage_lasted:?} outage; the breaker allows {bound}"
    );
    assert!(calls_during_outage >= 3, "FullStory was probed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fullstory_outage_longer_than_the_retry_schedule_is_waited_out_and_answered_once() {
    an_outage_is_waited_out(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_outage_with_the_process_killed_and_restarted_midway() {
    an_outage_is_waited_out(true).await;
}

// ------------------------------------------------------------------ the breaker shared through Redis

/// Two replicas' breakers (two registries) on the test Redis, for an upstream name of this run only.
fn two_replicas(redis: &str, interval: Duration) -> (Arc<Breaker>, Arc<Breaker>, &'static str) {
    let upstream: &'static str =
        Box::leak(format!("test-{}", uuid::Uuid::new_v4().simple()).into_boxed_str());
    let replica = || {
        let breakers = Breakers::default();
        breakers.configure(BreakerSettings {
            probe_interval: interval,
            redis: Some(Arc::new(
                RedisLink::new(redis, Duration::from_millis(250)).unwrap(),
            )),
            org: upstream.to_owned(),
            ..BreakerSettings::default()
        });
        breakers.get(upstream)
    };
    (replica(), replica(), upstream)
}

#[tokio::test]
async fn replicas_share_a_breaker_through_redis_with_one_probe_for_all() {
    let redis = super::processes::redis_url();
    super::processes::require_redis(&redis).await;
    let (a, b, _) = two_replicas(&redis, Duration::from_secs(1));
    assert_eq!(b.admit().await, Admission::Go);
    for _ in 0..OPEN_AFTER {
        a.failed().await;
    }
    assert_eq!(a.state(), BreakerState::Open);
    wait_until(
        "the other replica sees the breaker open",
        Duration::from_secs(5),
        async || matches!(b.admit().await, Admission::Refused { .. }),
    )
    .await;
    // One probe per interval for both replicas together.
    let mut probes = 0;
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        for breaker in [&a, &b] {
            if breaker.admit().await == Admission::Probe {
                probes += 1;
                breaker.failed().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        (1..=3).contains(&probes),
        "{probes} probes in 2.5 s at one per second for both replicas"
    );
    // A's probe succeeds: B closes within a second.
    wait_until(
        "a probe slot for replica A",
        Duration::from_secs(5),
        async || a.admit().await == Admission::Probe,
    )
    .await;
    assert!(a.succeeded().await);
    wait_until(
        "the other replica sees the breaker closed",
        Duration::from_secs(5),
        async || b.admit().await == Admission::Go,
    )
    .await;
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test]
async fn a_breaker_whose_redis_is_unreachable_works_on_its_own_observations() {
    let (a, b, _) = two_replicas("redis://127.0.0.1:1", Duration::from_secs(60));
    for _ in 0..OPEN_AFTER {
        a.failed().await;
    }
    assert_eq!(
        a.state(),
        BreakerState::Open,
        "fail open to the local breaker"
    );
    assert!(matches!(a.admit().await, Admission::Refused { .. }));
    assert_eq!(
        b.admit().await,
        Admission::Go,
        "nothing shared, nothing invented"
    );
}

// ------------------------------------------------------------------ what /metrics shows

#[tokio::test]
async fn metrics_show_an_open_breaker_and_the_jobs_waiting_on_it() {
    let app = super::helpers::spawn_app().await;
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&app.fullstory)
        .await;
    let text = app.metrics.render();
    assert!(
        text.contains(r#"replaydesk_upstream_breaker_state{upstream="fullstory"} 0"#),
        "{text}"
    );
    let jane = replaydesk::identity::Identity::Email(
        replaydesk::identity::CustomerEmail::parse("jane@acme.com").unwrap(),
    );
    use replaydesk::fullstory::SessionsApi as _;
    assert!(app.state.fullstory.list_sessions(&jane, 5).await.is_err());

    // A job waiting on FullStory, as the queue records it.
    let store = app.store.clone();
    let now = app.clock.now();
    store
        .enqueue(
            "metrics:1",
            replaydesk::store::NewJob::new("lookup", serde_json::json!({})),
            now,
        )
        .await
        .unwrap();
    let job = store
        .claim("w", now + chrono::Duration::seconds(30), now)
        .await
        .unwrap()
        .unwrap();
    let wait = replaydesk::store::Wait {
        upstream: Some("fullstory"),
        until: now + chrono::Duration::seconds(60),
        error: "waiting: fullstory unavailable",
    };
    assert!(store.wait_later(job.id, "w", wait, now).await.unwrap());
    app.queue.refresh_metrics().await.unwrap();

    let text = app.metrics.render();
    for line in [
        r#"replaydesk_upstream_breaker_state{upstream="fullstory"} 1"#,
        r#"replaydesk_upstream_breaker_openings_total{upstream="fullstory"} 1"#,
        r#"replaydesk_queue_waiting_jobs{upstream="fullstory"} 1"#,
        r#"replaydesk_queue_jobs{state="expired"} 0"#,
    ] {
        assert!(text.contains(line), "{line} in\n{text}");
    }
}

#[tokio::test]
async fn check_shows_a_breaker_another_replica_opened_in_redis() {
    let redis = super::processes::redis_url();
    super::processes::require_redis(&redis).await;
    let fullstory = MockServer::start().await;
    Mock::given(path("/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"org": "o"})))
        .mount(&fullstory)
        .await;
    // A key of its own: breakers of their own in Redis, for this run only.
    let api_key = format!("na1.check-{}", uuid::Uuid::new_v4().simple());
    let replica = Breakers::default();
    replica.configure(BreakerSettings {
        probe_interval: Duration::from_secs(10),
        redis: Some(Arc::new(
            RedisLink::new(&redis, Duration::from_millis(250)).unwrap(),
        )),
        org: replaydesk::outbound::org_tag(&api_key),
        ..BreakerSettings::default()
    });
    let breaker = replica.get("fullstory");
    for _ in 0..OPEN_AFTER {
        breaker.failed().await;
    }
    let dir = TempDir::new().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .arg("check")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("REPLAYDESK_FULLSTORY__API_KEY", &api_key)
        .env("REPLAYDESK_FULLSTORY__BASE_URL", fullstory.uri())
        .env("REPLAYDESK_LIMITS__BACKEND", "redis")
        .env("REPLAYDESK_LIMITS__REDIS_URL", &redis)
        .output()
        .await
        .unwrap();
    super::helpers::capture_process_logs(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("outages    fullstory breaker open"),
        "{stdout}"
    );
    assert!(breaker.succeeded().await);
}
