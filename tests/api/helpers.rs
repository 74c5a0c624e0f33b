//! The one test harness, after zero2prod's `spawn_app`: [`TestApp::builder`] starts the service the
//! way `serve` assembles it (only through [`replaydesk::wiring::Service`], so what a test runs is what
//! production runs) on a fresh SQLite store, with FullStory and each platform the test asks for faked on
//! loopback and pointed at with that platform's test secrets, and a manual clock. A test then drives it
//! through the router (`oneshot`) or a real port, and runs the queue's jobs one step at a time.
//!
//! Also here: the captured logs, FullStory answers, and the audit trail as `replaydesk audit` reads it.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, http::StatusCode};
use chrono::{DateTime, Utc};
use replaydesk::{
    answer::Replier,
    app::{App, AppState},
    clock::{Clock, ManualClock},
    config::{Config, Interval, List, Secret, Secrets},
    queue::{ExecutionOutcome, Settings},
    wiring::Service,
};
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::MockServer;

use super::fakes::{self, FakeZendesk};

/// Where this test binary's logs go: every line of the whole run, at trace level, through the same
/// redacting writer the service uses. `.ci/run` searches it for every email and secret the tests use
/// (`tests/log-scan.txt`).
pub fn log_path() -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("api-{}.log", std::process::id()))
}

struct LogFile(std::sync::Mutex<std::fs::File>);

impl std::io::Write for &LogFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}

static LOGS: std::sync::OnceLock<&'static LogFile> = std::sync::OnceLock::new();

fn log_file() -> &'static LogFile {
    LOGS.get_or_init(|| {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path())
            .expect("the test log file opens");
        Box::leak(Box::new(LogFile(std::sync::Mutex::new(file))))
    })
}

/// Captures this process's logs (once per test binary).
pub fn capture_logs() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let file = log_file();
        let _ = tracing_subscriber::fmt()
            // The fakes (wiremock) log the requests they receive, headers included: they are not the service.
            .with_env_filter("trace,wiremock=off")
            .with_ansi(false)
            .with_writer(replaydesk::telemetry::Redacting(move || file))
            .try_init();
    });
}

/// Adds a child process's stderr (its logs) to the captured logs.
pub fn capture_process_logs(output: &std::process::Output) {
    use std::io::Write;
    let _ = log_file().write_all(&output.stderr);
}

/// A configuration for tests: FullStory at `fullstory_url`, a fresh SQLite file, fast retries, and
/// circuit breakers that may probe 1 ms after opening (tests step jobs on a manual clock, while the
/// breakers keep real time).
fn config(fullstory_url: &str, dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.fullstory.api_key = Secret::new("na1.test-key-0123456789");
    config.fullstory.base_url = Some(fullstory_url.to_owned());
    config.fullstory.retry_backoff = Interval(Duration::from_millis(20));
    config.fullstory.timeout = Interval(Duration::from_secs(2));
    config.fullstory.requests_per_second = 1000;
    config.fullstory.burst = 1000;
    config.limits.outage_probe_interval = Interval(Duration::from_millis(1));
    config.store.url = sqlite_url(dir);
    config.server.listen = "127.0.0.1:0".into();
    config
}

/// The URL of a SQLite store in `dir`, where the harness keeps its own.
pub fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}", dir.path().join("replaydesk.db").display())
}

// ------------------------------------------------------------------ the platforms' test secrets

/// Slack's signing secret: PLATFORMS.md's known-answer vector, so that its request verifies as signed.
pub const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
pub const SLACK_BOT_TOKEN: &str = "xoxb-test-token";
/// Zendesk's webhook secret (the harness also accepts an older one, as during a rotation).
pub const ZENDESK_SECRET: &str = "zd-signing-secret";
/// RFC 8032 test 1: the secret seed and its public key (the same as PLATFORMS.md's vector).
pub const DISCORD_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
pub const DISCORD_PUBLIC_KEY: &str =
    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
