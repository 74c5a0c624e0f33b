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
//! [`wire`] reads payloads (the inbound wire types); [`api`] is the Web API client (through [`crate::outbound::Upstream`]);
//! [`render`] builds Block Kit; [`reply`] posts; [`mention`] and [`notice`] are its own job kinds; [`cli`] prints
//! the app manifest.
//!
//! Crates: Block Kit and message metadata are slack-morphism's models (`default-features = false`: models
//! only, no hyper client, so one TLS stack); its Web API client and Socket Mode client are not used,
//! because every call must go through our shared retry path and its hyper stack would be a second HTTP
//! client. Socket Mode is tokio-tungstenite with rustls (ring) and the system's roots, the same rustls as
//! reqwest. Inbound payloads are small models of our own (see [`wire`] for why). With both added,
//! `cargo tree -d` lists no new duplicate crate, and there is one rustls (0.23, ring; no aws-lc, no
//! native-tls).
//!
//! On when `slack.bot_token` and either `slack.signing_secret` (HTTP) or `slack.app_token` (Socket Mode)
//! are set. Workspace allow-list: `slack.allowed_team_ids` (403). `api_app_id` is not checked: the
//! signing secret (or app token) already belongs to one app.

pub mod api;
mod budget_alert;
pub mod cli;
pub mod escalate;
pub mod handle;
pub mod inbound;
pub mod mention;
pub mod notice;
pub mod render;
pub mod reply;
pub mod socket;
pub mod unfurl;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use axum::{Router, routing::post};

use super::{Platform, PlatformCommand, Plugged};
use crate::{app::App, config::Config};
use api::SlackApi;
use reply::SlackReplier;

pub const PLATFORM: &str = "slack";

/// Slack, as the service plugs it in.
pub struct Slack;

impl Platform for Slack {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn enabled(&self, config: &Config) -> bool {
        config.slack.is_enabled()
    }

    fn upstreams(&self) -> &'static [&'static str] {
        &[api::WEB_API, api::RESPONSE_URL]
    }

    fn open_tenancy(&self, config: &Config) -> Option<String> {
        config.slack.allowed_team_ids.is_empty().then(|| {
            "slack answers any workspace that installs the app; set slack.allowed_team_ids".into()
        })
    }

    fn plug(&self, app: &Arc<App>) -> anyhow::Result<Plugged> {
        let api = Arc::new(SlackApi::new(&app.config.slack, app.upstreams.clone())?);
        if let Some(channel) = &app.config.fullstory.budget_alert_channel {
            app.activations
                .alert_to(Arc::new(budget_alert::BudgetAlert {
                    api: api.clone(),
                    channel: channel.clone(),
                }));
        }
        let replier = Arc::new(SlackReplier {
            app: app.clone(),
            api: api.clone(),
        });
        let socket_api = api.clone();
        Ok(Plugged {
            routes: Router::new()
                .route("/slack/commands", post(inbound::commands))
                .route("/slack/interactions", post(inbound::interactions))
                .route("/slack/events", post(inbound::events)),
            handlers: vec![
                Arc::new(mention::MentionHandler {
                    app: app.clone(),
                    api: api.clone(),
                    replier: replier.clone(),
                }),
                Arc::new(notice::NoticeHandler {
                    replier: replier.clone(),
                }),
                Arc::new(escalate::ModalHandler { api: api.clone() }),
                Arc::new(unfurl::UnfurlHandler {
                    app: app.clone(),
                    api,
                }),
            ],
            replier,
            // Socket Mode, when `slack.app_token` is set.
            background: app.config.slack.app_token.is_set().then(|| {
                Box::new(move |state, shutdown| {
                    tokio::spawn(socket::run(state, socket_api, shutdown))
                }) as super::Background
            }),
        })
    }

    fn command(&self) -> Option<PlatformCommand> {
        Some(PlatformCommand::of(
            PLATFORM,
            "Slack: print the app manifest",
            cli::run,
        ))
    }
}
