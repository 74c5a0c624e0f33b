//! `replaydesk zendesk setup`, `replaydesk zendesk backfill` and `replaydesk zendesk app`: the
//! commands and their arguments here, each command in its own file ([`setup`], [`backfill`],
//! [`sidebar`]), with what they share (the API client, `--url`, failures) below.

mod backfill;
mod setup;
mod sidebar;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::api::{ZendeskApi, ZendeskError};
use crate::{
    config::{Config, parse_duration},
    console::Failure,
    outbound::Upstreams,
};

#[derive(Debug, Subcommand)]
pub enum ZendeskCommand {
    /// Print the webhook and triggers that send tickets to replaydesk; --apply creates them.
    Setup(SetupArgs),
    /// Send "Support Ticket Created" events to FullStory for past tickets (batch imports).
    Backfill(BackfillArgs),
    /// Write the ticket sidebar app (a ZAF v2 zip to upload as a private app); with zendesk.app_id,
    /// print its public key for zendesk.app_public_key.
    App(AppArgs),
}

#[derive(Debug, Args)]
pub struct AppArgs {
    /// replaydesk's public base URL, e.g. https://replaydesk.example.com (default: server.public_url).
    #[arg(long)]
    pub url: Option<String>,
    /// Where to write the zip (never through a symbolic link).
    #[arg(long, default_value = "replaydesk.zip")]
    pub out: std::path::PathBuf,
    /// Replace --out when it exists (a regular file only).
    #[arg(long)]
    pub force: bool,
    /// The manifest's author name.
    #[arg(long, default_value = "replaydesk")]
    pub author_name: String,
    /// The manifest's author email (default: zendesk.email, else replaydesk@ the --url host).
    #[arg(long)]
    pub author_email: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// replaydesk's public base URL, e.g. https://replaydesk.example.com (default: server.public_url).
    #[arg(long)]
    pub url: Option<String>,
    /// Create the webhook and the triggers through the Zendesk API and print the signing secret.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Tickets created on or after this day (2026-01-31, UTC) or moment (RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: DateTime<Utc>,
    /// Events per batch import (at most 50,000).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub batch_size: u32,
    /// How often a running batch import's status is read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub poll_interval: Duration,
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{text}` is not a date like 2026-01-31 or 2026-01-31T09:00:00Z"))
}

pub async fn run(command: ZendeskCommand, config: Config) -> Result<(), Failure> {
    match command {
        ZendeskCommand::Setup(args) => setup::run(config, args).await,
        ZendeskCommand::Backfill(args) => backfill::run(config, args).await,
        ZendeskCommand::App(args) => sidebar::run(config, args).await,
    }
}

/// Tells the admin which `[zendesk]` setting to put in the configuration (`line`, TOML).
pub(super) fn print_setting(what: &str, line: &str) {
    println!();
    println!("Put {what} in the configuration, then restart replaydesk:");
    println!("[zendesk]");
    println!("{line}");
}

pub(super) fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

pub(super) fn api(config: &Config, upstreams: Upstreams) -> Result<ZendeskApi, Failure> {
    ZendeskApi::from_config(&config.zendesk, upstreams).map_err(|e| Failure::usage(e.to_string()))
}

pub(super) fn zendesk_failure(step: &str) -> impl Fn(ZendeskError) -> Failure + '_ {
    move |error| Failure::failed(format!("{step}: {error}"))
}

/// `--url`, else `server.public_url`, as an http(s) URL.
pub(super) fn public_url(config: &Config, url: Option<String>) -> Result<reqwest::Url, Failure> {
    let url = url
        .or_else(|| config.server.public_url.clone())
        .ok_or_else(|| {
            Failure::usage("give --url https://your-replaydesk-host (or set server.public_url)")
        })?;
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(u),
        _ => Err(Failure::usage(format!(
            "--url `{url}` is not an http(s) URL"
        ))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_day_or_a_moment() {
        assert_eq!(
            parse_since("2026-01-31").unwrap().to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-01-31T09:30:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-01-31T08:30:00+00:00"
        );
        assert!(parse_since("last week").is_err());
    }
}
