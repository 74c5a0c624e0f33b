//! Platform adapters: Slack, Zendesk, Discord, Intercom. Each is one folder with the same parts:
//!
//! - `verify.rs`: the platform's signature scheme, over the raw body, built from [`crate::signing`];
//! - `inbound.rs`: its routes: verify → check the tenant → parse → enqueue a platform-neutral job
//!   ([`crate::answer`]) durably → acknowledge within the platform's deadline ([`inbound::accept`]);
//! - `api.rs`: its Web API client, sending through [`crate::outbound::Upstream`] (retries, 429s);
//! - `render.rs`: pure functions from a lookup result to the platform's message format;
//! - `reply.rs`: its [`crate::answer::Replier`], posting through the effect ledger so nothing is posted twice;
//! - `mod.rs`: its [`Platform`]: when the configuration switches it on, and [`Platform::plug`], which
//!   builds its clients once and hands back everything the service needs of it ([`Plugged`]).
//!
//! Adding a platform is one folder, one line in [`PLATFORMS`] and its section of the configuration
//! (`src/config`): the composition root ([`crate::wiring`]) mounts its routes, registers its replier,
//! job handlers and background task; `replaydesk check` reports it; its commands, if any, appear under
//! `replaydesk <name>` ([`Platform::command`]). An adapter whose secrets are absent is off: its routes
//! are not mounted (404), and `serve` and `check` say so.

pub mod desk_note;
pub mod discord;
#[cfg(test)]
mod every_platform;
pub mod inbound;
pub mod intercom;
pub mod refusal;
pub mod slack;
pub mod zendesk;

use std::sync::Arc;

use axum::Router;
use futures_util::future::BoxFuture;

use crate::{
    answer::Replier,
    app::{App, AppState},
    config::Config,
    console::Failure,
    queue::JobHandler,
};

/// One platform: when it is on, and how it plugs into the service. Implemented by a unit struct in
/// the platform's folder and listed once in [`PLATFORMS`].
pub trait Platform: Send + Sync {
    /// `slack`, `zendesk`, `discord`: also the `ReplyTo::platform` its jobs carry and its command's name.
    fn name(&self) -> &'static str;

    /// Whether the configuration switches it on: its section's `is_enabled` (its secrets are set),
    /// so every platform's on-switch lives beside its keys in `src/config/`.
    fn enabled(&self, config: &Config) -> bool;

    /// The names its API clients give their [`crate::outbound::Upstream`]s (each has a circuit
    /// breaker, which `replaydesk check` reports).
    fn upstreams(&self) -> &'static [&'static str] {
        &[]
    }

    /// When it is on and answers any tenant who reaches it: the warning `replaydesk check` prints
    /// (said, not failed: a single-tenant install may mean it).
    fn open_tenancy(&self, config: &Config) -> Option<String> {
        let _ = config;
        None
    }

    /// Builds its parts once, over the core, and returns what the service mounts and registers.
    fn plug(&self, app: &Arc<App>) -> anyhow::Result<Plugged>;

    /// Its `replaydesk <name> …` commands, when it has any ([`PlatformCommand`]).
    fn command(&self) -> Option<PlatformCommand> {
        None
    }
}

/// What a plugged-in platform gives the service: built once, from the core.
pub struct Plugged {
    /// Its inbound routes.
    pub routes: Router<AppState>,
    /// How answers are delivered on it.
    pub replier: Arc<dyn Replier>,
    /// Job kinds of its own, beyond the shared lookup, summary and erasure jobs.
    pub handlers: Vec<Arc<dyn JobHandler>>,
    /// A long-running connection of its own (Slack Socket Mode), started with the workers and stopped
    /// when the receiver turns `true`.
    pub background: Option<Background>,
}

/// Starts a platform's background task once the service is assembled.
pub type Background = Box<
    dyn FnOnce(AppState, tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> + Send,
>;

/// A platform's subcommand of `replaydesk`: its clap definition and how to run what was parsed.
pub struct PlatformCommand {
    pub command: clap::Command,
    pub run: RunCommand,
}

/// Runs a platform's parsed command with the loaded configuration.
pub type RunCommand =
    Box<dyn Fn(&clap::ArgMatches, Config) -> BoxFuture<'static, Result<(), Failure>> + Send + Sync>;

impl PlatformCommand {
    /// The command `replaydesk <name>` whose subcommands are the clap-derived `C`, run by `run`.
    pub fn of<C, F>(name: &'static str, about: &'static str, run: fn(C, Config) -> F) -> Self
    where
        C: clap::Subcommand + 'static,
        F: std::future::Future<Output = Result<(), Failure>> + Send + 'static,
    {
        Self {
            command: C::augment_subcommands(
                clap::Command::new(name)
                    .about(about)
                    .subcommand_required(true)
                    .arg_required_else_help(true),
            ),
            // clap has checked the matches against `C` already: a failure here is a usage error.
            run: Box::new(move |matches, config| match C::from_arg_matches(matches) {
                Ok(command) => Box::pin(run(command, config)),
                Err(error) => Box::pin(std::future::ready(Err(Failure::usage(error.to_string())))),
            }),
        }
    }
}

/// Every platform replaydesk knows: one line each.
pub const PLATFORMS: &[&dyn Platform] = &[
    &slack::Slack,
    &zendesk::Zendesk,
    &discord::Discord,
    &intercom::Intercom,
];

/// The platforms the configuration switches on, in [`PLATFORMS`] order.
pub fn enabled(config: &Config) -> Vec<&'static dyn Platform> {
    PLATFORMS
        .iter()
        .copied()
        .filter(|platform| platform.enabled(config))
        .collect()
}
