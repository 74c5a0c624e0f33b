//! The `zendesk.ticket` job: a webhook told us a ticket id; this reads the ticket, decides whose
//! sessions to look up, runs the core lookup and hands the result to [`ZendeskReplier`].
//!
//! Why a job kind of its own rather than the shared `lookup` job: at enqueue time we often know only the
//! ticket id (the webhook must be answered before any upstream is called, and its body may be broken),
//! so the identities are resolved here, in the worker. The lookup itself is the shared
//! [`LookupJob`] run by [`crate::lookup`], answered through the [`crate::jobs::Replier`] contract.
//!
//! Who is looked up: the requester's email, plus customer emails found in the ticket's latest public
//! comment; never an agent's or admin's address (users with those roles among the ticket's and the
//! comments' sideloaded users), never an address at `identity.exclude_domains`. The moment in question
//! (`around`) is the ticket's creation; the summary is asked for when `zendesk.auto_summary` is on.
//!
//! Fan-out: the requester plus at most `zendesk.max_comment_identities` of the comment's addresses (in
//! order of appearance; a comment pasting 2,000 addresses costs at most that many FullStory calls), the
//! rest named in the note as not looked up. Each account's lookups are also held to
//! `zendesk.account_lookups_per_minute` identities: past it the job is delayed, never refused, because
//! Zendesk does not resend a webhook we answered 2xx.
//!
//! Failure policy (deliberately not the shared handler's): a FullStory failure that may pass (429, 5xx,
//! timeout, its circuit breaker open) makes the job wait for FullStory quietly, without spending attempts
//! and with no "delayed" note (a note cannot be replaced later), for at most `zendesk.max_delay`; past
//! it, one note says it took too long and the job ends `expired` ([`jobs::wait_for_fullstory`]); a
//! lasting one posts one short failure note on the ticket and ends; a Zendesk refusal that will not pass (401,
//! 403, 404) makes the job dead at once, to be replayed with `replaydesk jobs retry` once fixed. When
//! the queue gives up, the ticket gets the failure note unless its replays note is already there.
//!
//! **Erasure tag.** A ticket carrying `privacy.zendesk_erasure_tag` (on the ticket as read over
//! Zendesk's API: never from the webhook body, which free text can forge) is an erasure request for its requester, and only that: no lookup, no replays
//! note, no FullStory event (all three would copy the very data the customer asked us to delete). The
//! requester is erased by the shared `privacy.erase` job (the one `replaydesk forget` runs), once per
//! ticket, and the ticket gets one internal note with its receipt ([`TicketHandler::erase_requester`]).
//!
//! With `zendesk.fullstory_event`, after the note the requester gets a FullStory server event
//! "Support Ticket Created" (`POST /v2/events`, `session.use_most_recent`), once per ticket (claim
//! `fullstory-event`) and once per job (ledger effect `fullstory-event`). The event names the
//! requester by `uid`: the requester's Zendesk `external_id` when set (the company's own user id, which
//! is what FullStory's uid usually is), else their email.

use std::{collections::HashSet, sync::Arc};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    PLATFORM,
    api::{TicketWithUsers, User, ZendeskApi},
    reply::{self, Target, ZendeskReplier},
};
use crate::{
    app::App,
    fullstory::{
        Client, FsError,
        server_api::{EventTarget, ServerEvent},
    },
    identity::{CustomerEmail, Identity, extract_emails},
    jobs::{self, Answer, LookupJob, PlatformReplier, ReplyTo, Requester},
    privacy::ErasureJob,
    queue::{Effect, Job, JobContext, JobError, RunJob},
    source_limits::SourceLimits,
    store::{EffectState, NewJob},
};

/// The claim (per ticket) that makes erasure happen once per ticket.
pub const ERASURE_ITEM: &str = "erasure";

/// The FullStory event's name.
pub const TICKET_EVENT: &str = "Support Ticket Created";

/// The claim (per ticket) and ledger effect (per job) of the ticket event.
pub const EVENT_ITEM: &str = "fullstory-event";

