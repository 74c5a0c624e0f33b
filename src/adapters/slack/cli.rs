//! `replaydesk slack manifest --url https://host [--socket-mode]`: prints the Slack app manifest (YAML)
//! to create the app with (api.slack.com/apps → Create New App → From a manifest).
//!
//! It declares everything the adapter serves: the `/replays` command, the "Find replays" message
//! shortcut (`find_replays`), the `app_mention` and `link_shared` events, FullStory's app hosts as
//! `unfurl_domains` (previews of pasted session links), interactivity (buttons), the bot scopes
//! (`commands`, `chat:write`, `app_mentions:read`, `channels:history`, `groups:history`: the last two let
//! a mention read its thread's first message and find our own replies after a crash; `links:read`,
//! `links:write` for the previews) and the request
//! URLs under `--url` (default `server.public_url`). With `--socket-mode` the URLs are left out and
//! `socket_mode_enabled` is set: Slack then delivers over the websocket `slack.app_token` opens.
//! Written by hand (every value double-quoted with JSON escaping, which YAML reads the same), so no YAML
//! crate is needed; a test parses it back with a YAML parser.

use clap::{Args, Subcommand};

use super::handle::{COMMAND, FIND_REPLAYS};
use crate::{config::Config, console::Failure};

#[derive(Debug, Subcommand)]
pub enum SlackCommand {
    /// Print the Slack app manifest (YAML) for this deployment.
    Manifest(ManifestArgs),
}

#[derive(Debug, Args)]
pub struct ManifestArgs {
    /// Public base URL Slack reaches replaydesk at (default: server.public_url).
    #[arg(long)]
    pub url: Option<String>,
    /// Deliver over Socket Mode (needs slack.app_token): no public URL, none in the manifest.
    #[arg(long)]
    pub socket_mode: bool,
}

pub async fn run(command: SlackCommand, config: Config) -> Result<(), Failure> {
    match command {
        SlackCommand::Manifest(args) => {
            let url = args.url.or_else(|| config.server.public_url.clone());
            let text = manifest(url.as_deref(), args.socket_mode).map_err(Failure::usage)?;
            print!("{text}");
            Ok(())
        }
    }
}

/// The app manifest. `url` is required unless `socket_mode`.
pub fn manifest(url: Option<&str>, socket_mode: bool) -> Result<String, String> {
    let base = match url {
        Some(url) => Some(check_url(url)?),
        None if socket_mode => None,
        None => {
            return Err(
                "give --url https://your-host (or set server.public_url), or use \
                        --socket-mode"
                    .into(),
            );
        }
    };
    // Socket Mode needs no request URLs; leaving them out keeps Slack from calling a host that may not exist.
    let route = |path: &str| {
        base.as_ref()
            .filter(|_| !socket_mode)
            .map(|b| q(&format!("{b}{path}")))
    };
    let mut out = String::new();
    out.push_str("# Slack app manifest for replaydesk (api.slack.com/apps -> Create New App -> From a manifest)\n");
    out.push_str("display_information:\n");
    out.push_str(&format!("  name: {}\n", q("replaydesk")));
    out.push_str(&format!(
        "  description: {}\n",
        q("A customer's FullStory session replays, where support happens.")
    ));
    out.push_str(&format!("  background_color: {}\n", q("#2c2d30")));
    out.push_str("features:\n");
    out.push_str("  bot_user:\n");
    out.push_str(&format!("    display_name: {}\n", q("replaydesk")));
    out.push_str("    always_online: true\n");
    out.push_str("  slash_commands:\n");
    out.push_str(&format!("    - command: {}\n", q(COMMAND)));
    if let Some(url) = route("/slack/commands") {
        out.push_str(&format!("      url: {url}\n"));
    }
    out.push_str(&format!(
        "      description: {}\n",
        q("A customer's recent session replays")
    ));
    out.push_str(&format!(
        "      usage_hint: {}\n",
        q("jane@acme.com [uid:12345] [--summary] | help")
    ));
    out.push_str("      should_escape: false\n");
    out.push_str("  shortcuts:\n");
    out.push_str(&format!("    - name: {}\n", q("Find replays")));
    out.push_str("      type: message\n");
    out.push_str(&format!("      callback_id: {}\n", q(FIND_REPLAYS)));
    out.push_str(&format!(
        "      description: {}\n",
        q("Session replays of the customers this message names")
    ));
    out.push_str("  unfurl_domains:\n");
    for domain in super::unfurl::UNFURL_DOMAINS {
        out.push_str(&format!("    - {}\n", q(domain)));
    }
    out.push_str("oauth_config:\n");
    out.push_str("  scopes:\n");
    out.push_str("    bot:\n");
    for scope in SCOPES {
        out.push_str(&format!("      - {}\n", q(scope)));
    }
    out.push_str("settings:\n");
    out.push_str("  event_subscriptions:\n");
    if let Some(url) = route("/slack/events") {
        out.push_str(&format!("    request_url: {url}\n"));
    }
    out.push_str("    bot_events:\n");
    for event in BOT_EVENTS {
        out.push_str(&format!("      - {}\n", q(event)));
    }
    out.push_str("  interactivity:\n");
    out.push_str("    is_enabled: true\n");
    if let Some(url) = route("/slack/interactions") {
        out.push_str(&format!("    request_url: {url}\n"));
    }
    out.push_str("  org_deploy_enabled: false\n");
    out.push_str(&format!("  socket_mode_enabled: {socket_mode}\n"));
    out.push_str("  token_rotation_enabled: false\n");
    Ok(out)
}

