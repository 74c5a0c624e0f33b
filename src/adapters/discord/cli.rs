//! `replaydesk discord register [--guild ID]`: registers the `/replays` slash command and the "Find
//! replays" message command.
//!
//! A bulk overwrite (`PUT /applications/{app}/commands`, or `/applications/{app}/guilds/{guild}/commands`
//! with `--guild`, which takes effect at once): the application's other commands there are removed, and
//! running it again changes nothing. Both commands are guild-only (`contexts: [0]`) and visible by default
//! to members holding `discord.required_permissions` (`default_member_permissions`, a string bitset; `"0"`,
//! admins only, when the list is empty and access goes by role: grant the commands to those roles in
//! Server Settings → Integrations). replaydesk checks permissions itself on every use as well.

use std::sync::Arc;

use serenity::{
    builder::{CreateCommand, CreateCommandOption},
    model::application::{CommandOptionType, CommandType, InteractionContext},
};

use super::{
    api::DiscordApi,
    wire::{COMMAND, MESSAGE_COMMAND},
};
use crate::{config::Config, console::Failure, outbound::Upstreams};

#[derive(Debug, clap::Subcommand)]
pub enum DiscordCommand {
    /// Register `/replays` and the "Find replays" message command (bulk overwrite).
    Register {
        /// Register in this guild only (instant), instead of globally.
        #[arg(long, value_name = "ID")]
        guild: Option<String>,
    },
}

/// The commands replaydesk offers, as Discord's bulk overwrite takes them.
pub fn commands(config: &Config) -> Vec<CreateCommand> {
    let permissions = config.discord.permissions();
    let option = |kind, name: &str, description: &str| {
        CreateCommandOption::new(kind, name, description).required(false)
    };
    vec![
        CreateCommand::new(COMMAND)
            .kind(CommandType::ChatInput)
            .description(
                "Find a customer's recent FullStory session replays (only you see the answer)",
            )
            .add_option(option(
                CommandOptionType::String,
                "email",
                "The customer's email address (several, separated by commas, work too)",
            ))
            .add_option(option(
                CommandOptionType::String,
                "uid",
                "The customer's user id in your app",
            ))
            .add_option(option(
                CommandOptionType::Boolean,
                "summary",
                "Add FullStory's AI summary of the likely session",
            ))
            .add_option(option(
                CommandOptionType::Boolean,
                "digest",
                "Add the likely session's digest (what happened, what went wrong)",
            ))
            .default_member_permissions(permissions)
            .contexts(vec![InteractionContext::Guild]),
        CreateCommand::new(MESSAGE_COMMAND)
            .kind(CommandType::Message)
            .default_member_permissions(permissions)
            .contexts(vec![InteractionContext::Guild]),
    ]
}

pub async fn run(command: DiscordCommand, config: Config) -> Result<(), Failure> {
    let DiscordCommand::Register { guild } = command;
    let Some(application_id) = config.discord.application_id.clone() else {
        return Err(Failure::usage(
            "discord.application_id is not set (the APPLICATION ID in the developer portal)",
        ));
    };
    if !config.discord.bot_token.is_set() {
        return Err(Failure::usage(
            "discord.bot_token is not set (Bot → Reset Token in the developer portal)",
        ));
    }
    if let Some(guild) = &guild
        && !((1..=20).contains(&guild.len()) && guild.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(Failure::usage("--guild must be a numeric guild id"));
    }
    let api = Arc::new(DiscordApi::new(&config.discord, Upstreams::default())?);
    let registered = api
        .overwrite_commands(&application_id, guild.as_deref(), &commands(&config))
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    let place = guild.as_deref().map_or_else(
        || "globally".to_owned(),
        |guild| format!("in guild {guild}"),
    );
    println!(
        "Registered {} commands for application {application_id} {place} (bulk overwrite: any other \
         commands of the application there were removed):",
        registered.len()
    );
    for command in &registered {
        let (name, kind) = match command.kind {
            3 => (command.name.clone(), "message command"),
            _ => (format!("/{}", command.name), "slash command"),
        };
        println!(
            "  {name:<14} {kind:<15} id {:<20} default_member_permissions {}",
            command.id,
            command.default_member_permissions.as_deref().unwrap_or("-")
        );
    }
    println!("Guild-only (contexts [0]); replaydesk also checks permissions on every use.");
    Ok(())
}