/// What the webhook handler enqueues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketJob {
    pub ticket_id: u64,
    #[serde(default)]
    pub account_id: Option<String>,
    /// From the webhook body, when its template sent them.
    #[serde(default)]
    pub requester_email: Option<String>,
    #[serde(default)]
    pub latest_comment: Option<String>,
}

impl Job for TicketJob {
    const KIND: &'static str = "zendesk.ticket";
}

/// The customers to look up: the requester first, then the comment's other addresses; staff and
/// excluded domains left out; each once.
pub fn customer_identities(
    requester: Option<&str>,
    comment: Option<&str>,
    staff: &HashSet<CustomerEmail>,
    exclude_domains: &[String],
) -> Vec<Identity> {
    let mut seen = HashSet::new();
    requester
        .into_iter()
        .chain(comment)
        .flat_map(|text| extract_emails(text, exclude_domains))
        .filter(|email| !staff.contains(email))
        .filter(|email| seen.insert(email.clone()))
        .map(Identity::Email)
        .collect()
}

/// Whom a ticket's replays are looked up for: what the webhook's job and the sidebar app share, so both
/// follow the same identity rules and caps.
pub struct Customers {
    /// The requester as a user, when the ticket has one.
    pub requester: Option<User>,
    /// The requester's email first, then the customers named in the latest public comment.
    pub identities: Vec<Identity>,
    /// The requester plus at most `zendesk.max_comment_identities` of the comment's addresses, within
    /// `identity.max_per_request`: the [`crate::lookup::LookupRequest::max_identities`] to use.
    pub max_identities: usize,
}

/// The requester as a user, from the sideloads or (when Zendesk did not sideload them) by id.
pub async fn requester(api: &ZendeskApi, ticket: &TicketWithUsers) -> anyhow::Result<Option<User>> {
    if let Some(user) = ticket.requester() {
        return Ok(Some(user.clone()));
    }
    match ticket.ticket.requester_id {
        Some(id) => {
            Ok(Some(api.user(id).await.map_err(|e| {
                anyhow::Error::new(e).context("reading the requester")
            })?))
        }
        None => Ok(None),
    }
}

/// The customers of `ticket` (see the module docs): the requester (unless staff; `requester_hint` from
/// the webhook body when the user has no email) and the customer addresses of the latest public comment
/// (`comment_hint` from the webhook body, else read over the API), staff and excluded domains left out.
pub async fn customers(
    api: &ZendeskApi,
    config: &crate::config::Config,
    ticket: &TicketWithUsers,
    requester_hint: Option<&str>,
    comment_hint: Option<&str>,
) -> anyhow::Result<Customers> {
    let id = ticket.ticket.id;
    let mut staff: HashSet<CustomerEmail> = HashSet::new();
    let mut note_staff = |users: &[User]| {
        for user in users.iter().filter(|u| u.is_staff()) {
            if let Some(email) = user
                .email
                .as_deref()
                .and_then(|e| CustomerEmail::parse(e).ok())
            {
                staff.insert(email);
            }
        }
    };
    note_staff(&ticket.users);
    let comment = match comment_hint {
        Some(text) => Some(text.to_owned()),
        None => {
            let comments = api
                .comments(id)
                .await
                .map_err(|e| anyhow::Error::new(e).context("reading the comments"))?;
            note_staff(&comments.users);
            comments
                .latest_public()
                .and_then(|c| c.texts().next().map(str::to_owned))
        }
    };
    let requester = requester(api, ticket).await?;
    let requester_email = match &requester {
        Some(user) if user.is_staff() => None,
        Some(user) => user.email.clone().or(requester_hint.map(str::to_owned)),
        None => requester_hint.map(str::to_owned),
    };
    let exclude = &config.identity.exclude_domains.0;
    let identities = customer_identities(
        requester_email.as_deref(),
        comment.as_deref(),
        &staff,
        exclude,
    );
    let from_requester =
        customer_identities(requester_email.as_deref(), None, &staff, exclude).len();
    let max_identities = (from_requester + config.zendesk.max_comment_identities)
        .min(config.identity.max_per_request);
    Ok(Customers {
        requester,
        identities,
        max_identities,
    })
}

