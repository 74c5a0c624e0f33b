//! `[jira]`: the Jira Cloud site escalations go to (issue 25): its URL, an Atlassian account's email
//! and API token (basic auth, `email:api_token`), the project new issues go to, their issue type
//! (default `"Bug"`) and optional labels. Its on-switch is [`JiraConfig::is_enabled`]: the site, the
//! account, the token and the project are set.
//!
//! Checks: `base_url` an http(s) URL; with the token set, the site, the email and the project.

use serde::Deserialize;

use super::{ConfigError, Interval, List, Secret, check_url, invalid, more_than_zero};

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JiraConfig {
    /// `https://your-site.atlassian.net`.
    pub base_url: Option<String>,
    pub email: Option<String>,
    pub api_token: Secret,
    /// The project's key (`SUP`), as in its issue keys.
    pub project_key: Option<String>,
    pub issue_type: String,
    /// Labels every new issue gets (besides replaydesk's own, which finds it again).
    pub labels: List,
    pub timeout: Interval,
}

impl Default for JiraConfig {
    fn default() -> Self {
        Self {
            base_url: None,
            email: None,
            api_token: Secret::default(),
            project_key: None,
            issue_type: "Bug".into(),
            labels: List::default(),
            timeout: Interval(std::time::Duration::from_secs(10)),
        }
    }
}

impl JiraConfig {
    /// Whether escalations may go to Jira: the site, the account, its token and the project are set.
    pub fn is_enabled(&self) -> bool {
        self.base_url.is_some()
            && self.email.is_some()
            && self.api_token.is_set()
            && self.project_key.as_deref().is_some_and(|p| !p.is_empty())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_url("jira.base_url", self.base_url.as_deref())?;
        more_than_zero("jira.timeout", self.timeout)?;
        if self.issue_type.trim().is_empty() {
            return Err(invalid("jira.issue_type", "must not be empty"));
        }
        if let Some(label) = self.labels.iter().find(|l| l.is_empty() || l.contains(' ')) {
            return Err(invalid(
                "jira.labels",
                format!("`{label}` is not a Jira label (no spaces, not empty)"),
            ));
        }
        if self.api_token.is_set() {
            for (key, missing) in [
                ("jira.base_url", self.base_url.is_none()),
                ("jira.email", self.email.is_none()),
                (
                    "jira.project_key",
                    self.project_key.as_deref().is_none_or(str::is_empty),
                ),
            ] {
                if missing {
                    return Err(invalid(key, "must be set with jira.api_token"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    #[test]
    fn jira_is_on_with_its_site_account_token_and_project() {
        let on = |toml: &str| Config::from_toml(toml).unwrap().jira.is_enabled();
        assert!(!on(""));
        assert!(on(
            "[jira]\nbase_url = \"https://acme.atlassian.net\"\nemail = \"a@acme.com\"\n\
                    api_token = \"t\"\nproject_key = \"SUP\"\n"
        ));
        let error = Config::from_toml(
            "[jira]\napi_token = \"t\"\nbase_url = \"https://a.atlassian.net\"\n",
        )
        .err()
        .unwrap()
        .to_string();
        assert_eq!(error, "jira.email: must be set with jira.api_token");
        assert_eq!(Config::default().jira.issue_type, "Bug");
    }
}
