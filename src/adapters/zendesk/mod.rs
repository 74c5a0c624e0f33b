//! Zendesk: a ticket webhook becomes one internal note with the replays, never the same session twice.
//!
//! The platform's contract (developer.zendesk.com/documentation/webhooks; PLATFORMS.md):
//! - **Route** `POST /zendesk/webhook`, called by a trigger ("ticket created", "requester replied")
//!   through a webhook whose body is the trigger's JSON template ([`wire::RECOMMENDED_TEMPLATE`]).
//! - **Deadline** about 10 s [U]: we answer as soon as the job is stored (milliseconds), and call no
//!   upstream before that.
//! - **Signature** `x-zendesk-webhook-signature` = base64(HMAC-SHA256(the signing secret *as written*,
//!   `x-zendesk-webhook-signature-timestamp` + raw body)); the timestamp is ISO-8601 and must be within
//!   our own five-minute window (Zendesk documents none); several secrets (`zendesk.webhook_secret` as a
//!   list) are accepted during rotation ([`verify`]).
//! - **Retries**: Zendesk retries some failures up to 3 times [U which], pauses a webhook after ≥ 70 %
//!   errors in 5 minutes, and may invoke a webhook twice for one action. Hence the two dedupes in
//!   [`inbound`] and the per-ticket session claims in [`reply`]. A 503 (store unavailable) asks for a
//!   retry; 400/401/403 are final.
//! - **API** (ticket, comments, users, the note, the tag, setup, export): [`api`], through the shared
//!   retry policy (429 + `Retry-After`, 5xx backoff).
//!
//! Parts: [`verify`] (signature), [`wire`] (the inbound wire types: the tolerant body reader), [`inbound`] (the route),
//! [`ticket`] (the `zendesk.ticket` job: reads the ticket, runs the lookup), [`customers`] (whom a
//! ticket's replays are looked up for), [`erasure_tag`] (a tagged ticket erases its requester),
//! [`ticket_event`] (the optional FullStory event), [`reply`] (the [`crate::answer::Replier`]: claims, note, tag through the
//! effect ledger), [`render`] (the note's HTML), [`cli`] (`replaydesk zendesk setup|backfill|app`),
//! [`sidebar`] (the ticket sidebar app: `/zendesk/app…`, sharing the job's identity rules and the note).
//!
//! The adapter is on when `zendesk.webhook_secret` and an API credential (`zendesk.api_token` with
//! `zendesk.email`, or `zendesk.oauth_token`) are set; the configuration then also needs
//! `zendesk.subdomain` or `zendesk.base_url`.

pub mod api;
pub mod cli;
pub mod customers;
pub mod erasure_tag;
pub mod escalate_tag;
pub mod inbound;
pub mod render;
pub mod reply;
pub mod sidebar;
pub mod ticket;
pub mod ticket_event;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use axum::{Router, routing::post};

use super::{Platform, PlatformCommand, Plugged};
use crate::{app::App, config::Config, source_limits::SourceLimits};

pub const PLATFORM: &str = "zendesk";

/// Zendesk, as the service plugs it in.
pub struct Zendesk;

impl Platform for Zendesk {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn enabled(&self, config: &Config) -> bool {
        config.zendesk.is_enabled()
    }

    fn upstreams(&self) -> &'static [&'static str] {
        &[PLATFORM]
    }

    fn open_tenancy(&self, config: &Config) -> Option<String> {
        config.zendesk.allowed_account_ids.is_empty().then(|| {
            "zendesk accepts webhooks from any account that holds the secret; set \
             zendesk.allowed_account_ids"
                .into()
        })
    }

    fn plug(&self, app: &Arc<App>) -> anyhow::Result<Plugged> {
        let api = Arc::new(api::ZendeskApi::from_config(
            &app.config.zendesk,
            app.upstreams.clone(),
        )?);
        let replier = Arc::new(reply::ZendeskReplier::new(
            api.clone(),
            app.store.clone(),
            app.clock.clone(),
            &app.config.zendesk,
        ));
        let accounts = Arc::new(SourceLimits::per_minute(
            app.config.zendesk.account_lookups_per_minute,
            app.config.limits.per_source_burst,
        ));
        let sidebar = Arc::new(sidebar::Sidebar::new(api.clone(), &app.config));
        Ok(Plugged {
            routes: Router::new()
                .route("/zendesk/webhook", post(inbound::webhook))
                .merge(sidebar::routes(sidebar)),
            handlers: vec![Arc::new(ticket::TicketHandler {
                app: app.clone(),
                api,
                replier: replier.clone(),
                accounts,
            })],
            replier,
            background: None,
        })
    }

    fn command(&self) -> Option<PlatformCommand> {
        Some(PlatformCommand::of(
            PLATFORM,
            "Connect Zendesk (setup), send past tickets to FullStory (backfill), build the sidebar app",
            cli::run,
        ))
    }
}
