//! `[discord]`: the Discord application: its id and Ed25519 public key (which verify interactions), the
//! bot token that registers the commands, who may use them (Discord permissions or roles) and in which
//! servers. Its on-switch is [`DiscordConfig::is_enabled`].
//!
//! Checks: `api_url` an http(s) URL; snowflake ids (`application_id`, the role and guild lists); a
//! public key that is a usable Ed25519 key; permission names Discord knows (`MODERATE_MEMBERS`,
//! `BAN_MEMBERS`, … as in Discord's docs); someone able to use the commands (permissions or roles); and,
//! with Discord on, a guild list unless `allow_any_guild` opens it on purpose.

use serde::Deserialize;
use serenity::{interactions_endpoint::Verifier, model::Permissions};

use super::{ConfigError, List, Secret, check_url, invalid, values};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    #[serde(deserialize_with = "values::id_as_text")]
    pub application_id: Option<String>,
    pub public_key: Option<String>,
    pub bot_token: Secret,
    pub api_url: Option<String>,
    pub required_permissions: List,
    pub allowed_role_ids: List,
    /// Guilds (servers) whose interactions are served. Closed by default: with Discord on, an empty list
    /// is refused at start-up unless `allow_any_guild` says otherwise.
    pub allowed_guild_ids: List,
    /// Serve every guild the application is added to (and direct messages): an explicit opt-out of
    /// `allowed_guild_ids`, logged as a warning at start-up.
    pub allow_any_guild: bool,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            application_id: None,
            public_key: None,
            bot_token: Secret::default(),
            api_url: None,
            required_permissions: List(vec!["MODERATE_MEMBERS".into()]),
            allowed_role_ids: List::default(),
            allowed_guild_ids: List::default(),
            allow_any_guild: false,
        }
    }
}

impl DiscordConfig {
    /// On when both the application id and its public key are set (the bot token is needed only to
    /// register the commands).
    pub fn is_enabled(&self) -> bool {
        self.application_id.is_some() && self.public_key.is_some()
    }

    /// The verifier of the application's public key; `None` when the key is unset (or, which validation
    /// rules out, unusable).
    pub fn verifier(&self) -> Option<Verifier> {
        self.public_key
            .as_deref()
            .and_then(|key| verifier(key).ok())
    }

    /// The permission bits of `required_permissions` (names already validated; unknown ones add
    /// nothing). Empty when the list is empty: then permissions alone grant no access.
    pub fn permissions(&self) -> Permissions {
        self.required_permissions
            .iter()
            .filter_map(permission)
            .fold(Permissions::empty(), |all, one| all | one)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_url("discord.api_url", self.api_url.as_deref())?;
        self.validate_application()?;
        self.validate_access()
    }

    /// The application's id and public key: what verifies its interactions.
    fn validate_application(&self) -> Result<(), ConfigError> {
        if let Some(id) = &self.application_id
            && !is_snowflake(id)
        {
            return Err(invalid(
                "discord.application_id",
                "must be the numeric application id from the developer portal",
            ));
        }
        if let Some(key) = &self.public_key {
            verifier(key).map_err(|message| invalid("discord.public_key", message))?;
        }
        Ok(())
    }

    /// Who may use the commands, and where: known permission names, someone able to use them, a
    /// closed guild list unless opened on purpose, numeric role and guild ids.
    fn validate_access(&self) -> Result<(), ConfigError> {
        for name in self.required_permissions.iter() {
            if permission(name).is_none() {
                return Err(invalid(
                    "discord.required_permissions",
                    format!(
                        "`{name}` is not a Discord permission (use names like MODERATE_MEMBERS)"
                    ),
                ));
            }
        }
        if self.required_permissions.is_empty() && self.allowed_role_ids.is_empty() {
            return Err(invalid(
                "discord.required_permissions",
                "is empty and so is discord.allowed_role_ids: nobody could use the commands",
            ));
        }
        if self.is_enabled() && self.allowed_guild_ids.is_empty() && !self.allow_any_guild {
            return Err(invalid(
                "discord.allowed_guild_ids",
                "is empty: any server whose admin adds the app would get customer lookups. List \
                 your servers' ids here, or set discord.allow_any_guild = true to serve every server",
            ));
        }
        for (key, ids) in [
            ("discord.allowed_role_ids", &self.allowed_role_ids),
            ("discord.allowed_guild_ids", &self.allowed_guild_ids),
        ] {
            if let Some(bad) = ids.iter().find(|id| !is_snowflake(id)) {
                return Err(invalid(key, format!("`{bad}` is not a numeric Discord id")));
            }
        }
        Ok(())
    }
}

