//! Shared test scaffolding: configurations pointing at fakes, the app on a real port, FullStory answers.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use replaydesk::{
    app::App,
    clock::Clock,
    config::{Config, Interval, Secret},
};
use serde_json::{Value, json};
use tempfile::TempDir;

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
pub fn config(fullstory_url: &str, dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.fullstory.api_key = Secret::new("na1.test-key-0123456789");
    config.fullstory.base_url = Some(fullstory_url.to_owned());
    config.fullstory.retry_backoff = Interval(Duration::from_millis(20));
    config.fullstory.timeout = Interval(Duration::from_secs(2));
    config.fullstory.requests_per_second = 1000;
    config.fullstory.burst = 1000;
    config.limits.outage_probe_interval = Interval(Duration::from_millis(1));
    config.store.url = format!("sqlite://{}", dir.path().join("replaydesk.db").display());
    config.server.listen = "127.0.0.1:0".into();
    config.validate().expect("the test configuration is valid");
    config
}

pub async fn app(config: Config) -> Arc<App> {
    capture_logs();
    replaydesk::install_crypto_provider();
    Arc::new(
        App::build(config, Clock::system())
            .await
            .expect("the app builds"),
    )
}

/// The whole service (server, workers, adapters) on a real loopback port; stopped with the test.
pub struct TestServer {
    pub address: SocketAddr,
    pub app: Arc<App>,
    pub http: reqwest::Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl TestServer {
    pub async fn start(config: Config) -> Self {
        let service =
            replaydesk::wiring::Service::around(app(config).await).expect("the service assembles");
        let app = service.app.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(service.run_until(listener, async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            app,
            http: reqwest::Client::new(),
            _stop: stop,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
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