/// Runs [`TicketJob`]s.
pub struct TicketHandler {
    pub app: Arc<App>,
    pub api: Arc<ZendeskApi>,
    pub replier: Arc<ZendeskReplier>,
    /// Each account's FullStory spend: `zendesk.account_lookups_per_minute` identities a minute; a
    /// ticket past it is delayed ([`JobError::Later`]), never refused (see [`crate::source_limits`]).
    pub accounts: Arc<SourceLimits>,
}

impl TicketHandler {
    async fn send_ticket_event(
        &self,
        job: &JobContext,
        ticket: &TicketWithUsers,
        requester: Option<&User>,
    ) -> Result<(), JobError> {
        let id = ticket.ticket.id;
        let Some(uid) = requester.and_then(fullstory_uid) else {
            tracing::info!(ticket = id, "no requester to send the FullStory event for");
            return Ok(());
        };
        let claimed = self
            .replier
            .claim(job, id, &[EVENT_ITEM.to_owned()])
            .await?;
        if !claimed.contains(EVENT_ITEM) {
            return Ok(());
        }
        let effect = EventEffect {
            fullstory: &self.app.fullstory,
            event: ticket_event(ticket, uid, &self.api.ticket_link(id)),
        };
        match job.effects().once(EVENT_ITEM, &effect).await {
            Ok(_) => Ok(()),
            Err(error) => match error.downcast_ref::<FsError>() {
                Some(fs) if !fs.is_transient() => {
                    tracing::warn!(ticket = id, error = %fs, "FullStory refused the ticket event");
                    Ok(())
                }
                _ => Err(JobError::Retry(error)),
            },
        }
    }
}

/// The configured erasure tag, when the ticket as read over Zendesk's API carries it: never from the
/// webhook body, whose free text can forge a tag (see [`super::payload`]). Zendesk keeps tags in lower
/// case; the comparison ignores case and surrounding space anyway.
pub fn erasure_tag<'c>(
    config: &'c crate::config::Config,
    ticket: &TicketWithUsers,
) -> Option<&'c str> {
    let tag = config
        .privacy
        .zendesk_erasure_tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())?;
    ticket
        .ticket
        .tags
        .iter()
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
        .then_some(tag)
}

impl TicketHandler {
    /// The ticket carries the erasure tag: its requester (only the requester: never a cc'd address, never
    /// staff) is erased by the shared erasure job, whose receipt comes back as an internal note. This is
    /// instead of the replays note: looking the customer up and posting their sessions is the opposite
    /// of what they asked for. Once per ticket: the claim [`ERASURE_ITEM`] in the ticket's scope, and
    /// the erasure's delivery key is the ticket, so a retried job or a repeated trigger enqueues nothing
    /// new. The erasure is written straight to the store (a handler holds no queue handle), so an idle
    /// worker picks it up at its next poll (`queue.poll_interval`), or at once on PostgreSQL's NOTIFY.
    async fn erase_requester(
        &self,
        job: &JobContext,
        payload: &TicketJob,
        ticket: &TicketWithUsers,
        tag: &str,
    ) -> Result<(), JobError> {
        let id = ticket.ticket.id;
        let claimed = self
            .replier
            .claim(job, id, &[ERASURE_ITEM.to_owned()])
            .await?;
        if !claimed.contains(ERASURE_ITEM) {
            tracing::info!(
                ticket = id,
                "the ticket's requester is already being erased"
            );
            return Ok(());
        }
        let target = Target {
            ticket_id: id,
            updated_at: None,
        };
        let requester = requester(&self.api, ticket)
            .await
            .map_err(reply::job_error)?;
        let email = match &requester {
            Some(user) if user.is_staff() => None,
            Some(user) => user.email.clone().or(payload.requester_email.clone()),
            None => payload.requester_email.clone(),
        }
        .and_then(|e| CustomerEmail::parse(&e).ok());
        let Some(email) = email else {
            tracing::info!(
                ticket = id,
                "erasure tag, but the requester has no customer email"
            );
            let answer = Answer::Failed {
                message: format!(
                    "The ticket is tagged {tag}, but its requester has no customer email address \
                     replaydesk could erase. Nothing was erased."
                ),
                reference: jobs::reference(job),
            };
            return self.replier.deliver(job, &target, answer).await;
        };
        let erasure = ErasureJob {
            email,
            requester: Requester {
                platform: PLATFORM.into(),
                tenant: payload.account_id.clone().unwrap_or_default(),
                user: format!("tag:{tag}"),
                place: Some(format!("ticket {id}")),
            },
            reply: Some(ReplyTo::new(&target)),
        };
        let new_job = NewJob::of(&erasure).map_err(JobError::Retry)?;
        let enqueued = self
            .app
            .store
            .enqueue(&erasure_key(id), new_job, self.app.clock.now())
            .await
            .map_err(JobError::Retry)?;
        tracing::info!(
            ticket = id,
            erasure_job = enqueued.job_id,
            duplicate = enqueued.duplicate,
            "erasure of the ticket's requester queued"
        );
        Ok(())
    }
}

