//! `[slack]`: the Slack app: its signing secrets (several during a rotation), bot and Socket Mode
//! tokens, which workspaces, channels and people it serves, where a `response_url` may point, and which
//! channels get link previews. Its on-switch is [`SlackConfig::is_enabled`].
//!
//! Checks: `api_url` an http(s) URL. (The allow-lists are Slack's own ids, taken as written.)

use serde::Deserialize;

use super::{ConfigError, List, Secret, Secrets, check_url};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackConfig {
    /// One or several (during rotation) signing secrets.
    pub signing_secret: Secrets,
    pub bot_token: Secret,
    /// App-level `xapp-` token: Socket Mode, no public URL needed.
    pub app_token: Secret,
    pub api_url: Option<String>,
    pub allowed_team_ids: List,
    pub allowed_channel_ids: List,
    pub allowed_user_ids: List,
    /// The only hosts a `response_url` may name, loopback ones included (https; http only to a loopback
    /// host, for tests that list theirs). Slack's own hooks hosts by default: a payload naming any
    /// other host is not posted to.
    pub response_url_hosts: List,
    /// Channels whose pasted FullStory links are previewed (`link_shared` → `chat.unfurl`); empty: every
    /// channel the other allow-lists let through. A preview is seen by everyone in the channel.
    pub unfurl_channel_ids: List,
}

/// Where Slack's `response_url`s point: its commercial and GovSlack hooks hosts.
pub const SLACK_RESPONSE_URL_HOSTS: [&str; 2] = ["hooks.slack.com", "hooks.slack-gov.com"];

impl Default for SlackConfig {
    fn default() -> Self {
        Self {
            signing_secret: Secrets::default(),
            bot_token: Secret::default(),
            app_token: Secret::default(),
            api_url: None,
            allowed_team_ids: List::default(),
            allowed_channel_ids: List::default(),
            allowed_user_ids: List::default(),
            response_url_hosts: List(SLACK_RESPONSE_URL_HOSTS.map(str::to_owned).to_vec()),
            unfurl_channel_ids: List::default(),
        }
    }
}

impl SlackConfig {
    /// On when the bot token is set (every answer is posted with it) and Slack has a way in: signed
    /// HTTP requests (a signing secret) or Socket Mode (an app token).
    pub fn is_enabled(&self) -> bool {
        self.bot_token.is_set() && (self.signing_secret.is_set() || self.app_token.is_set())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_url("slack.api_url", self.api_url.as_deref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    #[test]
    fn slack_is_on_with_a_bot_token_and_a_way_in() {
        let on = |toml: &str| Config::from_toml(toml).unwrap().slack.is_enabled();
        assert!(!on(""));
        assert!(!on("[slack]\nbot_token = \"xoxb-1\"\n"));
        assert!(!on(
            "[slack]\nsigning_secret = \"s\"\napp_token = \"xapp-1\"\n"
        ));
        assert!(on(
            "[slack]\nbot_token = \"xoxb-1\"\nsigning_secret = \"s\"\n"
        ));
        assert!(on(
            "[slack]\nbot_token = \"xoxb-1\"\napp_token = \"xapp-1\"\n"
        ));
        // An empty value is no value: the environment can switch Slack off.
        assert!(!on("[slack]\nbot_token = \" \"\nsigning_secret = \"s\"\n"));
    }
}
