//! `[heap]`: Heap, which only erasures reach (a customer's data is deleted there too): its app id, API
//! key and an optional base URL. Its on-switch is [`HeapConfig::is_enabled`].
//!
//! Checks: `base_url` an http(s) URL.

use serde::Deserialize;

use super::{ConfigError, Secret, check_url};

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeapConfig {
    pub app_id: Option<String>,
    pub api_key: Secret,
    pub base_url: Option<String>,
}

impl HeapConfig {
    /// Whether erasures reach Heap too (its app id and API key are set).
    pub fn is_enabled(&self) -> bool {
        self.app_id.is_some() && self.api_key.is_set()
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        check_url("heap.base_url", self.base_url.as_deref())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::Config;

    #[test]
    fn heap_is_on_with_its_app_id_and_api_key() {
        let on = |toml: &str| Config::from_toml(toml).unwrap().heap.is_enabled();
        assert!(!on(""));
        assert!(!on("[heap]\napp_id = \"12\"\n"));
        assert!(!on("[heap]\napi_key = \"k\"\n"));
        assert!(on("[heap]\napp_id = \"12\"\napi_key = \"k\"\n"));
    }
}