pub const DISCORD_APP: &str = "1100000000000000001";
pub const DISCORD_GUILD: &str = "1200000000000000001";

// ------------------------------------------------------------------ the one harness

/// The service as `serve` assembles it (through [`Service`]), on a fresh store, with FullStory and
/// the platforms a test asks for faked on loopback and a manual clock: every API test's start.
pub async fn spawn_app() -> TestApp {
    TestApp::builder().start().await
}

/// The service's clock as a test sees it: manual unless the test asked for the system's.
#[derive(Clone)]
pub enum TestClock {
    Manual(ManualClock),
    /// Wall time: for tests that wait for real time to pass (a backoff, a breaker's probe).
    System,
}

impl TestClock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::Manual(clock) => clock.now(),
            Self::System => Utc::now(),
        }
    }

    pub fn advance(&self, by: Duration) {
        self.manual().advance(by);
    }

    pub fn set(&self, to: DateTime<Utc>) {
        self.manual().set(to);
    }

    fn manual(&self) -> &ManualClock {
        match self {
            Self::Manual(clock) => clock,
            Self::System => panic!("this app runs on the system clock: time moves by itself"),
        }
    }

    fn clock(&self) -> Clock {
        match self {
            Self::Manual(clock) => clock.clock(),
            Self::System => Clock::system(),
        }
    }
}

/// How the app is reached.
enum Serve {
    /// Through [`TestApp::oneshot`] only.
    Router,
    /// The router on a real loopback port; no workers (the test runs the jobs).
    Port,
    /// [`Service::run_until`] on a real loopback port: workers, background tasks, erasure listener.
    Everything,
}

/// What a replica takes from the app it joins: the configuration (store, fakes, secrets), the clock,
/// the temporary directory and the fakes themselves.
struct Replica {
    config: Config,
    clock: TestClock,
    dir: Arc<TempDir>,
    fakes: Fakes,
}

#[derive(Clone)]
struct Fakes {
    fullstory: Arc<MockServer>,
    slack: Option<Arc<MockServer>>,
    zendesk: Option<Arc<FakeZendesk>>,
    discord: Option<Arc<MockServer>>,
}

type Configure = Box<dyn FnOnce(&mut Config)>;

/// Options of a [`TestApp`]; [`TestAppBuilder::start`] starts it.
#[must_use]
pub struct TestAppBuilder {
    slack: bool,
    zendesk: bool,
    discord: bool,
    configure: Vec<Configure>,
    queue_settings: Option<Settings>,
    repliers: Vec<Arc<dyn Replier>>,
    clock: TestClock,
    store_url: Option<String>,
    replica: Option<Replica>,
    serve: Serve,
}

impl TestAppBuilder {
    /// Slack on: its Web API faked ([`TestApp::slack_api`]), signed with [`SLACK_SECRET`].
    pub fn slack(mut self) -> Self {
        self.slack = true;
        self
    }

    /// Zendesk on: the stateful [`FakeZendesk`] ([`TestApp::zendesk`]), signed with
    /// [`ZENDESK_SECRET`].
    pub fn zendesk(mut self) -> Self {
        self.zendesk = true;
        self
    }

    /// Discord on: its API faked ([`TestApp::discord_api`]), signed with [`DISCORD_SEED`]'s key,
    /// [`DISCORD_GUILD`] allowed.
    pub fn discord(mut self) -> Self {
        self.discord = true;
        self
    }

    /// Changes the configuration once the fakes are in it (in the order given).
    pub fn configure(mut self, change: impl FnOnce(&mut Config) + 'static) -> Self {
        self.configure.push(Box::new(change));
        self
    }

    /// The queue with these settings instead of the configuration's (`queue.*`).
    pub fn queue_settings(mut self, settings: Settings) -> Self {
        self.queue_settings = Some(settings);
        self
    }

