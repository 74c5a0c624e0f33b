//! Shared test scaffolding: configurations pointing at fakes, the app on a real port, FullStory answers.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use replaydesk::{
    app::{App, AppState},
    clock::Clock,
    config::{Config, Interval, Secret},
};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A configuration for tests: FullStory at `fullstory_url`, a fresh SQLite file, fast retries.
pub fn config(fullstory_url: &str, dir: &TempDir) -> Config {
    let mut config = Config::default();
    config.fullstory.api_key = Secret::new("na1.test-key-0123456789");
    config.fullstory.base_url = Some(fullstory_url.to_owned());
    config.fullstory.retry_backoff = Interval(Duration::from_millis(20));
    config.fullstory.timeout = Interval(Duration::from_secs(2));
    config.fullstory.requests_per_second = 1000;
    config.fullstory.burst = 1000;
    config.store.url = format!("sqlite://{}", dir.path().join("replaydesk.db").display());
    config.server.listen = "127.0.0.1:0".into();
    config.validate().expect("the test configuration is valid");
    config
}

pub async fn app(config: Config) -> Arc<App> {
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
        let state = AppState::around(app(config).await).expect("the service assembles");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(replaydesk::cli::serve::run_until(
            state.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            address,
            app: state.app.clone(),
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

pub fn sessions(entries: Vec<Value>) -> Value {
    json!({ "sessions": entries })
}
