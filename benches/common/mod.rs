//! What the benchmarks share: run mode, percentiles, signed Slack slash commands, the service on a
//! loopback port, a fresh PostgreSQL database, and a fake FullStory (with injected latency and an
//! optional strict quota) that also plays Slack's `response_url`.
//!
//! Each bench is a `harness = false` binary. `cargo bench` passes `--bench` and they measure;
//! `cargo test --all-targets` builds and runs them without it, and they return at once
//! ([`measuring`]), so the test suite stays fast and needs no PostgreSQL for them.

#![allow(dead_code)] // Each bench uses a part of this module.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use replaydesk::{
    adapters::slack::verify::sign,
    app::{App, AppState},
    clock::Clock,
    config::{Config, List, Secret, Secrets},
};
use tokio::sync::oneshot;

pub const SECRET: &str = "bench-signing-secret";

/// True under `cargo bench` (which passes `--bench`); false when `cargo test` runs the binary.
pub fn measuring(name: &str) -> bool {
    let on = std::env::args().any(|a| a == "--bench");
    if !on {
        println!("{name}: not measuring in test mode; run `cargo bench --bench {name}`");
    }
    on
}

/// Runs `work` on a multi-threaded runtime (the service's own kind).
pub fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(
    work: F,
) -> anyhow::Result<()> {
    replaydesk::install_crypto_provider();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(work)
}

/// An environment variable as a number, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A signed `/replays TEXT` slash command answered at `response_url`: (body, timestamp, signature).
pub fn slash_command(trigger: &str, text: &str, response_url: &str) -> (String, String, String) {
    let body = serde_urlencoded::to_string([
        ("token", "x"),
        ("team_id", "T0BENCH"),
        ("team_domain", "bench"),
        ("channel_id", "C0BENCH"),
        ("channel_name", "support"),
        ("user_id", "U0BENCH"),
        ("user_name", "agent"),
        ("command", "/replays"),
        ("text", text),
        ("api_app_id", "A0BENCH"),
        ("response_url", response_url),
        ("trigger_id", trigger),
    ])
    .unwrap_or_default();
    let (ts, signature) = sign(SECRET, chrono::Utc::now().timestamp(), body.as_bytes());
    (body, ts, signature)
}

