//! Slack: `/replays`, the "Find replays" message shortcut, `@replaydesk` mentions in threads, the
//! Summarize and Share in channel buttons, and `/replays forget` (erasure, for
//! `privacy.admin_slack_user_ids` only, after a Confirm erasure / Cancel question; the receipt comes back
//! privately through the click's `response_url`), over HTTP or Socket Mode.
//!
//! Contract (api.slack.com; PLATFORMS.md):
//! - **Deadline**: every request is acknowledged within 3 s. The job is recorded durably first
//!   ([`crate::adapters::inbound::accept`]); nothing upstream is called before the acknowledgement. A
//!   slash command's acknowledgement is the ephemeral "Looking up replays for j•••@acme.com…".
//! - **Signature** ([`verify`]): `v0=` + hex HMAC-SHA256(signing secret, `v0:{timestamp}:{raw body}`),
//!   timestamps within 5 minutes; 401 otherwise. Socket Mode needs none (the connection is opened with
//!   the app-level token).
//! - **Retries**: Slack retries events up to 3 times (`X-Slack-Retry-Num`); they are answered 200 again
//!   and deduplicated on `event_id`; commands, shortcuts and button clicks on `trigger_id`.
//! - **Answers** ([`reply`]): through `response_url` (≤ 5 posts in 30 minutes, then
//!   `chat.postEphemeral`) or `chat.postMessage` in the thread with message metadata carrying the
//!   ledger's marker, so a crashed worker never posts a thread reply twice.
//!
//! Parts: [`inbound`] (HTTP routes) and [`socket`] (Socket Mode) both hand each request to [`handle`];
//! [`model`] reads payloads; [`api`] is the Web API client (through [`crate::outbound::Upstream`]);
//! [`render`] builds Block Kit; [`reply`] posts; [`jobs`] holds the mention and notice jobs; [`cli`] prints
//! the app manifest.
//!
//! Crates: Block Kit and message metadata are slack-morphism's models (`default-features = false`: models
//! only, no hyper client, so one TLS stack); its Web API client and Socket Mode client are not used,
//! because every call must go through our shared retry path and its hyper stack would be a second HTTP
//! client. Socket Mode is tokio-tungstenite with rustls (ring) and the system's roots, the same rustls as
//! reqwest. Inbound payloads are small models of our own (see [`model`] for why). With both added,
//! `cargo tree -d` lists no new duplicate crate, and there is one rustls (0.23, ring; no aws-lc, no
//! native-tls).
//!
//! On when `slack.bot_token` and either `slack.signing_secret` (HTTP) or `slack.app_token` (Socket Mode)
//! are set. Workspace allow-list: `slack.allowed_team_ids` (403). `api_app_id` is not checked: the
//! signing secret (or app token) already belongs to one app.

pub mod api;
pub mod cli;
pub mod handle;
pub mod inbound;
pub mod jobs;
pub mod model;
pub mod render;
pub mod reply;
pub mod socket;
pub mod unfurl;
pub mod verify;

use std::sync::{Arc, OnceLock};

use axum::{Router, routing::post};

use super::Adapter;
use crate::{
    app::{App, AppState},
    config::Config,
    jobs::Replier,
    queue::JobHandler,
};
use api::SlackApi;
use reply::SlackReplier;

pub const PLATFORM: &str = "slack";

/// The Slack adapter, when its secrets are configured.
pub fn adapter(config: &Config) -> Option<Arc<dyn Adapter>> {
    let slack = &config.slack;
    let on =
        slack.bot_token.is_set() && (slack.signing_secret.is_set() || slack.app_token.is_set());
    on.then(|| Arc::new(Slack::default()) as Arc<dyn Adapter>)
}

#[derive(Default)]
pub struct Slack {
    /// One client (and so one shared rate-limit cool-down) for the replier, the jobs and Socket Mode.
    api: OnceLock<Arc<SlackApi>>,
}

impl Slack {
    fn api(&self, app: &App) -> anyhow::Result<Arc<SlackApi>> {
        if let Some(api) = self.api.get() {
            return Ok(api.clone());
        }
        let api = Arc::new(SlackApi::new(
            &app.config.slack,
            app.metrics.upstream.clone(),
        )?);
        Ok(self.api.get_or_init(|| api).clone())
    }

    fn replier(&self, app: &Arc<App>) -> anyhow::Result<Arc<SlackReplier>> {
        Ok(Arc::new(SlackReplier {
            app: app.clone(),
            api: self.api(app)?,
        }))
    }
}

impl Adapter for Slack {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
            .route("/slack/commands", post(inbound::commands))
            .route("/slack/interactions", post(inbound::interactions))
            .route("/slack/events", post(inbound::events))
    }

    fn replier(&self, app: &Arc<App>) -> anyhow::Result<Arc<dyn Replier>> {
        Ok(Slack::replier(self, app)?)
    }

    fn job_handlers(&self, app: &Arc<App>) -> anyhow::Result<Vec<Arc<dyn JobHandler>>> {
        let replier = Slack::replier(self, app)?;
        Ok(vec![
            Arc::new(jobs::MentionHandler {
                app: app.clone(),
                api: self.api(app)?,
                replier: replier.clone(),
            }),
            Arc::new(jobs::NoticeHandler { replier }),
            Arc::new(unfurl::UnfurlHandler {
                app: app.clone(),
                api: self.api(app)?,
            }),
        ])
    }

    fn background(
        &self,
        state: &AppState,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !state.config.slack.app_token.is_set() {
            return None;
        }
        match self.api(&state.app) {
            Ok(api) => Some(tokio::spawn(socket::run(state.clone(), api, shutdown))),
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), "Socket Mode cannot start");
                None
            }
        }
    }
}
