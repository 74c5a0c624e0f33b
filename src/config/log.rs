//! `[log]`: how replaydesk logs: human-readable or JSON lines, and the `tracing` filter.
//!
//! Checks: `level` not blank. (Its syntax is `tracing`'s: where the subscriber is built, `RUST_LOG`
//! overrides it and a filter it cannot read falls back to `info`.)

use serde::Deserialize;

use super::{ConfigError, invalid};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Pretty,
    Json,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter: `info`, `replaydesk=debug,info`, …
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Pretty,
            level: "info".into(),
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.level.trim().is_empty() {
            return Err(invalid("log.level", "must not be empty"));
        }
        Ok(())
    }
}
