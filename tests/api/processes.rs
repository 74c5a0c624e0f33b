//! Real processes: `replaydesk serve` run as child processes of the test, on one store, with Zendesk and
//! FullStory faked on loopback, killed with SIGKILL in the middle of their work.
//!
//! What must hold, counted at the fakes: every delivery answered 200 is stored before the answer and
//! has had its effect (one internal note on its ticket) exactly once, whichever process died and
//! whichever took over; and with several replicas sharing one FullStory budget through Redis, the
//! fake FullStory never sees more than the quota in any second (plus the burst), and never has to
//! answer 429.
//!
//! The children's logs go to `target/test-logs/`, where `.ci/scan-logs` searches them for emails and
//! secrets like every other log of the run.

use std::{
    net::TcpListener,
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use replaydesk::{
    adapters::zendesk::{inbound::ACCOUNT, inbound::INVOCATION, verify},
    store::{self, JobState, SqlStore},
};
use serde_json::json;
use tempfile::TempDir;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::path_regex};

use super::{fakes::FakeZendesk, helpers::ZENDESK_SECRET as SECRET};

// ------------------------------------------------------------------ a FullStory that meters us

/// Answers every session list with one recent session and its events, after `delay`; records when
/// each request arrived; with a `limit`, answers 429 to a request that would make more than `limit`
/// in the trailing second (what FullStory does when its quota is exceeded).
pub(super) struct MeteredApi {
    pub(super) arrivals: Arc<Mutex<Vec<Instant>>>,
    pub(super) rejected: Arc<AtomicUsize>,
    pub(super) limit: Option<usize>,
    pub(super) delay: Duration,
}

impl Respond for MeteredApi {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let now = Instant::now();
        {
            let mut arrivals = self.arrivals.lock().unwrap();
            if let Some(limit) = self.limit {
                let recent = arrivals
                    .iter()
                    .filter(|t| now.duration_since(**t) < Duration::from_secs(1))
                    .count();
                if recent >= limit {
                    self.rejected.fetch_add(1, Ordering::Relaxed);
                    return ResponseTemplate::new(429).insert_header("Retry-After", "1");
                }
            }
            arrivals.push(now);
        }
        let created = chrono::Utc::now().timestamp() - 300;
        let answer = if request.url.path() == "/sessions/v2" {
            ResponseTemplate::new(200).set_body_json(json!({"sessions": [{
                "userId": "5191865402245120", "sessionId": "4000000000000001",
                "createdTime": created.to_string(),
                "fsUrl": "https://app.fullstory.com/ui/o-1/session/5191865402245120:4000000000000001",
            }]}))
        } else if request.url.path().ends_with("/events") {
            ResponseTemplate::new(200).set_body_json(json!({"events": [
                {"event_time": "2026-11-20T14:02:00Z", "event_type": "navigate", "event_properties": {"url": "https://shop/cart"}},
                {"event_time": "2026-11-20T14:04:00Z", "event_type": "rage-click"},
            ]}))
        } else {
            ResponseTemplate::new(404)
        };
        answer.set_delay(self.delay)
    }
}

pub(super) struct MeteredFullStory {
    pub(super) server: MockServer,
    pub(super) arrivals: Arc<Mutex<Vec<Instant>>>,
    pub(super) rejected: Arc<AtomicUsize>,
}

impl MeteredFullStory {
    async fn start(delay: Duration, limit: Option<usize>) -> Self {
        let server = MockServer::start().await;
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let rejected = Arc::new(AtomicUsize::new(0));
        Mock::given(path_regex("^/"))
            .respond_with(MeteredApi {
                arrivals: arrivals.clone(),
                rejected: rejected.clone(),
                limit,
                delay,
            })
            .mount(&server)
            .await;
        Self {
            server,
            arrivals,
            rejected,
        }
    }

