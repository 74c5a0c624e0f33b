//! One function per kind of Slack request, shared by the HTTP routes ([`super::inbound`], after the
//! signature check) and Socket Mode ([`super::socket`], whose connection is the authentication). Each
//! checks the workspace (403), decodes (400 naming the field), decides, records the job durably with
//! [`inbound::accept`] and returns the [`Immediate`] answer, all without calling any upstream.
//!
//! Deduplication keys: slash commands, shortcuts and button clicks on `trigger_id`, events on
//! `event_id` (so Slack's `X-Slack-Retry-Num` retries and Socket Mode redeliveries are answered again
//! but run once). People outside `slack.allowed_user_ids` / `slack.allowed_channel_ids` get
//! [`crate::render::NOT_ALLOWED`], privately, and no lookup is enqueued: a slash command in its HTTP
//! answer, the others (which Slack gives no answer body for) through a `slack.notice` job.
//!
//! A **Share in channel** click carries the lookup job's id, not the customer: `share_of` reads that
//! job from the store (no upstream is called before the ack) and shares it only for the person who asked
//! it, in the same workspace; a job gone (retention, erasure) or someone else's gets [`SHARE_GONE`],
//! privately. Buttons posted before carried the identities themselves and still work.
//!
//! `/replays forget EMAIL` is gated by `privacy.admin_slack_user_ids` alone (an empty list: nobody), not
//! by the lookup allow-lists: it answers with a confirmation and enqueues nothing; the **Confirm
//! erasure** click (checked against the admin list again) enqueues the shared `privacy.erase` job under
//! the key `erase:<the command's trigger_id>`, so every click on one confirmation is one erasure.

use serde_json::{Value, json};

use super::{
    PLATFORM,
    api::response_body,
    escalate,
    mention::MentionJob,
    notice::NoticeJob,
    render::{
        self, ERASE_CANCEL, ERASE_CONFIRM, ESCALATE, EscalateValue, ForgetValue, SHARE, SUMMARIZE,
        ShareValue, SummarizeValue,
    },
    reply::Target,
    unfurl,
    wire::{
        self, Action, AppMention, BlockActions, Event, EventCallback, Interaction, LinkShared,
        MessageAction, SlashCommand, decode, str_at,
    },
};
use crate::{
    adapters::inbound::{self, Rejection},
    answer::{LookupJob, SummaryJob},
    app::AppState,
    erasure::ErasureJob,
    escalate::Tracker,
    identity::{Identity, extract_identities, parse_query},
    privacy::Requester,
    queue::Job,
    render::{
        ERASURE_CANCELLED, FORGET_NOT_ALLOWED, NO_IDENTITIES, NOT_ALLOWED, forget_usage,
        looking_up, usage,
    },
    source_limits::OVER_LIMIT,
    store::NewJob,
};

/// The message shortcut's `callback_id`.
pub const FIND_REPLAYS: &str = "find_replays";
/// The slash command, as the manifest declares it.
pub const COMMAND: &str = "/replays";
/// Its erasure subcommand: `/replays forget jane@acme.com`.
pub const FORGET: &str = "forget";

/// What to answer Slack at once.
#[derive(Debug, Clone, PartialEq)]
pub enum Immediate {
    /// 200 with an empty body (Socket Mode: an ack without payload).
    Empty,
    /// 200 with this JSON (Socket Mode: the ack's `payload`).
    Json(Value),
}

