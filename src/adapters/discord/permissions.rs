//! Who may use replaydesk on Discord, checked by us on every command and button press.
//!
//! Discord's own gate (`default_member_permissions` at registration) only decides who *sees* a command,
//! and a server admin can widen it in Server Settings → Integrations; buttons are not covered by it at
//! all. So each interaction is checked here on what Discord reports about the invoker: the member's
//! `permissions` bitset (channel overwrites included) must hold every `discord.required_permissions`
//! (`ADMINISTRATOR` implies all of them), or the member has one of `discord.allowed_role_ids`. An empty
//! `required_permissions` grants nothing by itself (roles only). Outside a guild (a DM) there is no member
//! and nobody is allowed.

use serenity::model::Permissions;

use super::wire::Member;
use crate::config::DiscordConfig;

#[derive(Clone, Debug)]
pub struct Gate {
    required: Permissions,
    roles: Vec<String>,
}

impl Gate {
    pub fn from_config(config: &DiscordConfig) -> Self {
        Self {
            required: config.permissions(),
            roles: config.allowed_role_ids.iter().map(str::to_owned).collect(),
        }
    }

    pub fn allows(&self, member: Option<&Member>) -> bool {
        let Some(member) = member else {
            return false;
        };
        let held = member.permissions.unwrap_or_else(Permissions::empty);
        let by_permission = !self.required.is_empty()
            && (held.contains(Permissions::ADMINISTRATOR) || held.contains(self.required));
        let by_role = member.roles.iter().any(|role| {
            self.roles
                .iter()
                .any(|allowed| *allowed == role.to_string())
        });
        by_permission || by_role
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{Config, List};

    fn member(permissions: u64, roles: &[&str]) -> Member {
        serde_json::from_value(serde_json::json!({
            "user": {"id": "9"},
            "roles": roles,
            "permissions": permissions.to_string(),
        }))
        .unwrap()
    }

    fn gate(required: &[&str], roles: &[&str]) -> Gate {
        let mut config = Config::default().discord;
        config.required_permissions = List(required.iter().map(|s| (*s).to_owned()).collect());
        config.allowed_role_ids = List(roles.iter().map(|s| (*s).to_owned()).collect());
        Gate::from_config(&config)
    }

    const MODERATE: u64 = 1 << 40;
    const KICK: u64 = 1 << 1;
    const ADMINISTRATOR: u64 = 1 << 3;

    #[test]
    fn moderators_may_and_others_may_not() {
        let gate = gate(&["MODERATE_MEMBERS"], &[]);
        assert!(gate.allows(Some(&member(MODERATE | KICK, &[]))));
        assert!(!gate.allows(Some(&member(KICK, &[]))));
        assert!(!gate.allows(Some(&member(0, &["55"]))));
    }

    #[test]
    fn every_required_permission_is_needed_unless_administrator() {
        let gate = gate(&["MODERATE_MEMBERS", "KICK_MEMBERS"], &[]);
        assert!(!gate.allows(Some(&member(MODERATE, &[]))));
        assert!(gate.allows(Some(&member(MODERATE | KICK, &[]))));
        assert!(gate.allows(Some(&member(ADMINISTRATOR, &[]))));
    }

    #[test]
    fn an_allowed_role_is_enough_and_a_dm_is_never_allowed() {
        let either = gate(&["MODERATE_MEMBERS"], &["55"]);
        assert!(either.allows(Some(&member(0, &["12", "55"]))));
        assert!(!either.allows(None));
        let roles_only = gate(&[], &["55"]);
        assert!(!roles_only.allows(Some(&member(ADMINISTRATOR, &[]))));
        assert!(roles_only.allows(Some(&member(0, &["55"]))));
    }
}
