//! An erasure's receipt ([`crate::erasure`]), read from its job's ledger: kept here, beside the
//! [`super::Answer::Erasure`] that carries it, so answering never imports `privacy`.

use std::sync::Arc;

use serde::Serialize;

use crate::store::{EffectRecord, EffectState, SqlStore};

/// The ledger name of an erasure's Heap step, and the prefix of each FullStory user's.
pub const HEAP_STEP: &str = "heap";
pub const FULLSTORY_STEP: &str = "fs-";
/// The prefix of an erasure's step on a tracker (a link replaydesk added to an escalated issue).
pub const ESCALATION_STEP: &str = "esc-";
/// The prefix of an erasure step replaydesk cannot do and a person must (its text says how).
pub const MANUAL_STEP: &str = "manual-";
/// The ledger name of the line naming where replaydesk posted this customer's replays (notes and
/// messages it cannot delete: an Intercom conversation, a Zendesk ticket, a Slack channel).
pub const SHOWN_STEP: &str = "shown";

/// Whether a ledger entry of an erasure job is one of its steps (not a receipt a replier posted).
fn is_step(name: &str) -> bool {
    name == HEAP_STEP
        || name == SHOWN_STEP
        || name.starts_with(FULLSTORY_STEP)
        || name.starts_with(ESCALATION_STEP)
        || name.starts_with(MANUAL_STEP)
}

/// What an erasure ([`crate::erasure`]) did, from its job's ledger. Defined here, beside
/// [`Answer::Erasure`] that carries it, so the jobs never import `privacy`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ErasureReceipt {
    pub job_id: i64,
    /// `done` (every step confirmed), `incomplete` (finished what it could; `needs_action` lists the
    /// rest), `pending` (will be retried), `dead`, `cancelled` (an operator ended it: not finished).
    pub status: String,
    pub done: Vec<String>,
    pub pending: Vec<String>,
    /// What replaydesk could not do and a person must (each line says how). A receipt with any is
    /// `incomplete`, never `done`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_action: Vec<String>,
    pub last_error: Option<String>,
}

impl ErasureReceipt {
    /// The receipt of erasure job `job_id` as the store sees it (its state decides the status).
    pub async fn of_job(store: &Arc<SqlStore>, job_id: i64) -> anyhow::Result<Self> {
        let job = store
            .get_job(job_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no job {job_id}"))?;
        let status = match job.state.as_str() {
            "done" => "done",
            "dead" => "dead",
            "cancelled" => "cancelled",
            _ => "pending",
        };
        let records = store.effects_for_job(job_id).await?;
        Ok(Self::from_ledger(
            job_id,
            status,
            job.last_error.clone(),
            records,
        ))
    }

    /// The receipt of erasure job `job_id` with `status` given (the job itself knows better than its
    /// row while it runs): its steps from its ledger's `records` (as the job sees them while it
    /// runs: [`crate::queue::Effects::records`]), done ones with their upstream references.
    pub fn from_ledger(
        job_id: i64,
        status: &str,
        last_error: Option<String>,
        records: Vec<EffectRecord>,
    ) -> Self {
        let mut receipt = ErasureReceipt {
            job_id,
            status: status.to_owned(),
            last_error,
            ..Self::default()
        };
        for effect in records {
            if !is_step(&effect.name) {
                continue;
            }
            match (effect.state, effect.external_id) {
                (EffectState::Done, Some(line)) if effect.name.starts_with(MANUAL_STEP) => {
                    receipt.needs_action.push(line);
                }
                (EffectState::Done, Some(id)) => receipt.done.push(id),
                _ => receipt.pending.push(effect.name),
            }
        }
        if receipt.status == "done" {
            receipt
                .done
                .push("replaydesk cache and stored payloads: cleared".into());
            if !receipt.needs_action.is_empty() {
                receipt.status = "incomplete".to_owned();
            }
        } else {
            receipt
                .pending
                .push("replaydesk cache and stored payloads (cleared last)".into());
        }
        receipt
    }
}