/// A slash command: its fields as a JSON object (from the form, or Socket Mode's payload).
pub async fn command(state: &AppState, payload: Value) -> Result<Immediate, Rejection> {
    check_team(state, str_at(&payload, "/team_id"))?;
    check_response_url(state, str_at(&payload, "/response_url"))?;
    let command: SlashCommand = decode(payload, "command")?;
    if let Some(rest) = forget_text(&command.text) {
        inbound::count(state, PLATFORM, "immediate");
        return Ok(Immediate::Json(forget(state, &command, rest)));
    }
    if !allowed(state, &command.user_id, Some(&command.channel_id)) {
        inbound::count(state, PLATFORM, "not_permitted");
        return Ok(Immediate::Json(render::ephemeral(NOT_ALLOWED)));
    }
    let query = parse_query(&command.text, &state.config.identity.exclude_domains.0);
    if query.identities.is_empty() {
        inbound::count(state, PLATFORM, "immediate");
        let name = if command.command.starts_with('/') {
            command.command.as_str()
        } else {
            COMMAND
        };
        return Ok(Immediate::Json(render::ephemeral(&usage(name))));
    }
    let asked = query.identities.len();
    if !inbound::within_source_limit(state, PLATFORM, &command.team_id, asked) {
        return Ok(Immediate::Json(render::ephemeral(OVER_LIMIT)));
    }
    let max = state.config.identity.max_per_request;
    let ack = render::ephemeral(&looking_up(&query.identities, max));
    let job = LookupJob {
        summary: query.has_flag("summary"),
        // `--digest` asks for it even with `fullstory.digest = "on_request"`.
        digest: query.has_flag("digest").then_some(true),
        identities: query.identities,
        around: None,
        requester: requester(&command.team_id, &command.user_id, &command.channel_id),
        reply: Target::ResponseUrl {
            url: command.response_url,
            user: command.user_id.clone(),
            channel: Some(command.channel_id),
            replace_original: true,
            in_channel: false,
        }
        .reply_to(),
    };
    enqueue(state, &command.trigger_id, &job).await?;
    Ok(Immediate::Json(ack))
}

/// An interactivity payload (the `payload` form field, or Socket Mode's payload).
pub async fn interaction(state: &AppState, payload: Value) -> Result<Immediate, Rejection> {
    let team = str_at(&payload, "/team/id").or_else(|| str_at(&payload, "/user/team_id"));
    check_team(state, team)?;
    check_response_url(state, str_at(&payload, "/response_url"))?;
    let team = team.unwrap_or_default().to_owned();
    match wire::interaction(payload)? {
        Interaction::Shortcut(action) => shortcut(state, &team, action).await,
        Interaction::Buttons(click) => block_actions(state, &team, click).await,
        Interaction::Submission(payload) => {
            let answer = escalate::submitted(state, &team, payload).await?;
            inbound::count(state, PLATFORM, "accepted");
            Ok(if answer.is_null() {
                Immediate::Empty
            } else {
                Immediate::Json(answer)
            })
        }
        Interaction::Other => ignored(state),
    }
}

/// An Events API body (or Socket Mode's `events_api` payload).
pub async fn event(state: &AppState, payload: Value) -> Result<Immediate, Rejection> {
    if str_at(&payload, "/type") == Some("event_callback") {
        check_team(state, str_at(&payload, "/team_id"))?;
    }
    match wire::event(payload)? {
        Event::Challenge(challenge) => {
            inbound::count(state, PLATFORM, "immediate");
            Ok(Immediate::Json(json!({ "challenge": challenge })))
        }
        Event::Mention { callback, mention } => app_mention(state, &callback, mention).await,
        Event::LinkShared { callback, shared } => link_shared(state, &callback, shared).await,
        Event::Other => ignored(state),
    }
}

async fn shortcut(
    state: &AppState,
    team: &str,
    action: MessageAction,
) -> Result<Immediate, Rejection> {
    if action.callback_id != FIND_REPLAYS {
        return ignored(state);
    }
    let private = Target::ResponseUrl {
        url: action.response_url.clone(),
        user: action.user.id.clone(),
        channel: Some(action.channel.id.clone()),
        replace_original: false,
        in_channel: false,
    };
    if !allowed(state, &action.user.id, Some(&action.channel.id)) {
        return notice(state, &action.trigger_id, NOT_ALLOWED, &private).await;
    }
    let identities = extract_identities(
        &action.message.text,
        &state.config.identity.exclude_domains.0,
    );
    if identities.is_empty() {
        return notice(state, &action.trigger_id, NO_IDENTITIES, &private).await;
    }
    let parent = action
        .message
        .thread_ts
        .clone()
        .unwrap_or_else(|| action.message.ts.clone());
    let job = LookupJob {
        identities,
        around: render::ts_time(&action.message.ts),
        summary: false,
        digest: None,
        requester: requester(team, &action.user.id, &action.channel.id),
        reply: Target::Thread {
            channel: action.channel.id.clone(),
            thread_ts: parent,
            user: Some(action.user.id.clone()),
            response_url: Some(action.response_url),
        }
        .reply_to(),
    };
    enqueue(state, &action.trigger_id, &job).await?;
    Ok(Immediate::Empty)
}

