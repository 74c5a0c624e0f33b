//! Where an answer goes ([`ReplyTo`], stored with the job) and who delivers it: each platform's
//! [`PlatformReplier`], over its own [`ReplyTarget`], held by the core as a [`Replier`].
//!
//! The shared path (a lookup, a summary, the failure policy) answers through a [`Recipient`]: a
//! platform's replier bound to one typed target. A stored job's [`ReplyTo`] is read into its typed
//! target once, by [`Replier::bind`]; an adapter's own job kind that already holds its typed target
//! hands it over as it is ([`To`]), with nothing written to JSON and read back.

use std::{collections::HashMap, sync::Arc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{Escalated, LookupJob, SummaryJob};
use crate::{
    identity::CustomerEmail,
    lookup::{LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    queue::{JobContext, JobError, decode_stored},
};

/// Where the answer goes: the platform's own description ([`ReplyTarget`]: a `response_url`, a ticket
/// id, an interaction token), stored with the job as `{"platform": …, "target": {…}}` and read back only
/// by that platform's replier. The core never looks inside, so adding a platform adds no variant here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReplyTo {
    platform: String,
    target: serde_json::Value,
}

/// One platform's description of where its answers go: the `target` of a [`ReplyTo`]. Its stored shape
/// is kept across versions like a job's payload (queued jobs carry it).
pub trait ReplyTarget: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The platform's name: its adapter's name and its [`Requester::platform`].
    const PLATFORM: &'static str;
}

impl ReplyTo {
    /// Answers go to `target`, on its platform.
    pub fn new<T: ReplyTarget>(target: &T) -> Self {
        Self {
            platform: T::PLATFORM.to_owned(),
            // A target is plain data (strings, numbers, flags): writing it as JSON cannot fail.
            target: serde_json::to_value(target).unwrap_or_default(),
        }
    }

    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// The target, read back as `T`: a permanent error when it is another platform's, or does not fit
    /// (naming the field, never quoting its value: targets hold tokens).
    pub fn target<T: ReplyTarget>(&self) -> Result<T, JobError> {
        if self.platform != T::PLATFORM {
            return Err(JobError::permanent(anyhow::anyhow!(
                "a reply to {:?} is not a {} reply target",
                self.platform,
                T::PLATFORM
            )));
        }
        decode_stored(&self.target).map_err(|why| {
            JobError::permanent(anyhow::anyhow!("{} reply target: {why}", T::PLATFORM))
        })
    }
}

#[cfg(test)]
impl ReplyTo {
    /// A reply to no platform, for tests that render answers and never deliver them.
    pub(crate) fn nowhere() -> Self {
        Self {
            platform: "test".into(),
            target: serde_json::Value::Null,
        }
    }
}

/// What a replier is asked to deliver.
#[derive(Debug)]
pub enum Answer<'a> {
    Sessions {
        job: &'a LookupJob,
        result: &'a LookupResult,
    },
    Summary {
        job: &'a SummaryJob,
        outcome: &'a SummaryOutcome,
    },
    /// The answer is late (FullStory is slow or rate limiting): retrying.
    Delayed { message: String },
    /// No answer will come.
    Failed { message: String, reference: String },
    /// An erasure's receipt ([`crate::erasure`]): done, still pending, or given up. A replier
    /// that cannot replace what it posts may skip the pending one (as it skips [`Answer::Delayed`]).
    Erasure {
        email: &'a CustomerEmail,
        receipt: &'a ErasureReceipt,
    },
    /// An escalation's issue ([`crate::escalate`]): made, already made, or an existing one linked.
    /// Told to the asker (and, where a platform keeps a record of the conversation, left there once:
    /// Zendesk's internal note "Escalated to LIN-123 <link>").
    Escalated { escalated: &'a Escalated },
}

/// One platform's way of delivering answers, to its own [`ReplyTarget`]: what an adapter implements.
/// Implementations render the answer and post it with `job.effects().once(…)`, so a retried job never
/// posts twice. Every `PlatformReplier` is a [`Replier`] (the target read from the [`ReplyTo`] once, a
/// target that does not fit being a permanent error), so the core holds it as `Arc<dyn Replier>`.
#[async_trait]
pub trait PlatformReplier: Send + Sync {
    type Target: ReplyTarget;

    async fn deliver(
        &self,
        job: &JobContext,
        target: &Self::Target,
        answer: Answer<'_>,
    ) -> Result<(), JobError>;

    /// The last moment to start answering at `target`, when answers expire (Discord's interaction token
    /// lives 15 minutes, a Slack `response_url` 30); `None` (the default) when they never do: such a
    /// job waits for a down upstream as long as it takes. See the module docs.
    fn deadline(&self, job: &JobContext, target: &Self::Target) -> Option<DateTime<Utc>> {
        let _ = (job, target);
        None
    }
}

