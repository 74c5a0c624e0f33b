//! `[store]`: where jobs, the effect ledger and the audit trail are kept: an embedded SQLite file (one
//! replica) or PostgreSQL (several).
//!
//! Checks: `url` names one of the two (`sqlite:…`, `postgres://…` or `postgresql://…`).

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://replaydesk.db".into(),
        }
    }
}

impl StoreConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(self.url.starts_with("sqlite:")
            || self.url.starts_with("postgres://")
            || self.url.starts_with("postgresql://"))
        {
            return Err(invalid(
                "store.url",
                "must start with sqlite:// or postgres://",
            ));
        }
        Ok(())
    }
}