async fn block_actions(
    state: &AppState,
    team: &str,
    click: BlockActions,
) -> Result<Immediate, Rejection> {
    let Some((index, action)) = click.actions.iter().enumerate().find(|(_, a)| {
        [SUMMARIZE, SHARE, ESCALATE, ERASE_CONFIRM, ERASE_CANCEL].contains(&a.action_id.as_str())
    }) else {
        // Link buttons report their clicks too; nothing to do.
        return ignored(state);
    };
    let channel = click
        .channel
        .as_ref()
        .map(|c| c.id.clone())
        .or_else(|| click.container.channel_id.clone());
    let user = click.user.id.clone();
    if action.action_id == ERASE_CONFIRM || action.action_id == ERASE_CANCEL {
        return erasure_click(state, team, &click, (index, action), channel).await;
    }
    let private = click.response_url.clone().map(|url| Target::ResponseUrl {
        url,
        user: user.clone(),
        channel: channel.clone(),
        replace_original: false,
        in_channel: false,
    });
    if !allowed(state, &user, channel.as_deref()) {
        return match &private {
            Some(target) => notice(state, &click.trigger_id, NOT_ALLOWED, target).await,
            None => ignored(state),
        };
    }
    let field = format!("payload.actions[{index}].value");
    let value = action
        .value
        .as_deref()
        .ok_or_else(|| Rejection::Malformed(format!("{field}: missing")))?;
    let place = channel.clone().unwrap_or_default();
    if action.action_id == ESCALATE {
        let value: EscalateValue = decode_value(value, &field)?;
        let thread_ts = click
            .container
            .thread_ts
            .clone()
            .or_else(|| click.message.as_ref().and_then(|m| m.thread_ts.clone()));
        return escalate_click(state, team, &click, value, channel, thread_ts, private).await;
    }
    let requester = requester(team, &user, &place);
    if action.action_id == SUMMARIZE {
        let value: SummarizeValue = decode_value(value, &field)?;
        let around = value.around.and_then(render::from_unix);
        // Always privately, to the one who clicked: a summary quotes what the customer did, and the
        // button may sit on a message the whole channel sees (a shared answer, a link preview).
        let target =
            private.ok_or_else(|| Rejection::Malformed("payload.response_url: missing".into()))?;
        let job = SummaryJob {
            session: value.session,
            url: value.url,
            around,
            requester,
            reply: target.reply_to(),
        };
        enqueue(state, &click.trigger_id, &job).await?;
    } else {
        let value: ShareValue = decode_value(value, &field)?;
        let url = click
            .response_url
            .clone()
            .ok_or_else(|| Rejection::Malformed("payload.response_url: missing".into()))?;
        let Some(shared) = share_of(state, value, team, &user).await? else {
            let target = Target::ResponseUrl {
                url,
                user,
                channel,
                replace_original: false,
                in_channel: false,
            };
            return notice(state, &click.trigger_id, SHARE_GONE, &target).await;
        };
        let job = LookupJob {
            identities: shared.identities,
            around: shared.around,
            summary: shared.summary,
            digest: None,
            requester,
            reply: Target::ResponseUrl {
                url,
                user,
                channel,
                replace_original: false,
                in_channel: true,
            }
            .reply_to(),
        };
        enqueue(state, &click.trigger_id, &job).await?;
    }
    Ok(Immediate::Empty)
}

/// An Escalate click: the modal, opened by a worker (no upstream before the ack), for the person who
/// asked the answer; anyone else, or an answer gone, is told privately.
async fn escalate_click(
    state: &AppState,
    team: &str,
    click: &BlockActions,
    value: EscalateValue,
    channel: Option<String>,
    thread_ts: Option<String>,
    private: Option<Target>,
) -> Result<Immediate, Rejection> {
    let on: Vec<Tracker> = Tracker::ALL
        .into_iter()
        .filter(|t| t.enabled(&state.config))
        .collect();
    let lookup = escalate::lookup_of(state, value.job, team, &click.user.id).await?;
    let customer = lookup
        .as_ref()
        .and_then(|l| l.identities.iter().find_map(|i| i.as_email()).cloned());
    let (Some(customer), false) = (customer, on.is_empty()) else {
        let text = if on.is_empty() {
            "No tracker is configured here: ask your replaydesk admin to set [linear] or [jira]."
        } else {
            SHARE_GONE
        };
        return match &private {
            Some(target) => notice(state, &click.trigger_id, text, target).await,
            None => ignored(state),
        };
    };
    let origin = escalate::Origin {
        job: value.job,
        session: value.session,
        channel,
        thread_ts,
    };
    let title = format!("Support escalation: {}", customer.redacted());
    let job = escalate::ModalJob {
        trigger_id: click.trigger_id.clone(),
        view: escalate::modal(&on, &title, &origin),
    };
    enqueue(state, &click.trigger_id, &job).await?;
    Ok(Immediate::Empty)
}