    /// The queue with the configuration's settings, as `serve` runs it (the default).
    pub fn configured_queue(mut self) -> Self {
        self.queue_settings = None;
        self
    }

    /// A replier of the test's beside the platforms' (for jobs whose `reply.platform` is its own).
    pub fn replier(mut self, replier: Arc<dyn Replier>) -> Self {
        self.repliers.push(replier);
        self
    }

    /// The manual clock starts at `start` (by default: now).
    pub fn clock_at(mut self, start: DateTime<Utc>) -> Self {
        self.clock = TestClock::Manual(ManualClock::new(start));
        self
    }

    /// Wall time instead of the manual clock.
    pub fn system_clock(mut self) -> Self {
        self.clock = TestClock::System;
        self
    }

    /// The store at `url` instead of a fresh SQLite file (a [`FreshDatabase`] of PostgreSQL, or a
    /// file the test prepared).
    ///
    /// [`FreshDatabase`]: super::processes::FreshDatabase
    pub fn store_url(mut self, url: &str) -> Self {
        self.store_url = Some(url.to_owned());
        self
    }

    /// Another replica of `other`: its configuration (so its store and its fakes), its clock, its
    /// directory; a process of its own (its own cache, queue and metrics).
    pub fn replica_of(mut self, other: &TestApp) -> Self {
        self.replica = Some(Replica {
            config: other.state.config.clone(),
            clock: other.clock.clone(),
            dir: other.dir.clone(),
            fakes: other.fakes.clone(),
        });
        self
    }

    /// The router on a real loopback port ([`TestApp::url`]); no workers: the test runs the jobs.
    pub fn serve(mut self) -> Self {
        self.serve = Serve::Port;
        self
    }

    /// The whole service on a real loopback port, as `replaydesk serve` runs it: workers, background
    /// tasks and the erasure listener too; stopped with the app, or by [`TestApp::shut_down`].
    pub fn serve_with_workers(mut self) -> Self {
        self.serve = Serve::Everything;
        self
    }

    pub async fn start(self) -> TestApp {
        capture_logs();
        replaydesk::install_crypto_provider();
        let (mut config, clock, dir, mut fakes) = match self.replica {
            Some(replica) => (replica.config, replica.clock, replica.dir, replica.fakes),
            None => {
                let dir = Arc::new(TempDir::new().expect("a temporary directory"));
                let fullstory = Arc::new(MockServer::start().await);
                let config = config(&fullstory.uri(), &dir);
                let fakes = Fakes {
                    fullstory,
                    slack: None,
                    zendesk: None,
                    discord: None,
                };
                (config, self.clock, dir, fakes)
            }
        };
        if self.slack && fakes.slack.is_none() {
            let slack = MockServer::start().await;
            config.slack.signing_secret = Secrets::from_values([SLACK_SECRET]);
            config.slack.bot_token = Secret::new(SLACK_BOT_TOKEN);
            config.slack.api_url = Some(format!("{}/api", slack.uri()));
            // The fakes' host: `slack.response_url_hosts` governs loopback too.
            config.slack.response_url_hosts.0.push("127.0.0.1".into());
            fakes.slack = Some(Arc::new(slack));
        }
        if self.zendesk && fakes.zendesk.is_none() {
            let zendesk = FakeZendesk::start().await;
            config.zendesk.base_url = Some(zendesk.server.uri());
            config.zendesk.email = Some(fakes::AGENT.into());
            config.zendesk.api_token = Secret::new(fakes::API_TOKEN);
            config.zendesk.webhook_secret = Secrets::from_values(["old-secret", ZENDESK_SECRET]);
            fakes.zendesk = Some(Arc::new(zendesk));
        }
        if self.discord && fakes.discord.is_none() {
            let discord = MockServer::start().await;
            config.discord.application_id = Some(DISCORD_APP.into());
            config.discord.public_key = Some(DISCORD_PUBLIC_KEY.into());
            config.discord.api_url = Some(discord.uri());
            config.discord.allowed_guild_ids = List(vec![DISCORD_GUILD.into()]);
            fakes.discord = Some(Arc::new(discord));
        }
        if let Some(url) = self.store_url {
            config.store.url = url;
        }
        for change in self.configure {
            change(&mut config);
        }
        config.validate().expect("the test configuration is valid");

        let app = Arc::new(
            App::build(config, clock.clock())
                .await
                .expect("the app builds"),
        );
        let mut builder = Service::builder(app);
        if let Some(settings) = self.queue_settings {
            builder = builder.queue_settings(settings);
        }
        for replier in self.repliers {
            builder = builder.replier(replier);
        }
        let service = builder.build().expect("the service assembles");
        let state = service.state.clone();
        let router = service.router();
        let platforms = service.platforms().to_vec();
        let mut service = Some(service);
        let (address, serving) = match self.serve {
            Serve::Router => (None, None),
            Serve::Port => {
                let (listener, address) = loopback().await;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let router = router.clone();
                let task = tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stopped.await;
                        })
                        .await
                        .map_err(anyhow::Error::from)
                });
                (Some(address), Some(Serving { stop, task }))
            }
            Serve::Everything => {
                let (listener, address) = loopback().await;
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let service = service.take().expect("the service");
                let task = tokio::spawn(service.run_until(listener, async move {
                    let _ = stopped.await;
                }));
                (Some(address), Some(Serving { stop, task }))
            }
        };
        TestApp {
            state,
            clock,
            fullstory: fakes.fullstory.clone(),
            http: reqwest::Client::new(),
            router,
            platforms,
            service,
            address,
            serving,
            fakes,
            dir,
        }
    }
}

