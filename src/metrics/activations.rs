//! Prometheus gauges of FullStory Activations this billing cycle (issue 24), shared by every replica
//! because they are read back from the store after each change ([`crate::activations`]).
//!
//! | name | type | meaning |
//! | --- | --- | --- |
//! | `replaydesk_fullstory_activations_used{kind,purpose}` | gauge | Activations spent this cycle: kind `events`, `summary`, `context`; purpose `automatic`, `on_request` |
//! | `replaydesk_fullstory_activations_budget{share}` | gauge | the cycle's budget (`share="total"`) and the part kept for requests (`share="reserve"`); absent without a budget |
//! | `replaydesk_fullstory_unmetered_calls{endpoint}` | gauge | calls this cycle that cost no Activation (`list_sessions`) |

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SpendLabels {
    pub kind: String,
    pub purpose: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShareLabels {
    pub share: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    pub endpoint: String,
}

/// The Activation gauges; see the module docs for names.
#[derive(Clone, Default)]
pub struct ActivationMetrics {
    pub used: Family<SpendLabels, Gauge>,
    pub budget: Family<ShareLabels, Gauge>,
    pub unmetered: Family<EndpointLabel, Gauge>,
}

impl ActivationMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "replaydesk_fullstory_activations_used",
            "FullStory Activations spent this billing cycle, by kind (events, summary, context) and \
             purpose (automatic, on_request), counted in the store for every replica",
            metrics.used.clone(),
        );
        registry.register(
            "replaydesk_fullstory_activations_budget",
            "The billing cycle's Activation budget (share=total) and the part kept for agents' \
             requests (share=reserve); absent when no budget is set",
            metrics.budget.clone(),
        );
        registry.register(
            "replaydesk_fullstory_unmetered_calls",
            "FullStory calls this billing cycle that cost no Activation (list_sessions)",
            metrics.unmetered.clone(),
        );
        metrics
    }
}