async fn app_mention(
    state: &AppState,
    callback: &EventCallback,
    mention: AppMention,
) -> Result<Immediate, Rejection> {
    let Some(user) = mention.user.clone().filter(|_| mention.bot_id.is_none()) else {
        // Bots (ourselves included) are not answered.
        return ignored(state);
    };
    let key = format!("event:{}", callback.event_id);
    if !allowed(state, &user, Some(&mention.channel)) {
        let target = Target::Ephemeral {
            channel: mention.channel.clone(),
            user,
            thread_ts: mention.thread_ts.clone(),
        };
        let job = NoticeJob {
            text: NOT_ALLOWED.into(),
            reply: target.reply_to(),
        };
        inbound::accept(state, PLATFORM, &key, new_job(state, &job)?).await?;
        return Ok(Immediate::Empty);
    }
    // The mention's own identities (one when it names none: the thread's parent is read later).
    let asked = parse_query(&mention.text, &state.config.identity.exclude_domains.0)
        .identities
        .len();
    if !inbound::within_source_limit(state, PLATFORM, &callback.team_id, asked) {
        return Ok(Immediate::Empty);
    }
    let parent = mention
        .thread_ts
        .clone()
        .unwrap_or_else(|| mention.ts.clone());
    let job = MentionJob {
        text: mention.text,
        channel: mention.channel.clone(),
        ts: mention.ts,
        thread_ts: mention.thread_ts,
        requester: requester(&callback.team_id, &user, &mention.channel),
        reply: Target::Thread {
            channel: mention.channel,
            thread_ts: parent,
            user: Some(user),
            response_url: None,
        }
        .reply_to(),
    };
    inbound::accept(state, PLATFORM, &key, new_job(state, &job)?).await?;
    Ok(Immediate::Empty)
}

/// FullStory links pasted where the app is: one `slack.unfurl` job per event (deduplicated on the
/// event id), for the session links among them (at most [`unfurl::MAX_LINKS`]), when the workspace,
/// channel and user are allowed and the workspace is within its per-source limit. See [`unfurl`].
async fn link_shared(
    state: &AppState,
    callback: &EventCallback,
    shared: LinkShared,
) -> Result<Immediate, Rejection> {
    let urls: Vec<String> = shared
        .links
        .into_iter()
        .map(|l| l.url)
        .filter(|url| unfurl::session_link(url).is_some())
        .take(unfurl::MAX_LINKS)
        .collect();
    let Some(user) = shared.user.filter(|_| !urls.is_empty()) else {
        return ignored(state);
    };
    let channel = Some(shared.channel.as_str()).filter(|c| *c != "COMPOSER");
    if !allowed(state, &user, channel) || !previewed_in(state, channel) {
        return ignored(state);
    }
    if !inbound::within_source_limit(state, PLATFORM, &callback.team_id, urls.len()) {
        return Ok(Immediate::Empty);
    }
    let target = match (shared.unfurl_id, shared.source) {
        (Some(unfurl_id), Some(source)) if source == "composer" => {
            super::api::UnfurlTarget::Composer { unfurl_id, source }
        }
        _ => super::api::UnfurlTarget::Message {
            channel: shared.channel.clone(),
            ts: shared.message_ts,
        },
    };
    let job = unfurl::UnfurlJob {
        urls,
        target,
        requester: requester(&callback.team_id, &user, &shared.channel),
    };
    let key = format!("event:{}", callback.event_id);
    inbound::accept(state, PLATFORM, &key, new_job(state, &job)?).await?;
    Ok(Immediate::Empty)
}

/// What a Share click is told when its answer can no longer be shared.
pub const SHARE_GONE: &str = "This answer can no longer be shared (it is too old, or was not yours). \
     Run `/replays` again and share the new answer.";

