//! Platform adapters: Slack, Zendesk, Discord. Each is one folder with the same parts:
//!
//! - `verify.rs`: the platform's signature scheme, over the raw body, built from [`signing`];
//! - `inbound.rs`: its routes: verify → check the tenant → parse → enqueue a platform-neutral job
//!   ([`crate::jobs`]) durably → acknowledge within the platform's deadline ([`inbound::accept`]);
//! - `api.rs`: its Web API client, sending through [`crate::outbound::Upstream`] (retries, 429s);
//! - `render.rs`: pure functions from a lookup result to the platform's message format;
//! - `reply.rs`: its [`crate::jobs::Replier`], posting through the effect ledger so nothing is posted twice.
//!
//! Adding a platform is one folder and one line in [`enabled`]. An adapter whose secrets are absent is
//! off: its routes are not mounted (404) and `serve` says so once at start-up.

pub mod discord;
pub mod inbound;
pub mod refusal;
/// The verifiers' building blocks live in the leaf [`crate::signing`] (privacy hashes with them too);
/// re-exported here so each platform's `verify.rs` reads them as its own.
pub use crate::signing;
pub mod slack;
pub mod sources;
pub mod zendesk;

use std::sync::Arc;

use axum::Router;

use crate::{
    app::{App, AppState},
    config::Config,
    jobs::Replier,
    queue::JobHandler,
};

/// One platform, plugged into the server, the queue and the answer path.
pub trait Adapter: Send + Sync {
    /// `slack`, `zendesk`, `discord`: also the `ReplyTo::platform` its jobs carry.
    fn name(&self) -> &'static str;

    /// Its inbound routes.
    fn routes(&self) -> Router<AppState>;

    /// How answers are delivered on this platform.
    fn replier(&self, app: &Arc<App>) -> anyhow::Result<Arc<dyn Replier>>;

    /// Job kinds of its own, beyond the shared lookup and summary jobs.
    fn job_handlers(&self, app: &Arc<App>) -> anyhow::Result<Vec<Arc<dyn JobHandler>>> {
        let _ = app;
        Ok(Vec::new())
    }

    /// A long-running connection of its own (Slack Socket Mode), stopped by `shutdown`.
    fn background(
        &self,
        state: &AppState,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let _ = (state, shutdown);
        None
    }
}

/// The adapters switched on by the configuration: one line per platform.
pub fn enabled(config: &Config) -> Vec<Arc<dyn Adapter>> {
    let all: [Option<Arc<dyn Adapter>>; 3] = [
        slack::adapter(config),
        zendesk::Zendesk::from_config(config).map(|a| Arc::new(a) as Arc<dyn Adapter>),
        discord::Discord::from_config(config),
    ];
    all.into_iter().flatten().collect()
}