async fn loopback() -> (tokio::net::TcpListener, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("its address");
    (listener, address)
}

struct Serving {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A started service and its fakes; dropped with the test (the server stops, the fakes check what
/// they were told to `expect`). Reads as the [`AppState`] it serves (`app.store`, `app.queue`, …).
pub struct TestApp {
    pub state: AppState,
    /// The clock the service reads; a test moves it (`advance`, `set`).
    pub clock: TestClock,
    /// FullStory's fake: always there, nothing mounted. (The service's FullStory client is
    /// `app.state.fullstory`.)
    pub fullstory: Arc<MockServer>,
    pub http: reqwest::Client,
    router: Router,
    platforms: Vec<&'static str>,
    /// The assembled service, until `.serve_with_workers()` runs it.
    service: Option<Service>,
    address: Option<SocketAddr>,
    serving: Option<Serving>,
    fakes: Fakes,
    dir: Arc<TempDir>,
}

impl std::ops::Deref for TestApp {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.state
    }
}

/// A response read whole: its status, headers and text.
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub text: String,
}

impl TestResponse {
    /// The body as JSON (`null` when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl TestApp {
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            slack: false,
            zendesk: false,
            discord: false,
            configure: Vec::new(),
            queue_settings: None,
            repliers: Vec::new(),
            clock: TestClock::Manual(ManualClock::starting_now()),
            store_url: None,
            replica: None,
            serve: Serve::Router,
        }
    }

    pub fn slack_api(&self) -> &MockServer {
        self.fakes.slack.as_deref().expect("built with .slack()")
    }

    pub fn zendesk(&self) -> &FakeZendesk {
        self.fakes
            .zendesk
            .as_deref()
            .expect("built with .zendesk()")
    }

    pub fn discord_api(&self) -> &MockServer {
        self.fakes
            .discord
            .as_deref()
            .expect("built with .discord()")
    }

    /// The enabled platforms, as the service found them in the configuration.
    pub fn platforms(&self) -> &[&'static str] {
        &self.platforms
    }

    /// The temporary directory of the app's SQLite store (and of its audit key file).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// The whole router, for `oneshot`.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The real port (built with `.serve()` or `.serve_with_workers()`).
    pub fn address(&self) -> SocketAddr {
        self.address
            .expect("built with .serve() or .serve_with_workers()")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address())
    }

    /// Sends `request` through the router, without a port; the whole answer.
    pub async fn oneshot(&self, request: axum::http::Request<axum::body::Body>) -> TestResponse {
        use tower::ServiceExt;
        let response = self.router().oneshot(request).await.expect("infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("the body reads");
        TestResponse {
            status,
            headers,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// Runs one due job, as a worker would: its outcome (`EmptyQueue` when none is due).
    pub async fn run_job(&self) -> ExecutionOutcome {
        self.queue
            .try_execute_one("test")
            .await
            .expect("the queue steps")
    }

    /// Runs due jobs until none is due; their outcomes. A job waiting for an upstream gets its time
    /// (the manual clock moves 20 s on).
    pub async fn run_jobs(&self) -> Vec<ExecutionOutcome> {
        let mut outcomes = Vec::new();
        for _ in 0..20 {
            match self.run_job().await {
                ExecutionOutcome::EmptyQueue
                    if matches!(outcomes.last(), Some(ExecutionOutcome::Waiting(_))) =>
                {
                    self.clock.advance(Duration::from_secs(20));
                }
                ExecutionOutcome::EmptyQueue => return outcomes,
                outcome => outcomes.push(outcome),
            }
        }
        panic!("the queue did not drain: {outcomes:?}");
    }

    /// How many jobs the store holds, whatever their state.
    pub async fn jobs(&self) -> usize {
        self.store
            .list_jobs(None, 100)
            .await
            .expect("jobs list")
            .len()
    }

    /// Starts the platforms' background tasks (Slack's Socket Mode, …), stopped when `shutdown`
    /// turns `true` (`.serve_with_workers()` starts them itself).
    pub fn start_background(
        &mut self,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        self.service
            .as_mut()
            .expect("built without .serve_with_workers()")
            .start_background(shutdown)
    }

    /// A Slack slash command with `fields`, form-encoded and signed as Slack signs it now, through
    /// the router.
    pub async fn slack_command(&self, fields: &[(&str, &str)]) -> TestResponse {
        let body = serde_urlencoded::to_string(fields).expect("a form body");
        self.signed_by_slack("/slack/commands", "application/x-www-form-urlencoded", body)
            .await
    }

    /// `/replays TEXT` from `user` in workspace T1, channel C1, answered at `response_url`, signed as
    /// Slack signs it; asserts that it was acknowledged.
    pub async fn replays(&self, user: &str, text: &str, response_url: &str, trigger: &str) {
        let response = self
            .slack_command(&[
                ("team_id", "T1"),
                ("channel_id", "C1"),
                ("user_id", user),
                ("command", "/replays"),
                ("text", text),
                ("response_url", response_url),
                ("trigger_id", trigger),
            ])
            .await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text);
    }

    /// A Slack Events API delivery of `body`, signed as Slack signs it now, through the router.
    pub async fn slack_event(&self, body: &Value) -> TestResponse {
        self.signed_by_slack("/slack/events", "application/json", body.to_string())
            .await
    }

    async fn signed_by_slack(&self, route: &str, content_type: &str, body: String) -> TestResponse {
        let (ts, signature) = replaydesk::adapters::slack::verify::sign(
            SLACK_SECRET,
            self.clock.now().timestamp(),
            body.as_bytes(),
        );
        let request = axum::http::Request::post(route)
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts)
            .header("x-slack-signature", signature)
            .body(axum::body::Body::from(body))
            .expect("a request");
        self.oneshot(request).await
    }

    /// Runs the `replaydesk` binary with `args` as an operator would beside this app: the same store
    /// (and so the same audit key file), FullStory and, when on, Slack (its fake and test secrets),
    /// nothing else from the environment; `stdin` is written to its standard input.
    pub async fn command(&self, args: &[&str], stdin: Option<&str>) -> std::process::Output {
        use tokio::io::AsyncWriteExt;
        let config = &self.state.config;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"));
        command
            .args(args)
            .current_dir(self.dir())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("USER", "operator-1")
            .env("REPLAYDESK_STORE__URL", &config.store.url)
            .env("REPLAYDESK_FULLSTORY__API_KEY", "na1.test-key-0123456789")
            .env("REPLAYDESK_FULLSTORY__BASE_URL", self.fullstory.uri())
            .env("REPLAYDESK_FULLSTORY__RETRY_BACKOFF", "20ms")
            .env("REPLAYDESK_LOG__LEVEL", "debug")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(slack) = &self.fakes.slack {
            command
                .env("REPLAYDESK_SLACK__SIGNING_SECRET", SLACK_SECRET)
                .env("REPLAYDESK_SLACK__BOT_TOKEN", SLACK_BOT_TOKEN)
                .env("REPLAYDESK_SLACK__API_URL", format!("{}/api", slack.uri()))
                .env(
                    "REPLAYDESK_SLACK__RESPONSE_URL_HOSTS",
                    config.slack.response_url_hosts.0.join(","),
                );
        }
        let mut child = command.spawn().expect("the binary starts");
        let mut input = child.stdin.take().expect("its stdin");
        input
            .write_all(stdin.unwrap_or("").as_bytes())
            .await
            .expect("its stdin takes the input");
        drop(input);
        let output = child.wait_with_output().await.expect("the binary runs");
        capture_process_logs(&output);
        output
    }

    /// Stops a served app gracefully (as at SIGTERM); what serving returned.
    pub async fn shut_down(&mut self) -> anyhow::Result<()> {
        let serving = self.serving.take().expect("a served app");
        let _ = serving.stop.send(());
        serving.task.await.expect("serving did not panic")
    }
}