/// POSTs a signed slash command to the service at `base`.
pub fn post_command(
    client: &reqwest::Client,
    base: &str,
    trigger: &str,
    text: &str,
    response_url: &str,
) -> reqwest::RequestBuilder {
    let (body, ts, signature) = slash_command(trigger, text, response_url);
    client
        .post(format!("{base}/slack/commands"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", ts)
        .header("x-slack-signature", signature)
        .body(body)
}

/// A configuration for benches: Slack on with [`SECRET`], FullStory at `fullstory`, logs at warn.
pub fn config(store_url: &str, fullstory: &str) -> Config {
    let mut config = Config::default();
    config.store.url = store_url.to_owned();
    config.fullstory.api_key = Secret::new("na1.bench");
    config.fullstory.base_url = Some(fullstory.to_owned());
    config.slack.signing_secret = Secrets::from_values([SECRET]);
    config.slack.bot_token = Secret::new("xoxb-bench");
    // The fakes' `response_url`s are on loopback: allowed, or every command would be refused on
    // arrival (403) before anything is stored, and the benches would measure that refusal.
    config.slack.response_url_hosts = List(vec!["127.0.0.1".into()]);
    // A PostgreSQL store wants the key every replica hashes with (issue 22: never in the database).
    config.privacy.audit_key = Secret::new("bench-audit-key");
    config.log.level = "warn".into();
    // One bench workspace sends everything: the per-source limit would turn it away.
    config.limits.per_source_per_minute = 1_000_000_000;
    config.limits.per_source_burst = 1_000_000_000;
    config
}

/// A running service on a loopback port; stops when dropped.
pub struct Service {
    pub base: String,
    pub state: AppState,
    _stop: oneshot::Sender<()>,
}

/// Starts the service: the server alone, or (`workers`) the server and the job workers like `serve`.
pub async fn serve(config: Config, workers: bool) -> anyhow::Result<Service> {
    replaydesk::install_crypto_provider();
    let service =
        replaydesk::wiring::Service::builder(Arc::new(App::build(config, Clock::system()).await?))
            .build()?;
    let state = service.state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let stopped = async move {
        let _ = stopped.await;
    };
    if workers {
        tokio::spawn(service.run_until(listener, stopped));
    } else {
        let router = service.router();
        tokio::spawn(async move {
            replaydesk::server::serve(&service.config.server, router, listener, stopped).await
        });
    }
    Ok(Service {
        base: format!("http://{address}"),
        state,
        _stop: stop,
    })
}

/// A fresh database `replaydesk_bench` on the PostgreSQL of `REPLAYDESK_TEST_POSTGRES_URL`.
pub async fn fresh_postgres() -> anyhow::Result<String> {
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

type Strict = governor::DefaultDirectRateLimiter;

/// What the fake FullStory saw.
#[derive(Default)]
pub struct Seen {
    pub list_sessions: AtomicU64,
    pub session_events: AtomicU64,
    pub other: AtomicU64,
    pub rate_limited: AtomicU64,
}

impl Seen {
    /// Session-data calls answered (429s not included).
    pub fn calls(&self) -> u64 {
        self.list_sessions.load(Ordering::Relaxed) + self.session_events.load(Ordering::Relaxed)
    }

    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        for counter in [
            &self.list_sessions,
            &self.session_events,
            &self.other,
            &self.rate_limited,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }
}

struct FakeState {
    latency: Mutex<Duration>,
    /// Each customer's session is the same on every list (derived from the address), as within an
    /// hour of support; off: a new session id on every list.
    stable_sessions: std::sync::atomic::AtomicBool,
    strict: Option<Strict>,
    seen: Arc<Seen>,
    replies: Mutex<HashMap<String, oneshot::Sender<Instant>>>,
}

/// FullStory on loopback: every user has one session from five minutes ago, with a few events.
/// Answers after the injected latency; with a quota, over it answers 429 with `Retry-After: 1`.
/// `POST /response/{id}` plays a Slack `response_url` and tells [`Fake::reply_to`]'s waiter.
pub struct Fake {
    pub base: String,
    pub seen: Arc<Seen>,
    state: Arc<FakeState>,
}

impl Fake {
    pub async fn start(quota: Option<(u32, u32)>) -> anyhow::Result<Self> {
        let seen = Arc::new(Seen::default());
        let strict = quota.map(|(per_second, burst)| {
            let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
            let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
            governor::RateLimiter::direct(
                governor::Quota::per_second(per_second).allow_burst(burst),
            )
        });
        let state = Arc::new(FakeState {
            latency: Mutex::new(Duration::ZERO),
            stable_sessions: std::sync::atomic::AtomicBool::new(false),
            strict,
            seen: seen.clone(),
            replies: Mutex::new(HashMap::new()),
        });
        let router = Router::new()
            .route("/sessions/v2", get(list_sessions))
            .route("/v2/sessions/{id}/events", get(session_events))
            .route("/response/{id}", post(response_url))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(Self {
            base: format!("http://{address}"),
            seen,
            state,
        })
    }

    /// From now on each customer's latest session is the same on every list.
    pub fn stable_sessions(&self) {
        self.state
            .stable_sessions
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Latency injected before every FullStory answer.
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().unwrap_or_else(|e| e.into_inner()) = latency;
    }

    /// A `response_url` for `id`, and what resolves when a reply is posted there.
    pub fn reply_to(&self, id: &str) -> (String, oneshot::Receiver<Instant>) {
        let (tx, rx) = oneshot::channel();
        self.state
            .replies
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_owned(), tx);
        (format!("{}/response/{id}", self.base), rx)
    }
}

async fn gate(state: &FakeState) -> Option<Response> {
    let latency = *state.latency.lock().unwrap_or_else(|e| e.into_inner());
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if let Some(strict) = &state.strict
        && strict.check().is_err()
    {
        state.seen.rate_limited.fetch_add(1, Ordering::Relaxed);
        return Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", "1")],
                "slow down",
            )
                .into_response(),
        );
    }
    None
}

async fn list_sessions(
    State(state): State<Arc<FakeState>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    if let Some(refused) = gate(&state).await {
        return refused;
    }
    state.seen.list_sessions.fetch_add(1, Ordering::Relaxed);
    let created = chrono::Utc::now().timestamp_millis() - 5 * 60 * 1000;
    let n = if state.stable_sessions.load(Ordering::Relaxed) {
        // FNV-1a of the query (the customer): the same session for the same customer.
        query
            .unwrap_or_default()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            })
            >> 24
    } else {
        fastrand::u64(1..1 << 40)
    };
    axum::Json(serde_json::json!({ "sessions": [{
        "userId": "1",
        "sessionId": n.to_string(),
        "createdTime": (created / 1000).to_string(),
        "fsUrl": format!("https://app.fullstory.com/ui/o-1/session/1:{n}"),
    }]}))
    .into_response()
}

async fn session_events(State(state): State<Arc<FakeState>>) -> Response {
    if let Some(refused) = gate(&state).await {
        return refused;
    }
    state.seen.session_events.fetch_add(1, Ordering::Relaxed);
    let now = chrono::Utc::now();
    axum::Json(serde_json::json!({ "events": [
        {"event_type": "navigate", "event_time": now.to_rfc3339(), "event_properties": {"url": "https://shop.example/cart"}},
        {"event_type": "click", "event_time": now.to_rfc3339(), "event_properties": {"click_type": "rage"}},
    ]}))
    .into_response()
}

async fn response_url(State(state): State<Arc<FakeState>>, Path(id): Path<String>) -> StatusCode {
    let at = Instant::now();
    let waiter = state
        .replies
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    if let Some(waiter) = waiter {
        let _ = waiter.send(at);
    }
    StatusCode::OK
}