/// The lookup a Share button refers to: the job named by its value (`{"j": 42}`), read from the store
/// and shared only by the person who asked it, in the same workspace; or, for buttons posted before
/// values held a reference, the identities the value carries. `None` when the job is gone (retention
/// or an erasure scrubbed it), is not a lookup, or is someone else's.
async fn share_of(
    state: &AppState,
    value: ShareValue,
    team: &str,
    user: &str,
) -> Result<Option<LookupJob>, Rejection> {
    let Some(id) = value.job else {
        if value.identities.is_empty() {
            return Ok(None);
        }
        return Ok(Some(LookupJob {
            identities: value.identities,
            around: value.around.and_then(render::from_unix),
            summary: value.summary,
            digest: None,
            requester: Requester::default(),
            reply: Target::Ephemeral {
                channel: String::new(),
                user: String::new(),
                thread_ts: None,
            }
            .reply_to(),
        }));
    };
    let lookup = escalate::lookup_of(state, id, team, user).await?;
    Ok(lookup.filter(|lookup| !lookup.identities.is_empty()))
}

/// The rest of `/replays forget …`, when the command is one.
fn forget_text(text: &str) -> Option<&str> {
    let text = text.trim_start();
    let word = text.split_whitespace().next()?;
    word.eq_ignore_ascii_case(FORGET)
        .then(|| text.get(word.len()..).unwrap_or_default())
}

fn is_privacy_admin(state: &AppState, user: &str) -> bool {
    state
        .config
        .privacy
        .admin_slack_user_ids
        .iter()
        .any(|admin| admin == user)
}

/// `/replays forget jane@acme.com`: for privacy admins, the confirmation (nothing is enqueued until
/// **Confirm erasure** is clicked); for anyone else a polite refusal. Both private, both at once.
fn forget(state: &AppState, command: &SlashCommand, rest: &str) -> Value {
    if !is_privacy_admin(state, &command.user_id) {
        tracing::info!("an erasure was asked for by someone outside privacy.admin_slack_user_ids");
        return render::ephemeral(FORGET_NOT_ALLOWED);
    }
    let name = if command.command.starts_with('/') {
        command.command.as_str()
    } else {
        COMMAND
    };
    // Every address counts here (an employee may ask to be forgotten too): no exclusions.
    let query = parse_query(rest, &[]);
    let email = match query.identities.as_slice() {
        [Identity::Email(email)] => email.clone(),
        _ => return render::ephemeral(&forget_usage(name)),
    };
    let value = ForgetValue {
        email,
        request: command.trigger_id.clone(),
    };
    response_body(&render::erasure_confirmation(&value), false, false)
}

/// A click on the erasure confirmation. **Confirm erasure** (privacy admins only, checked again)
/// enqueues the erasure job the command line uses, with the receipt going back privately through the
/// click's `response_url`, replacing the confirmation; its delivery key is the confirmed request, so
/// a second click on the same confirmation (or Slack's retry) erases once. **Cancel** replaces the
/// confirmation with "Cancelled".
async fn erasure_click(
    state: &AppState,
    team: &str,
    click: &BlockActions,
    (index, action): (usize, &Action),
    channel: Option<String>,
) -> Result<Immediate, Rejection> {
    let user = click.user.id.clone();
    let Some(url) = click.response_url.clone() else {
        return Err(Rejection::Malformed("payload.response_url: missing".into()));
    };
    let mut target = Target::ResponseUrl {
        url,
        user: user.clone(),
        channel: channel.clone(),
        replace_original: true,
        in_channel: false,
    };
    if action.action_id == ERASE_CANCEL {
        return notice(state, &click.trigger_id, ERASURE_CANCELLED, &target).await;
    }
    if !is_privacy_admin(state, &user) {
        tracing::info!("an erasure was confirmed by someone outside privacy.admin_slack_user_ids");
        if let Target::ResponseUrl {
            replace_original, ..
        } = &mut target
        {
            *replace_original = false;
        }
        return notice(state, &click.trigger_id, FORGET_NOT_ALLOWED, &target).await;
    }
    let field = format!("payload.actions[{index}].value");
    let value = action
        .value
        .as_deref()
        .ok_or_else(|| Rejection::Malformed(format!("{field}: missing")))?;
    let value: ForgetValue = decode_value(value, &field)?;
    if value.request.trim().is_empty() {
        return Err(Rejection::Malformed(format!("{field}: no request")));
    }
    let job = ErasureJob {
        email: value.email,
        requester: requester(team, &user, channel.as_deref().unwrap_or_default()),
        reply: Some(target.reply_to()),
    };
    let key = format!("erase:{}", value.request);
    inbound::accept(state, PLATFORM, &key, new_job(state, &job)?).await?;
    Ok(Immediate::Empty)
}

