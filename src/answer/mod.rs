//! The shared path from a question to its answer, for every platform.
//!
//! An adapter's inbound side turns a platform request into a [`LookupJob`] ("find this customer's
//! sessions") or a [`SummaryJob`] ("summarise this session"), each carrying who asked ([`Requester`]) and
//! where the answer goes ([`ReplyTo`]: a platform's own [`ReplyTarget`], opaque to the core, read back by
//! that platform's [`PlatformReplier`], which the core calls as a [`Replier`]). The handlers here run the
//! core ([`crate::lookup`]) and hand the outcome ([`Answer`]) to the replier, which renders and posts it
//! through the effect ledger. So lookup, audit, error wording, the failure policy ([`policy`]) and the
//! "it failed" message exist once, for every platform.
//!
//! Not to be confused with [`crate::queue`], which stores and runs jobs of any kind and knows nothing of
//! answers: this module is the kinds every platform shares, and what their answers are.
//!
//! - [`reply`]: where an answer goes and who delivers it ([`ReplyTo`], [`Replier`], [`Answer`]);
//! - [`lookup_job`], [`summary_job`]: the two shared job kinds and their handlers;
//! - [`escalated`]: what an escalation to a tracker answers ([`Escalated`]);
//! - [`policy`]: what the person who asked is told when FullStory fails, is late, or the job gives up;
//! - [`posted`]: what a ticket or conversation already shows (never the same session twice there);

pub mod escalated;
pub mod lookup_job;
pub mod policy;
pub mod posted;
pub mod reply;
pub mod summary_job;

pub use escalated::Escalated;
pub use lookup_job::{LookupHandler, LookupJob, run_lookup};
pub use policy::{
    CANCELLED, GAVE_UP, GAVE_UP_POSTING, REFUSED, TOO_LATE, asked_wait, deliver_cancelled,
    deliver_dead, gave_up, in_words, reference, user_message, wait_for_fullstory,
};
pub use reply::{Answer, PlatformReplier, Recipient, Replier, Repliers, ReplyTarget, ReplyTo, To};
pub use summary_job::{SummaryHandler, SummaryJob};
