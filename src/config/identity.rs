//! `[identity]`: which customers a request may look up: our own domains (never looked up) and how many
//! identities one request may spend FullStory calls on (the rest are named as not looked up).
//!
//! Checks: `max_per_request` at least 1; every `exclude_domains` entry a bare domain like example.com.

use serde::Deserialize;

use super::{ConfigError, List, at_least_one, invalid};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IdentityConfig {
    /// Our own domains: addresses there are never looked up.
    pub exclude_domains: List,
    /// Identities looked up for one request (the first ones, in order of appearance); the rest are
    /// named in the answer as not looked up.
    pub max_per_request: usize,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            exclude_domains: List::default(),
            max_per_request: 10,
        }
    }
}

impl IdentityConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("identity.max_per_request", self.max_per_request)?;
        for domain in self.exclude_domains.iter() {
            if !domain.contains('.') || domain.contains('@') || domain.contains(' ') {
                return Err(invalid(
                    "identity.exclude_domains",
                    format!("`{domain}` is not a domain like example.com"),
                ));
            }
        }
        Ok(())
    }
}
