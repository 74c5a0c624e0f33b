//! Intercom: one internal note with the replays on every new conversation, and an inbox app (Canvas
//! Kit) beside the conversation with the contact's sessions, Summarize and Add as note.
//!
//! The platform's contract (developers.intercom.com; PLATFORMS.md §10; docs/intercom.md):
//! - **Routes** `POST /intercom/webhook` (topics `conversation.user.created`, `conversation.user.replied`),
//!   `POST /intercom/canvas/initialize` and `POST /intercom/canvas/submit` (the inbox app).
//! - **Signatures** ([`verify`]): webhooks `X-Hub-Signature: sha1=<hex HMAC-SHA1>`, canvas requests
//!   `X-Body-Signature: <hex HMAC-SHA256>`, both of the raw body keyed by the app's client secret
//!   (`intercom.client_secret`, a list during rotation).
//! - **Deadlines**: a webhook is answered as soon as its job is stored (milliseconds); a canvas within
//!   `intercom.canvas_wait` (Intercom waits about 10 s), else "loading" with Refresh ([`canvas`]).
//! - **API** ([`api`]): contacts (email, `external_id`), the conversation's parts, the note; through
//!   the shared retry policy, cool-down and the `intercom` circuit breaker.
//!
//! Parts: [`verify`], [`wire`] (what Intercom sends), [`inbound`] (the webhook), [`conversation`] (the
//! `intercom.conversation` job: whom to look up, the shared lookup), [`reply`] (the note, through the
//! desks' shared delivery and the effect ledger), [`canvas`] (the inbox app's routes), [`render`] (the
//! canvas, within 64 KB), [`stored`] (the canvas's signed `stored_data`).
//!
//! The adapter is on when `intercom.client_secret` and `intercom.access_token` are set; the
//! configuration then also needs `intercom.admin_id` and a workspace list (or `allow_any_workspace`).

pub mod api;
pub mod canvas;
pub mod conversation;
pub mod inbound;
pub mod render;
pub mod reply;
pub mod stored;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use axum::{Extension, Router, routing::post};

use super::{Platform, Plugged};
use crate::{app::App, config::Config, source_limits::SourceLimits};

pub const PLATFORM: &str = "intercom";

/// Intercom, as the service plugs it in.
pub struct Intercom;

impl Platform for Intercom {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn enabled(&self, config: &Config) -> bool {
        config.intercom.is_enabled()
    }

    fn upstreams(&self) -> &'static [&'static str] {
        &[PLATFORM]
    }

    fn open_tenancy(&self, config: &Config) -> Option<String> {
        config.intercom.allow_any_workspace.then(|| {
            "intercom answers every workspace that installs the app (intercom.allow_any_workspace = \
             true); list yours in intercom.allowed_workspace_ids"
                .into()
        })
    }

    fn plug(&self, app: &Arc<App>) -> anyhow::Result<Plugged> {
        let api = Arc::new(api::IntercomApi::from_config(
            &app.config.intercom,
            app.upstreams.clone(),
        )?);
        let replier = Arc::new(reply::IntercomReplier::new(
            api.clone(),
            app.store.clone(),
            app.clock.clone(),
            &app.config.intercom,
        ));
        let workspaces = Arc::new(SourceLimits::per_minute(
            app.config.intercom.workspace_lookups_per_minute,
            app.config.limits.per_source_burst,
        ));
        let parts = Arc::new(canvas::CanvasParts {
            workspaces: workspaces.clone(),
        });
        Ok(Plugged {
            routes: Router::new()
                .route("/intercom/webhook", post(inbound::webhook))
                .route("/intercom/canvas/initialize", post(canvas::initialize))
                .route("/intercom/canvas/submit", post(canvas::submit))
                .layer(Extension(parts)),
            handlers: vec![Arc::new(conversation::ConversationHandler {
                app: app.clone(),
                api,
                replier: replier.clone(),
                workspaces,
            })],
            replier,
            background: None,
        })
    }
}