/// One permission by its name in Discord's docs, any case.
fn permission(name: &str) -> Option<Permissions> {
    Permissions::from_name(&name.trim().to_ascii_uppercase())
}

/// The application's public key: 64 hex digits that are a valid Ed25519 point.
fn verifier(hex_key: &str) -> Result<Verifier, String> {
    let bytes: [u8; 32] = hex::decode(hex_key.trim())
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("must be the 64 hex digits shown as PUBLIC KEY in the developer portal")?;
    Verifier::try_new(bytes).map_err(|e| format!("is not a valid Ed25519 key ({e})"))
}

/// A Discord id: 1–20 ASCII digits.
fn is_snowflake(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";

    #[test]
    fn permission_names_map_to_discords_bits_in_any_case() {
        let config = Config::from_toml(
            "[discord]\nrequired_permissions = [\"moderate_members\", \"KICK_MEMBERS\"]\n",
        )
        .unwrap();
        assert_eq!(config.discord.permissions().bits(), (1 << 40) | (1 << 1));
    }

    #[test]
    fn an_unknown_permission_names_the_key_and_the_name() {
        let err = Config::from_toml("[discord]\nrequired_permissions = [\"MODERATE_MEMBRES\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("discord.required_permissions"), "{err}");
        assert!(err.contains("MODERATE_MEMBRES"), "{err}");
    }

    #[test]
    fn a_bad_public_key_or_id_names_its_key() {
        let cases = [
            ("public_key = \"abc\"", "discord.public_key"),
            ("application_id = \"my-app\"", "discord.application_id"),
            (
                "allowed_guild_ids = [\"guild\"]",
                "discord.allowed_guild_ids",
            ),
            ("allowed_role_ids = \"1, x\"", "discord.allowed_role_ids"),
            ("required_permissions = []", "discord.required_permissions"),
        ];
        for (line, key) in cases {
            let err = Config::from_toml(&format!("[discord]\n{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{line}: {err}");
        }
        let ok = Config::from_toml(&format!(
            "[discord]\npublic_key = \"{KEY}\"\napplication_id = \"1234\"\n\
             required_permissions = []\nallowed_role_ids = [\"55\"]\nallowed_guild_ids = [\"66\"]\n"
        ))
        .unwrap();
        assert!(ok.discord.is_enabled());
        let numeric = Config::from_toml("[discord]\napplication_id = 1234\n").unwrap();
        assert_eq!(numeric.discord.application_id.as_deref(), Some("1234"));
        assert!(ok.discord.permissions().is_empty());
    }

    #[test]
    fn discord_without_a_guild_list_is_refused_unless_any_guild_is_chosen() {
        let on = format!("[discord]\npublic_key = \"{KEY}\"\napplication_id = \"1234\"\n");
        let err = Config::from_toml(&on).unwrap_err().to_string();
        assert!(err.contains("discord.allowed_guild_ids"), "{err}");
        assert!(err.contains("discord.allow_any_guild = true"), "{err}");
        let open = Config::from_toml(&format!("{on}allow_any_guild = true\n")).unwrap();
        assert!(open.discord.allow_any_guild);
        let closed = Config::from_toml(&format!("{on}allowed_guild_ids = [\"66\"]\n")).unwrap();
        assert!(closed.discord.is_enabled());
        // Off (no secrets): nothing to close.
        assert!(Config::from_toml("[discord]\n").is_ok());
    }
}