/// Records a private notice to post (a refusal, "nobody to look up").
async fn notice(
    state: &AppState,
    trigger_id: &str,
    text: &str,
    target: &Target,
) -> Result<Immediate, Rejection> {
    let job = NoticeJob {
        text: text.into(),
        reply: target.reply_to(),
    };
    enqueue(state, trigger_id, &job).await?;
    Ok(Immediate::Empty)
}

async fn enqueue<J: Job>(state: &AppState, trigger_id: &str, job: &J) -> Result<(), Rejection> {
    if trigger_id.trim().is_empty() {
        return Err(Rejection::Malformed("trigger_id: empty".into()));
    }
    let key = format!("trigger:{trigger_id}");
    inbound::accept(state, PLATFORM, &key, new_job(state, job)?).await?;
    Ok(())
}

fn new_job<J: Job>(state: &AppState, job: &J) -> Result<NewJob, Rejection> {
    NewJob::of(job).map_err(|error| {
        inbound::count(state, PLATFORM, "unavailable");
        tracing::error!(error = %format!("{error:#}"), "could not build the job");
        Rejection::Unavailable
    })
}

fn ignored(state: &AppState) -> Result<Immediate, Rejection> {
    inbound::count(state, PLATFORM, "ignored");
    Ok(Immediate::Empty)
}

fn decode_value<T: serde::de::DeserializeOwned>(text: &str, field: &str) -> Result<T, Rejection> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Rejection::Malformed(format!("{field}: not JSON: {e}")))?;
    decode(value, field)
}

/// 403 unless the workspace is allowed (every workspace is, when `slack.allowed_team_ids` is empty).
/// A request whose `response_url` names a host outside `slack.response_url_hosts` is refused (403) when
/// it arrives, before anything is looked up: its answer could never be delivered (a forged payload, or
/// a host the list forgot).
fn check_response_url(state: &AppState, url: Option<&str>) -> Result<(), Rejection> {
    let Some(url) = url else {
        return Ok(());
    };
    let hosts: Vec<String> = state
        .config
        .slack
        .response_url_hosts
        .iter()
        .map(str::to_owned)
        .collect();
    super::api::response_url_allowed(url, &hosts).map_err(|reason| {
        Rejection::Forbidden(format!("the response_url cannot be answered at: {reason}"))
    })
}

fn check_team(state: &AppState, team: Option<&str>) -> Result<(), Rejection> {
    let allowed = &state.config.slack.allowed_team_ids;
    if allowed.is_empty() {
        return Ok(());
    }
    match team {
        Some(team) if allowed.allows(team) => Ok(()),
        Some(_) => Err(Rejection::Forbidden(
            "this Slack workspace is not allowed".into(),
        )),
        None => Err(Rejection::Forbidden(
            "the request names no workspace".into(),
        )),
    }
}

fn allowed(state: &AppState, user: &str, channel: Option<&str>) -> bool {
    let slack = &state.config.slack;
    slack.allowed_user_ids.allows(user)
        && (slack.allowed_channel_ids.is_empty()
            || channel.is_some_and(|c| slack.allowed_channel_ids.allows(c)))
}

/// Whether links pasted in `channel` are previewed: every channel, or those of
/// `slack.unfurl_channel_ids` when it is set (a link typed in the composer names no channel yet, so it
/// is then left alone; Slack asks again when the message is posted).
fn previewed_in(state: &AppState, channel: Option<&str>) -> bool {
    let channels = &state.config.slack.unfurl_channel_ids;
    channels.is_empty() || channel.is_some_and(|c| channels.allows(c))
}

fn requester(team: &str, user: &str, place: &str) -> Requester {
    Requester {
        platform: PLATFORM.into(),
        tenant: team.into(),
        user: user.into(),
        place: (!place.is_empty()).then(|| place.to_owned()),
    }
}
