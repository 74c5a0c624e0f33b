//! `[linear]`: the Linear workspace escalations go to (issue 25): a personal API key (sent as
//! `Authorization: <key>`), the team new issues go to, optional labels, and the GraphQL endpoint
//! (`api_url`, default `https://api.linear.app/graphql`; tests and the demo point it at a fake). Its
//! on-switch is [`LinearConfig::is_enabled`]: the key and the team are set.
//!
//! Checks: `api_url` an http(s) URL; with the key set, a `team_id`.

use serde::Deserialize;

use super::{ConfigError, Interval, List, Secret, check_url, invalid, more_than_zero};

/// Linear's GraphQL endpoint.
pub const LINEAR_API_URL: &str = "https://api.linear.app/graphql";

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LinearConfig {
    pub api_key: Secret,
    /// The team new issues are made in (its UUID; Linear: Settings → Teams → the team → copy its id).
    pub team_id: Option<String>,
    /// Labels every new issue gets (their UUIDs).
    pub label_ids: List,
    /// The GraphQL endpoint (default [`LINEAR_API_URL`]).
    pub api_url: Option<String>,
    pub timeout: Interval,
}

impl Default for LinearConfig {
    fn default() -> Self {
        Self {
            api_key: Secret::default(),
            team_id: None,
            label_ids: List::default(),
            api_url: None,
            timeout: Interval(std::time::Duration::from_secs(10)),
        }
    }
}

impl LinearConfig {
    /// Whether escalations may go to Linear: its API key and team are set.
    pub fn is_enabled(&self) -> bool {
        self.api_key.is_set() && self.team_id.as_deref().is_some_and(|t| !t.is_empty())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_url("linear.api_url", self.api_url.as_deref())?;
        more_than_zero("linear.timeout", self.timeout)?;
        if self.api_key.is_set() && self.team_id.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "linear.team_id",
                "must be set with linear.api_key (the team new issues go to)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    #[test]
    fn linear_is_on_with_its_key_and_team_and_a_key_without_a_team_is_refused() {
        let on = |toml: &str| Config::from_toml(toml).unwrap().linear.is_enabled();
        assert!(!on(""));
        assert!(on("[linear]\napi_key = \"lin_api_1\"\nteam_id = \"t-1\"\n"));
        let error = Config::from_toml("[linear]\napi_key = \"lin_api_1\"\n")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(
            error,
            "linear.team_id: must be set with linear.api_key (the team new issues go to)"
        );
    }
}
