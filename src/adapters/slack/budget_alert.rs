//! The FullStory Activation budget's alerts in a Slack channel (`fullstory.budget_alert_channel`):
//! [`crate::activations`] decides when (80 % and 100 %, once per cycle for every replica) and words
//! them; this only posts the words. Best effort: an alert Slack refuses is logged, not retried (the
//! warning in the log and the `/metrics` gauges say the same).

use std::sync::Arc;

use async_trait::async_trait;

use super::{api::SlackApi, render::Message};
use crate::activations::Alert;

pub struct BudgetAlert {
    pub api: Arc<SlackApi>,
    pub channel: String,
}

#[async_trait]
impl Alert for BudgetAlert {
    async fn send(&self, text: &str) {
        let message = Message {
            text: text.to_owned(),
            blocks: Vec::new(),
        };
        if let Err(error) = self
            .api
            .post_message(&self.channel, None, &message, None)
            .await
        {
            tracing::warn!(%error, "the Activation budget alert could not be posted in Slack");
        }
    }
}