/// Where one answer goes: a platform's replier bound to one typed target (see the module docs).
#[async_trait]
pub trait Recipient: Send + Sync {
    async fn deliver(&self, job: &JobContext, answer: Answer<'_>) -> Result<(), JobError>;

    /// [`PlatformReplier::deadline`] of the target.
    fn deadline(&self, job: &JobContext) -> Option<DateTime<Utc>>;
}

/// A platform's replier with its typed target: the [`Recipient`] an adapter's job hands the shared
/// path, and what [`Replier::bind`] makes of a stored [`ReplyTo`].
pub struct To<'a, R: PlatformReplier> {
    replier: &'a R,
    target: R::Target,
}

impl<'a, R: PlatformReplier> To<'a, R> {
    pub fn new(replier: &'a R, target: R::Target) -> Self {
        Self { replier, target }
    }
}

#[async_trait]
impl<R: PlatformReplier> Recipient for To<'_, R> {
    async fn deliver(&self, job: &JobContext, answer: Answer<'_>) -> Result<(), JobError> {
        self.replier.deliver(job, &self.target, answer).await
    }

    fn deadline(&self, job: &JobContext) -> Option<DateTime<Utc>> {
        self.replier.deadline(job, &self.target)
    }
}

/// The replier the core holds, whatever the platform: a [`PlatformReplier`] that binds a stored
/// [`ReplyTo`] to its typed target.
pub trait Replier: Send + Sync {
    fn platform(&self) -> &'static str;

    /// `reply`'s target, read once, with this replier: where the job's answers go. A target of another
    /// platform, or one that does not fit, is a permanent error naming the field.
    fn bind<'a>(&'a self, reply: &ReplyTo) -> Result<Box<dyn Recipient + 'a>, JobError>;
}

impl<R: PlatformReplier> Replier for R {
    fn platform(&self) -> &'static str {
        R::Target::PLATFORM
    }

    fn bind<'a>(&'a self, reply: &ReplyTo) -> Result<Box<dyn Recipient + 'a>, JobError> {
        Ok(Box::new(To::new(self, reply.target::<R::Target>()?)))
    }
}

/// The repliers of the enabled platforms, by platform name.
#[derive(Clone, Default)]
pub struct Repliers(HashMap<&'static str, Arc<dyn Replier>>);

impl Repliers {
    pub fn new(repliers: impl IntoIterator<Item = Arc<dyn Replier>>) -> Self {
        Self(repliers.into_iter().map(|r| (r.platform(), r)).collect())
    }

    /// The replier for `reply`'s platform; a permanent error when that adapter is off.
    pub fn get(&self, reply: &ReplyTo) -> Result<&Arc<dyn Replier>, JobError> {
        self.0.get(reply.platform()).ok_or_else(|| {
            JobError::permanent(anyhow::anyhow!(
                "no replier for platform {:?} (is the adapter switched off?)",
                reply.platform()
            ))
        })
    }

    /// Where `reply`'s answers go: its platform's replier bound to its target ([`Replier::bind`]).
    pub fn bind(&self, reply: &ReplyTo) -> Result<Box<dyn Recipient + '_>, JobError> {
        self.get(reply)?.bind(reply)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    /// A platform's reply target, as an adapter would define one.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Desk {
        ticket: u64,
        #[serde(default)]
        note: Option<String>,
    }

    impl ReplyTarget for Desk {
        const PLATFORM: &'static str = "desk";
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Chat {
        channel: String,
    }

    impl ReplyTarget for Chat {
        const PLATFORM: &'static str = "chat";
    }

    #[test]
    fn a_reply_is_stored_as_its_platform_and_target_and_read_back_as_the_same_target() {
        let reply = ReplyTo::new(&Desk {
            ticket: 7,
            note: None,
        });
        let stored = serde_json::to_value(&reply).unwrap();
        assert_eq!(
            stored,
            json!({"platform": "desk", "target": {"ticket": 7, "note": null}})
        );
        let read: ReplyTo = serde_json::from_value(stored).unwrap();
        assert_eq!(read.platform(), "desk");
        assert_eq!(
            read.target::<Desk>().unwrap(),
            Desk {
                ticket: 7,
                note: None
            }
        );
    }

    #[test]
    fn another_platforms_target_or_one_that_does_not_fit_is_a_permanent_error() {
        let reply = ReplyTo::new(&Chat {
            channel: "C1".into(),
        });
        let Err(JobError::Permanent(error)) = reply.target::<Desk>() else {
            panic!("a chat reply read as a desk target");
        };
        assert_eq!(
            error.to_string(),
            "a reply to \"chat\" is not a desk reply target"
        );
        let broken: ReplyTo =
            serde_json::from_value(json!({"platform": "desk", "target": {"ticket": "tok-secret"}}))
                .unwrap();
        let Err(JobError::Permanent(error)) = broken.target::<Desk>() else {
            panic!("a target that does not fit was read");
        };
        assert_eq!(
            error.to_string(),
            "desk reply target: ticket: invalid value"
        );
    }
}
