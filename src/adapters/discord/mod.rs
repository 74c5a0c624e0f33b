//! Discord: the `/replays` slash command and the "Find replays" message command for moderators, with
//! answers only the asker sees, over Discord's HTTP interactions endpoint (no gateway connection).
//!
//! Contract (discord.com/developers/docs/interactions/receiving-and-responding; PLATFORMS.md):
//! - **Signature**: Ed25519 over `X-Signature-Timestamp` + the raw body, checked with the application's
//!   public key (`discord.public_key`) by serenity's `Verifier`, plus our 5-minute replay window on the
//!   timestamp. Every failure is 401: Discord probes endpoints with bad signatures and removes those that
//!   accept them ([`verify`]).
//! - **Tenant**: the interaction's `application_id` must be `discord.application_id`, and its guild one of
//!   `discord.allowed_guild_ids` (403 otherwise; closed by default: an empty list is refused at
//!   start-up unless `discord.allow_any_guild = true`, which is logged as a warning).
//! - **Deadline**: Discord waits 3 seconds. PING is answered PONG; everything else is checked (permissions,
//!   [`permissions`]), stored as a job (deduplicated on the interaction id) and answered type 5 with flags
//!   64 (deferred, ephemeral) at once; the job then edits that response (`PATCH
//!   /webhooks/{app}/{token}/messages/@original`) with the answer ([`reply`]).
//! - **Token lifetime**: the interaction token works for 15 minutes. A job that has not answered within 14
//!   minutes, or whose retry would come later than that, ends with an edit saying it took too long; after
//!   15 minutes nothing is sent (it would fail).
//! - **Retries**: Discord's 429 (`Retry-After`, or `retry_after` in the JSON body), 5xx and timeouts go
//!   through the shared [`crate::outbound::Upstream`]; a job whose edit still fails is retried by the queue.
//! - **Commands**: `replaydesk discord register [--guild ID]` bulk-overwrites them ([`cli`]).
//!
//! serenity (without its HTTP client, gateway or TLS) provides the `Verifier`, the model types and the
//! builders; requests go out through our own reqwest client.

pub mod api;
pub mod cli;
pub mod inbound;
pub mod permissions;
pub mod render;
pub mod reply;
pub mod verify;
pub mod wire;

use std::sync::Arc;

use axum::{Extension, Router, routing::post};

use super::{Platform, PlatformCommand, Plugged};
use crate::{app::App, config::Config};

pub const PLATFORM: &str = "discord";

/// Discord, as the service plugs it in.
pub struct Discord;

impl Platform for Discord {
    fn name(&self) -> &'static str {
        PLATFORM
    }

    fn enabled(&self, config: &Config) -> bool {
        config.discord.is_enabled()
    }

    fn upstreams(&self) -> &'static [&'static str] {
        &[PLATFORM]
    }

    fn open_tenancy(&self, config: &Config) -> Option<String> {
        config.discord.allow_any_guild.then(|| {
            "discord serves every server that adds the app (discord.allow_any_guild = true); list \
             yours in discord.allowed_guild_ids"
                .into()
        })
    }

    fn plug(&self, app: &Arc<App>) -> anyhow::Result<Plugged> {
        let discord = &app.config.discord;
        let (Some(application_id), Some(verifier)) = (&discord.application_id, discord.verifier())
        else {
            anyhow::bail!("discord.application_id and discord.public_key are both needed");
        };
        if discord.allow_any_guild {
            tracing::warn!(
                "discord.allow_any_guild = true: every server that adds the app gets customer \
                 lookups; list your servers in discord.allowed_guild_ids to close it"
            );
        }
        let endpoint = Arc::new(inbound::Endpoint {
            application_id: application_id.clone(),
            verifier,
            gate: permissions::Gate::from_config(discord),
            allowed_guild_ids: discord.allowed_guild_ids.clone(),
            allow_any_guild: discord.allow_any_guild,
        });
        let api = api::DiscordApi::new(discord, app.upstreams.clone())?;
        Ok(Plugged {
            routes: Router::new()
                .route("/discord/interactions", post(inbound::interactions))
                .layer(Extension(endpoint)),
            replier: Arc::new(reply::DiscordReplier::new(
                Arc::new(api),
                app.clock.clone(),
                app.lookup.clone(),
                crate::escalate::Tracker::ALL
                    .into_iter()
                    .filter(|t| t.enabled(&app.config))
                    .collect(),
            )),
            handlers: Vec::new(),
            background: None,
        })
    }

    fn command(&self) -> Option<PlatformCommand> {
        Some(PlatformCommand::of(
            PLATFORM,
            "Set up the Discord application: `discord register [--guild ID]`",
            cli::run,
        ))
    }
}