/// The delivery key of a ticket's erasure: one per ticket.
pub fn erasure_key(ticket_id: u64) -> String {
    format!("{PLATFORM}:erase:ticket:{ticket_id}")
}

/// How FullStory knows a Zendesk user: their `external_id` (the company's own user id) when set, else
/// their email in normal form. Staff are never named.
pub fn fullstory_uid(user: &User) -> Option<String> {
    if user.is_staff() {
        return None;
    }
    user.external_id
        .as_deref()
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            let email = CustomerEmail::parse(user.email.as_deref()?).ok()?;
            Some(email.into_inner())
        })
}

/// "Support Ticket Created" for the requester named by `uid`, at the ticket's creation.
pub fn ticket_event(ticket: &TicketWithUsers, uid: String, link: &str) -> ServerEvent {
    ServerEvent {
        name: TICKET_EVENT.into(),
        timestamp: ticket.ticket.created(),
        target: EventTarget::MostRecentSessionOf {
            uid: Some(uid),
            user_id: None,
        },
        properties: json!({
            "ticket_id": ticket.ticket.id,
            "subject": ticket.ticket.subject.clone().unwrap_or_default(),
            "link": link,
        }),
    }
}

#[async_trait]
impl RunJob for TicketHandler {
    type Job = TicketJob;

    async fn run(&self, job: &JobContext, payload: TicketJob) -> Result<(), JobError> {
        let id = payload.ticket_id;
        let ticket =
            self.api.ticket(id).await.map_err(|e| {
                reply::job_error(anyhow::Error::new(e).context("reading the ticket"))
            })?;
        if let Some(tag) = erasure_tag(&self.app.config, &ticket) {
            return self.erase_requester(job, &payload, &ticket, tag).await;
        }
        let Customers {
            requester,
            identities,
            max_identities,
        } = customers(
            &self.api,
            &self.app.config,
            &ticket,
            payload.requester_email.as_deref(),
            payload.latest_comment.as_deref(),
        )
        .await
        .map_err(reply::job_error)?;
        let config = &self.app.config;
        if identities.is_empty() {
            tracing::info!(
                ticket = id,
                "no customer email on the ticket; nothing to look up"
            );
        } else {
            let lookup = LookupJob {
                identities,
                around: ticket.ticket.created(),
                summary: config.zendesk.auto_summary,
                digest: None,
                requester: Requester {
                    platform: PLATFORM.into(),
                    tenant: payload.account_id.clone().unwrap_or_default(),
                    user: "trigger".into(),
                    place: Some(format!("ticket {id}")),
                },
                reply: ReplyTo::new(&Target {
                    ticket_id: id,
                    updated_at: ticket.ticket.updated_at.clone(),
                }),
            };
            let mut request = lookup.to_request(&self.app);
            request.max_identities = max_identities;
            // Keyed like the sidebar's lookups (the account's host), so one account has one allowance.
            let account = super::api::account_host(&config.zendesk)
                .or_else(|| payload.account_id.clone())
                .unwrap_or_default();
            let spend = lookup.identities.len().min(max_identities);
            if let Some(after) = self.accounts.delay(PLATFORM, &account, spend) {
                // Zendesk does not resend after our 2xx: the ticket waits, it is never dropped.
                return Err(JobError::Later {
                    after,
                    reason: format!(
                        "over zendesk.account_lookups_per_minute for account {account}"
                    ),
                });
            }
            // The one shared path: audit, failure policy and wording as on every platform.
            let replier: Arc<dyn jobs::Replier> = self.replier.clone();
            jobs::run_lookup_as(&self.app, &replier, job, &lookup, request).await?;
        }
        if config.zendesk.fullstory_event {
            self.send_ticket_event(job, &ticket, requester.as_ref())
                .await?;
        }
        Ok(())
    }

