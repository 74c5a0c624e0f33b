//! `[escalate]`: what an escalated issue (Linear, Jira: issue 25) may say about the customer. By default
//! the customer's address is masked (`j•••@acme.com`): a tracker is read by more people than support
//! is, and keeps what it is told. `include_email = true` writes the full address.

use serde::Deserialize;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalateConfig {
    /// Write the customer's full address in the issue (default: masked).
    pub include_email: bool,
}