/// The bot scopes replaydesk needs (`links:read`/`links:write`: previews of FullStory links).
pub const SCOPES: [&str; 7] = [
    "commands",
    "chat:write",
    "app_mentions:read",
    "channels:history",
    "groups:history",
    "links:read",
    "links:write",
];

/// The events replaydesk subscribes to.
pub const BOT_EVENTS: [&str; 2] = ["app_mention", "link_shared"];

fn check_url(url: &str) -> Result<String, String> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if matches!(parsed.scheme(), "https" | "http") && parsed.host().is_some() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        _ => Err(format!(
            "--url: `{url}` is not an https URL like https://replaydesk.example.com"
        )),
    }
}

/// A YAML double-quoted scalar (JSON's string escaping is a subset of YAML's).
fn q(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use yaml_rust2::{Yaml, YamlLoader};

    use super::*;

    fn parse(text: &str) -> Yaml {
        YamlLoader::load_from_str(text).unwrap().remove(0)
    }

    #[test]
    fn the_manifest_declares_the_command_shortcut_event_scopes_and_urls() {
        let doc = parse(&manifest(Some("https://rd.example.com/"), false).unwrap());
        let command = &doc["features"]["slash_commands"][0];
        assert_eq!(command["command"].as_str(), Some("/replays"));
        assert_eq!(
            command["url"].as_str(),
            Some("https://rd.example.com/slack/commands")
        );
        let shortcut = &doc["features"]["shortcuts"][0];
        assert_eq!(shortcut["name"].as_str(), Some("Find replays"));
        assert_eq!(shortcut["type"].as_str(), Some("message"));
        assert_eq!(shortcut["callback_id"].as_str(), Some("find_replays"));
        let scopes: Vec<&str> = doc["oauth_config"]["scopes"]["bot"]
            .as_vec()
            .unwrap()
            .iter()
            .filter_map(Yaml::as_str)
            .collect();
        assert_eq!(scopes, SCOPES);
        let settings = &doc["settings"];
        assert_eq!(
            settings["event_subscriptions"]["request_url"].as_str(),
            Some("https://rd.example.com/slack/events")
        );
        assert_eq!(
            settings["event_subscriptions"]["bot_events"][0].as_str(),
            Some("app_mention")
        );
        assert_eq!(
            settings["interactivity"]["is_enabled"].as_bool(),
            Some(true)
        );
        assert_eq!(
            settings["interactivity"]["request_url"].as_str(),
            Some("https://rd.example.com/slack/interactions")
        );
        assert_eq!(settings["socket_mode_enabled"].as_bool(), Some(false));
        assert!(
            doc["features"]["bot_user"]["display_name"]
                .as_str()
                .is_some()
        );
    }

    #[test]
    fn a_socket_mode_manifest_needs_no_url_and_has_none() {
        let doc = parse(&manifest(None, true).unwrap());
        assert_eq!(doc["settings"]["socket_mode_enabled"].as_bool(), Some(true));
        assert!(doc["settings"]["interactivity"]["request_url"].is_badvalue());
        assert!(doc["features"]["slash_commands"][0]["url"].is_badvalue());
        assert_eq!(
            doc["features"]["slash_commands"][0]["command"].as_str(),
            Some("/replays")
        );
    }

    #[test]
    fn a_missing_or_bad_url_is_a_usage_error() {
        assert!(manifest(None, false).unwrap_err().contains("--url"));
        assert!(
            manifest(Some("rd.example.com"), false)
                .unwrap_err()
                .contains("--url")
        );
    }
}
