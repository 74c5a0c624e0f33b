//! `[privacy]`: erasure and the audit trail: who may erase a customer from Slack, the Zendesk tag that
//! asks for an erasure, the key of the keyed hash the audit log stores instead of emails (or the file a
//! generated one is kept in), and how long an erased address is remembered.
//!
//! Checks: `tombstone_days` between 0 (not remembered) and 3650. Where the generated audit key lives
//! depends on `[store]` too, handed in: [`PrivacyConfig::audit_key_file`].

use std::{path::PathBuf, time::Duration};

use serde::Deserialize;

use super::{ConfigError, List, Secret, StoreConfig, invalid};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacyConfig {
    pub admin_slack_user_ids: List,
    pub zendesk_erasure_tag: Option<String>,
    /// Key of the keyed hash the audit log stores instead of emails.
    pub audit_key: Secret,
    /// Where the generated key is kept when `audit_key` is not set (mode 0600, never in the database
    /// beside the hashes it protects). Default: beside a SQLite store (`<store file>.audit-key`); a
    /// PostgreSQL store needs `audit_key` or this file (the same on every replica).
    pub audit_key_file: Option<PathBuf>,
    /// Days an erased address is remembered (as its keyed hash): a lookup of it meanwhile is answered
    /// "this customer asked to be forgotten" and reaches nothing. 0: not remembered.
    pub tombstone_days: u32,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            admin_slack_user_ids: List::default(),
            zendesk_erasure_tag: None,
            audit_key: Secret::default(),
            audit_key_file: None,
            tombstone_days: 30,
        }
    }
}

impl PrivacyConfig {
    /// How long an erased address is remembered (`tombstone_days`).
    pub fn tombstone_keep(&self) -> Duration {
        Duration::from_secs(u64::from(self.tombstone_days) * 86_400)
    }

    /// Where the generated audit key lives: `audit_key_file`, else beside a SQLite `store`'s file;
    /// `None` for PostgreSQL (which needs one configured) and for an in-memory store.
    pub fn audit_key_file(&self, store: &StoreConfig) -> Option<PathBuf> {
        if let Some(path) = &self.audit_key_file {
            return Some(path.clone());
        }
        let url = &store.url;
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = path.split('?').next().unwrap_or("");
        if path.is_empty() || path.contains(":memory:") {
            return None;
        }
        Some(PathBuf::from(format!("{path}.audit-key")))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.tombstone_days > 3650 {
            return Err(invalid(
                "privacy.tombstone_days",
                "must be between 0 (not remembered) and 3650",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::PathBuf;

    use super::super::Config;

    #[test]
    fn the_audit_key_file_sits_beside_a_sqlite_store_unless_one_is_named() {
        let file = |toml: &str| Config::from_toml(toml).unwrap().audit_key_file();
        assert_eq!(file(""), Some(PathBuf::from("replaydesk.db.audit-key")));
        assert_eq!(
            file("[store]\nurl = \"sqlite:/var/lib/rd.db?mode=rwc\"\n"),
            Some(PathBuf::from("/var/lib/rd.db.audit-key"))
        );
        assert_eq!(file("[store]\nurl = \"sqlite::memory:\"\n"), None);
        assert_eq!(file("[store]\nurl = \"postgres://db/rd\"\n"), None);
        assert_eq!(
            file("[store]\nurl = \"postgres://db/rd\"\n[privacy]\naudit_key_file = \"/k\"\n"),
            Some(PathBuf::from("/k"))
        );
    }
}
