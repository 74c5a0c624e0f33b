//! Zendesk: a ticket webhook becomes one internal note with the replays, never the same session twice.
//!
//! The platform's contract (developer.zendesk.com/documentation/webhooks; PLATFORMS.md):
//! - **Route** `POST /zendesk/webhook`, called by a trigger ("ticket created", "requester replied")
//!   through a webhook whose body is the trigger's JSON template ([`payload::RECOMMENDED_TEMPLATE`]).
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
//! Parts: [`verify`] (signature), [`payload`] (the tolerant body reader), [`inbound`] (the route),
//! [`job`] (`zendesk.ticket`: reads the ticket, resolves whom to look up, runs the lookup, sends the
//! optional FullStory event), [`reply`] (the [`crate::jobs::Replier`]: claims, note, tag through the
//! effect ledger), [`render`] (the note's HTML), [`cli`] (`replaydesk zendesk setup|backfill|app`),
//! [`app`] (the ticket sidebar app: `/zendesk/app…`, sharing the job's identity rules and the note).
//!
//! The adapter is on when `zendesk.webhook_secret` and an API credential (`zendesk.api_token` with
//! `zendesk.email`, or `zendesk.oauth_token`) are set; the configuration then also needs
//! `zendesk.subdomain` or `zendesk.base_url`.

pub mod api;
pub mod app;
pub mod cli;
pub mod inbound;
pub mod job;
pub mod payload;
pub mod render;
pub mod reply;
pub mod verify;

use std::sync::{Arc, OnceLock};

use axum::{Router, routing::post};

use crate::{
    app::{App, AppState},
    config::Config,
    jobs::Replier,
    queue::JobHandler,
};

/// `ReplyTo::platform` and the metrics label.
pub const PLATFORM: &str = "zendesk";

/// The Zendesk adapter.
pub struct Zendesk {
    /// Shared with the sidebar's routes, which are mounted before the service is assembled.
    parts: Arc<OnceLock<Parts>>,
}

/// What the replier, the job handler and the sidebar share: one API client, so one 429 cool-down, and
/// one per-account lookup limit.
struct Parts {
    api: Arc<api::ZendeskApi>,
    replier: Arc<reply::ZendeskReplier>,
    /// Each account's FullStory spend (`zendesk.account_lookups_per_minute`).
    accounts: Arc<crate::adapters::sources::SourceLimits>,
}

impl Zendesk {
    /// The adapter, or `None` (off) when its secrets are absent.
    pub fn from_config(config: &Config) -> Option<Self> {
        let zd = &config.zendesk;
        let on = zd.webhook_secret.is_set() && (zd.api_token.is_set() || zd.oauth_token.is_set());
        on.then(|| Self {
            parts: Arc::new(OnceLock::new()),
        })
    }

    fn parts(&self, app: &Arc<App>) -> anyhow::Result<&Parts> {
        if let Some(parts) = self.parts.get() {
            return Ok(parts);
        }
        let api = Arc::new(api::ZendeskApi::from_config(
            &app.config.zendesk,
            app.metrics.upstream.clone(),
        )?);
        let replier = Arc::new(reply::ZendeskReplier::new(
            api.clone(),
            app.store.clone(),
            app.clock.clone(),
            &app.config.zendesk,
        ));
        let accounts = Arc::new(crate::adapters::sources::SourceLimits::per_minute(
            app.config.zendesk.account_lookups_per_minute,
            app.config.limits.per_source_burst,
        ));
        Ok(self.parts.get_or_init(|| Parts {
            api,
            replier,
            accounts,
        }))
    }
}

impl super::Adapter for Zendesk {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn routes(&self) -> Router<AppState> {
        Router::new()
            .route("/zendesk/webhook", post(inbound::webhook))
            .merge(app::routes(self.parts.clone()))
    }

    fn replier(&self, app: &Arc<App>) -> anyhow::Result<Arc<dyn Replier>> {
        Ok(self.parts(app)?.replier.clone())
    }

    fn job_handlers(&self, app: &Arc<App>) -> anyhow::Result<Vec<Arc<dyn JobHandler>>> {
        let parts = self.parts(app)?;
        Ok(vec![Arc::new(job::TicketHandler {
            app: app.clone(),
            api: parts.api.clone(),
            replier: parts.replier.clone(),
            accounts: parts.accounts.clone(),
        })])
    }
}