    async fn on_dead(&self, job: &JobContext, payload: Option<TicketJob>, error: &str) {
        let Some(payload) = payload else {
            return;
        };
        if let Ok(Some(note)) = self.app.store.effect(job.id(), reply::NOTE).await
            && note.state == EffectState::Done
        {
            return;
        }
        let target = Target {
            ticket_id: payload.ticket_id,
            updated_at: None,
        };
        let answer = Answer::Failed {
            message: jobs::gave_up(error).into(),
            reference: jobs::reference(job),
        };
        if let Err(error) = self.replier.deliver(job, &target, answer).await {
            tracing::warn!(ticket = payload.ticket_id, %error, "could not put the failure note on the ticket");
        }
    }
}

/// The ticket event, sent once per job.
struct EventEffect<'a> {
    fullstory: &'a Client,
    event: ServerEvent,
}

#[async_trait]
impl Effect for EventEffect<'_> {
    async fn find_existing(&self, _marker: &str) -> anyhow::Result<Option<String>> {
        // FullStory cannot be searched for an event: a worker that died between sending and recording
        // sends it again (the one window where the event may arrive twice).
        Ok(None)
    }

    async fn perform(&self, _marker: &str) -> anyhow::Result<String> {
        self.fullstory.create_event(&self.event).await?;
        Ok("sent".into())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn emails(identities: &[Identity]) -> Vec<&str> {
        identities
            .iter()
            .filter_map(|i| i.as_email().map(CustomerEmail::as_str))
            .collect()
    }

    #[test]
    fn the_requester_comes_first_then_other_customers_never_staff_or_our_domains() {
        let staff: HashSet<CustomerEmail> = [CustomerEmail::parse("agent@help.io").unwrap()].into();
        let identities = customer_identities(
            Some("Jane@Acme.com"),
            Some(
                "Hi, also bob@acme.com and jane@acme.com had it. cc agent@help.io, \
                 support@ourco.com <a href=\"mailto:eve@beta.io\">Eve</a>",
            ),
            &staff,
            &["ourco.com".to_owned()],
        );
        assert_eq!(
            emails(&identities),
            ["jane@acme.com", "bob@acme.com", "eve@beta.io"]
        );
    }

    #[test]
    fn a_missing_or_invalid_requester_leaves_the_comment_addresses() {
        let identities = customer_identities(
            Some("not an address"),
            Some("ask bob@acme.com"),
            &HashSet::new(),
            &[],
        );
        assert_eq!(emails(&identities), ["bob@acme.com"]);
        assert!(customer_identities(None, None, &HashSet::new(), &[]).is_empty());
    }

    #[test]
    fn the_ticket_event_names_the_ticket_subject_and_link() {
        let ticket = TicketWithUsers {
            ticket: super::super::api::Ticket {
                id: 42,
                subject: Some("Cannot pay".into()),
                created_at: Some("2026-11-20T14:10:00Z".into()),
                ..Default::default()
            },
            users: vec![],
        };
        let event = ticket_event(
            &ticket,
            "u-77".into(),
            "https://acme.zendesk.com/agent/tickets/42",
        );
        assert_eq!(
            event.to_json(),
            json!({
                "name": "Support Ticket Created",
                "timestamp": "2026-11-20T14:10:00.000Z",
                "session": {"use_most_recent": true},
                "user": {"uid": "u-77"},
                "properties": {
                    "ticket_id": 42,
                    "subject": "Cannot pay",
                    "link": "https://acme.zendesk.com/agent/tickets/42"
                }
            })
        );
    }
}