    fn calls(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    fn busiest_second(&self) -> usize {
        busiest_second(self.arrivals.lock().unwrap().clone())
    }
}

/// The most of `times` that fall within any one second.
pub(crate) fn busiest_second(mut times: Vec<Instant>) -> usize {
    times.sort();
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| t.duration_since(times[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0)
}

// ------------------------------------------------------------------ replicas

/// One `replaydesk serve` child process; killed (SIGKILL) when dropped.
pub(super) struct Replica {
    child: tokio::process::Child,
    pub(super) url: String,
}

impl Replica {
    /// Starts `replaydesk serve` with `env` on a free loopback port; returns once `/readyz` says 200.
    pub(super) async fn start(env: &[(String, String)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let logs = super::helpers::log_path()
            .with_file_name(format!("replica-{}.log", uuid::Uuid::new_v4().simple()));
        let log = std::fs::File::create(&logs).unwrap();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("REPLAYDESK_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("REPLAYDESK_LOG__FORMAT", "json")
            .env("REPLAYDESK_LOG__LEVEL", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "replaydesk serve exited with {status}: {}",
                    std::fs::read_to_string(&logs).unwrap_or_default()
                );
            }
            let ready = http.get(format!("{url}/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return Self { child, url };
            }
            assert!(
                Instant::now() < deadline,
                "replaydesk serve never became ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no shutdown, no lease released.
    pub(super) async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}

/// The environment every replica of one test shares.
pub(super) fn environment(
    store_url: &str,
    zendesk: &FakeZendesk,
    fullstory: &MeteredFullStory,
    api_key: &str,
) -> Vec<(String, String)> {
    [
        ("REPLAYDESK_STORE__URL", store_url.to_owned()),
        // Replicas on PostgreSQL share one audit key, kept outside the database.
        (
            "REPLAYDESK_PRIVACY__AUDIT_KEY",
            "processes-audit-key".into(),
        ),
        ("REPLAYDESK_ZENDESK__BASE_URL", zendesk.server.uri()),
        ("REPLAYDESK_ZENDESK__EMAIL", "agent@help.io".into()),
        ("REPLAYDESK_ZENDESK__API_TOKEN", "zd-token".into()),
        ("REPLAYDESK_ZENDESK__WEBHOOK_SECRET", SECRET.into()),
        ("REPLAYDESK_IDENTITY__EXCLUDE_DOMAINS", "help.io".into()),
        ("REPLAYDESK_FULLSTORY__API_KEY", api_key.into()),
        ("REPLAYDESK_FULLSTORY__BASE_URL", fullstory.server.uri()),
        // Every ticket's lookup reaches FullStory: the budget, not the cache, is under test.
        ("REPLAYDESK_FULLSTORY__CACHE_TTL", "1ms".into()),
        ("REPLAYDESK_FULLSTORY__NEGATIVE_CACHE_TTL", "1ms".into()),
        ("REPLAYDESK_FULLSTORY__SESSION_CACHE_TTL", "1ms".into()),
        ("REPLAYDESK_FULLSTORY__RETRY_BACKOFF", "100ms".into()),
        // A dead replica's jobs are taken over once its leases run out.
        ("REPLAYDESK_QUEUE__LEASE", "2s".into()),
        ("REPLAYDESK_QUEUE__POLL_INTERVAL", "200ms".into()),
        ("REPLAYDESK_QUEUE__WORKERS", "4".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// Posts a "ticket created" webhook for `ticket`, signed as Zendesk signs it, to `replica`.
pub(super) async fn deliver(http: &reqwest::Client, replica: &Replica, ticket: u64) -> u16 {
    let body = format!(
        r#"{{"ticket_id": "{ticket}", "updated_at": "2026-11-20T14:10Z", "requester_email": "jane@acme.com"}}"#
    );
    let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let signature = verify::sign(SECRET, &timestamp, body.as_bytes());
    http.post(format!("{}/zendesk/webhook", replica.url))
        .header("content-type", "application/json")
        .header(verify::TIMESTAMP, &timestamp)
        .header(verify::SIGNATURE, signature)
        .header(INVOCATION, format!("inv-{ticket}"))
        .header(ACCOUNT, "9001")
        .header("x-zendesk-webhook-id", "01HWEBHOOK")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `done` until it holds, or fails the test with `what` after `limit`.
pub(super) async fn wait_until(what: &str, limit: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Jobs not yet done or dead.
async fn unfinished(store: &SqlStore) -> u64 {
    store
        .count_by_state()
        .await
        .unwrap()
        .into_iter()
        .filter(|(state, _)| matches!(state, JobState::Queued | JobState::Running))
        .map(|(_, n)| n)
        .sum()
}

fn tickets(zendesk: &FakeZendesk, count: u64) -> Vec<u64> {
    let ids: Vec<u64> = (1..=count).map(|n| 70_000 + n).collect();
    for id in &ids {
        // A customer of its own in each ticket: lookups of different people are not coalesced, so
        // every ticket costs FullStory calls.
        zendesk.add_ticket(
            *id,
            "Checkout is broken",
            &format!("The Pay button does nothing for buyer{id}@shop.test either."),
        );
    }
    ids
}

fn notes_per_ticket(zendesk: &FakeZendesk, tickets: &[u64]) -> Vec<usize> {
    tickets.iter().map(|t| zendesk.notes(*t).len()).collect()
}

// ------------------------------------------------------------------ the tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_killed_mid_run_and_restarted_posts_every_acknowledged_note_exactly_once() {
    super::helpers::capture_logs();
    replaydesk::install_crypto_provider();
    let zendesk = FakeZendesk::start().await;
    // Slow enough that the kill lands while jobs are running.
    let fullstory = MeteredFullStory::start(Duration::from_millis(150), None).await;
    let dir = TempDir::new().unwrap();
    let store_url = format!("sqlite://{}", dir.path().join("replaydesk.db").display());
    let env = environment(&store_url, &zendesk, &fullstory, "na1.test-key-0123456789");
    let tickets = tickets(&zendesk, 20);
    let http = reqwest::Client::new();

    let mut first = Replica::start(&env).await;
    for ticket in &tickets {
        assert_eq!(
            deliver(&http, &first, *ticket).await,
            200,
            "ticket {ticket}"
        );
    }
    wait_until(
        "a few notes before the kill",
        Duration::from_secs(60),
        async || notes_per_ticket(&zendesk, &tickets).iter().sum::<usize>() >= 3,
    )
    .await;
    first.kill().await;
    let posted_before = notes_per_ticket(&zendesk, &tickets).iter().sum::<usize>();
    assert!(
        posted_before < tickets.len(),
        "the kill came before the work was done ({posted_before} notes)"
    );

    let _second = Replica::start(&env).await;
    let store = store::open(&store_url).await.unwrap();
    wait_until(
        "every ticket has its note",
        Duration::from_secs(90),
        async || {
            notes_per_ticket(&zendesk, &tickets).iter().all(|n| *n >= 1)
                && unfinished(store.as_ref()).await == 0
        },
    )
    .await;
    assert_eq!(
        notes_per_ticket(&zendesk, &tickets),
        vec![1; tickets.len()],
        "exactly one note per acknowledged delivery"
    );
}

/// A fresh PostgreSQL database for one test, made on the server of `REPLAYDESK_TEST_POSTGRES_URL`.
pub(crate) struct FreshDatabase {
    admin: String,
    name: String,
    pub(crate) url: String,
}

impl FreshDatabase {
    pub(crate) async fn create() -> Self {
        use sqlx::Connection;
        let admin = std::env::var("REPLAYDESK_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("rd_{}", uuid::Uuid::new_v4().simple());
        let mut connection = sqlx::PgConnection::connect(&admin)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL at REPLAYDESK_TEST_POSTGRES_URL is unreachable ({e}): start it \
                 (pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
                )
            });
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.ok();
        let base = admin.split('?').next().unwrap_or(&admin);
        let url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
        Self { admin, name, url }
    }

    pub(crate) async fn drop_now(self) {
        use sqlx::Connection;
        if let Ok(mut connection) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&mut connection)
            .await;
        }
    }
}

pub(crate) fn redis_url() -> String {
    std::env::var("REPLAYDESK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Fails (never skips) when the test Redis is not there.
pub(crate) async fn require_redis(url: &str) {
    let client = redis::Client::open(url).unwrap();
    let reachable = client.get_multiplexed_async_connection().await;
    assert!(
        reachable.is_ok(),
        "Redis at REPLAYDESK_TEST_REDIS_URL ({url}) is unreachable: start it (redis-server \
         --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_the_work_and_one_fullstory_budget_and_survive_a_kill() {
    const PER_SECOND: usize = 8;
    const BURST: usize = 2;
    super::helpers::capture_logs();
    replaydesk::install_crypto_provider();
    let redis = redis_url();
    require_redis(&redis).await;
    let db = FreshDatabase::create().await;
    let zendesk = FakeZendesk::start().await;
    // The fake refuses what a real quota would: one more than the quota plus the burst in any second
    // (one of slack for the network between our limiter and the fake's clock).
    let fullstory =
        MeteredFullStory::start(Duration::from_millis(10), Some(PER_SECOND + BURST + 1)).await;
    // A key of its own: a budget of its own in Redis, fresh for this run.
    let api_key = format!("na1.replicas-{}", uuid::Uuid::new_v4().simple());
    let mut env = environment(&db.url, &zendesk, &fullstory, &api_key);
    env.extend(
        [
            ("REPLAYDESK_LIMITS__BACKEND", "redis".to_owned()),
            ("REPLAYDESK_LIMITS__REDIS_URL", redis.clone()),
            ("REPLAYDESK_LIMITS__EXPECTED_REPLICAS", "3".into()),
            (
                "REPLAYDESK_FULLSTORY__REQUESTS_PER_SECOND",
                PER_SECOND.to_string(),
            ),
            ("REPLAYDESK_FULLSTORY__BURST", BURST.to_string()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    let tickets = tickets(&zendesk, 30);
    let http = reqwest::Client::new();

    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Replica::start(&env).await);
    }
    for (n, ticket) in tickets.iter().enumerate() {
        let replica = &replicas[n % replicas.len()];
        assert_eq!(
            deliver(&http, replica, *ticket).await,
            200,
            "ticket {ticket}"
        );
    }
    wait_until(
        "some notes before the kill",
        Duration::from_secs(60),
        async || notes_per_ticket(&zendesk, &tickets).iter().sum::<usize>() >= 6,
    )
    .await;
    replicas[0].kill().await;

    let store = store::open(&db.url).await.unwrap();
    wait_until(
        "every ticket has its note",
        Duration::from_secs(120),
        async || {
            notes_per_ticket(&zendesk, &tickets).iter().all(|n| *n >= 1)
                && unfinished(store.as_ref()).await == 0
        },
    )
    .await;
    store.close().await;
    drop(replicas);
    db.drop_now().await;

    assert_eq!(
        notes_per_ticket(&zendesk, &tickets),
        vec![1; tickets.len()],
        "exactly one note per acknowledged delivery"
    );
    assert_eq!(
        fullstory.rejected.load(Ordering::Relaxed),
        0,
        "FullStory never had to answer 429"
    );
    let busiest = fullstory.busiest_second();
    assert!(
        busiest <= PER_SECOND + BURST + 1,
        "{busiest} FullStory calls within one second; the quota is {PER_SECOND}/s, burst {BURST}"
    );
    // Three replicas each at the full quota could have sent three times as much.
    assert!(fullstory.calls() >= tickets.len());
}