/// A FullStory session entry in the official example's shape, `minutes_ago` minutes before now.
pub fn official_session(device: &str, session: &str, minutes_ago: i64) -> Value {
    let created = chrono::Utc::now().timestamp() - minutes_ago * 60;
    json!({
        "userId": device,
        "sessionId": session,
        "createdTime": created.to_string(),
        "fsUrl": format!("https://app.fullstory.com/ui/ORG/session/{device}:{session}"),
    })
}

/// A moment `minutes` ago, as FullStory writes event times (events of a session made with
/// [`official_session`] must fall after its start: the digest ignores times outside the session).
pub fn minutes_ago(minutes: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::minutes(minutes))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn sessions(entries: Vec<Value>) -> Value {
    json!({ "sessions": entries })
}

/// A Slack slash command for `text` as Slack sends it at `timestamp`: the form body and its signed headers.
pub fn slack_command(
    secret: &str,
    timestamp: i64,
    text: &str,
    response_url: &str,
    trigger: &str,
) -> (String, Vec<(&'static str, String)>) {
    let body = serde_urlencoded::to_string([
        ("team_id", "T1"),
        ("channel_id", "C1"),
        ("user_id", "U1"),
        ("command", "/replays"),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", trigger),
    ])
    .expect("a form body");
    let (ts, signature) =
        replaydesk::adapters::slack::verify::sign(secret, timestamp, body.as_bytes());
    let headers = vec![
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("x-slack-request-timestamp", ts),
        ("x-slack-signature", signature),
    ];
    (body, headers)
}

/// The audit trail's `lookup` entries about `email`, as `replaydesk audit --identity` finds them: its
/// keyed hash, never the address.
pub async fn audited_lookups(app: &App, email: &str) -> Vec<replaydesk::store::AuditRecord> {
    let who = replaydesk::identity::Identity::Email(
        replaydesk::identity::CustomerEmail::parse(email).expect("a test email"),
    );
    app.store
        .audit(None, Some(&app.auditor.hash(&who)), 100)
        .await
        .expect("the audit trail reads")
        .into_iter()
        .filter(|r| r.action == "lookup")
        .collect()
}
