//! The inbox app (Canvas Kit, in the Conversation Details panel): `POST /intercom/canvas/initialize`
//! answers a canvas listing the contact's sessions, `POST /intercom/canvas/submit` answers the next one
//! after a button (Summarize, Add as note, Refresh).
//!
//! Order: verify `X-Body-Signature` on the raw body (401, [`super::verify::Canvas`]) → parse (400 naming
//! the field) → the workspace (403 unless `intercom.allowed_workspace_ids` lists it, or
//! `allow_any_workspace`) → the workspace's allowance (`intercom.workspace_lookups_per_minute`, shared
//! with the notes: past it the canvas says "busy" with Refresh) → the answer.
//!
//! **Intercom's time budget.** Intercom waits about 10 s for a canvas. The lookup (and a summary) runs
//! in a task of its own and the request waits for it at most `intercom.canvas_wait` (7 s by default,
//! at most 9 s); past that the canvas says it is still looking, with a Refresh button. The task goes on
//! and fills the shared FullStory cache (one call however many ask), so Refresh a moment later answers
//! at once (on the same replica; another replica asks FullStory itself). Every lookup is audited when
//! it ends (platform `intercom`, the workspace, the admin, the conversation), whether the canvas waited
//! for it or not.
//!
//! **Whom.** The contact the panel is showing (a group conversation sends a request per contact): its
//! `email` and its `external_id` as the FullStory uid, within `identity.max_per_request`; nothing at
//! `identity.exclude_domains`.
//!
//! **Add as note** queues the webhook's own `intercom.conversation` job for that contact, so the note is
//! the one the webhook would post, through the same effect ledger and per-conversation session claims
//! (never the same session twice). Its delivery key is the conversation, the contact and the drawn
//! canvas ([`super::stored::State::drawn`]): pressing it again on one canvas queues nothing more.
//!
//! **Escalate to Linear / Jira** (issue 25; a button per tracker that is on, on the likely session of a
//! contact with an email address) queues the shared escalation job ([`crate::escalate::EscalateJob`]) for
//! that session from this conversation ([`conversation_source`]), answered on the conversation: one
//! internal note "Escalated to LIN-123" (the desks' shared note, [`crate::adapters::desk_note`]). Its
//! delivery key is the conversation, the session and the tracker, so a double click queues one job, and
//! the escalation is once per conversation and session anyway; once it is done, the button answers
//! "Already escalated: LIN-123 <link>" at once.
//!
//! `stored_data` carries replaydesk's state, signed ([`super::stored`]); a state that does not verify is
//! never acted on: the canvas starts afresh.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::State,
    response::{IntoResponse, Response},
};
use chrono::DateTime;
use serde_json::Value;

use super::{
    PLATFORM,
    conversation::{ContactId, ConversationJob},
    render::{self, Button},
    reply::Target,
    stored::{self, Likely},
    verify::Canvas,
    wire::{self, CanvasRequest},
};
use crate::{
    adapters::inbound::{self, Rejection, Verified},
    answer::{self, ReplyTo},
    app::AppState,
    escalate::{EscalateJob, Source, Tracker},
    fullstory::SessionId,
    identity::{CustomerEmail, Identity, Uid, extract_emails},
    lookup::{LookupResult, SummaryOutcome},
    privacy::Requester,
    source_limits::SourceLimits,
    store::NewJob,
};

/// The inbox app's parts, built once by the adapter.
pub struct CanvasParts {
    /// The workspaces' FullStory allowance, shared with the notes.
    pub workspaces: Arc<SourceLimits>,
}

/// `POST /intercom/canvas/initialize`.
pub async fn initialize(
    State(state): State<AppState>,
    Extension(parts): Extension<Arc<CanvasParts>>,
    request: Verified<Canvas>,
) -> Response {
    let result = match read(&state, &request.body) {
        Ok(asked) => Ok(sessions_canvas(&state, &parts, &asked, None, false).await),
        Err(refused) => Err(refused),
    };
    inbound::respond(&state, PLATFORM, result)
}

/// `POST /intercom/canvas/submit`.
pub async fn submit(
    State(state): State<AppState>,
    Extension(parts): Extension<Arc<CanvasParts>>,
    request: Verified<Canvas>,
) -> Response {
    let result = match read(&state, &request.body) {
        Ok(asked) => submitted(&state, &parts, &asked).await,
        Err(refused) => Err(refused),
    };
    inbound::respond(&state, PLATFORM, result)
}

/// The request, parsed, from a workspace that is served.
fn read(state: &AppState, body: &[u8]) -> Result<CanvasRequest, Rejection> {
    let asked = wire::canvas_request(body).map_err(Rejection::Malformed)?;
    if !state.config.intercom.allows_workspace(&asked.workspace_id) {
        return Err(Rejection::Forbidden(
            "this Intercom workspace is not in intercom.allowed_workspace_ids".into(),
        ));
    }
    inbound::count(state, PLATFORM, "immediate");
    Ok(asked)
}

async fn submitted(
    state: &AppState,
    parts: &CanvasParts,
    asked: &CanvasRequest,
) -> Result<Response, Rejection> {
    let opened = stored::open(
        asked.stored_data(),
        state.config.intercom.client_secret.iter(),
        &asked.workspace_id,
        asked.conversation_id(),
        asked.contact.as_ref().and_then(|c| c.id.as_deref()),
    );
    let button = asked.component_id.as_deref().and_then(Button::named);
    let Some(drawn) = opened else {
        tracing::info!("intercom canvas: a submit without a state we signed; starting afresh");
        return Ok(sessions_canvas(state, parts, asked, None, false).await);
    };
    Ok(match button {
        Some(Button::Summarize) => match &drawn.likely {
            Some(likely) => sessions_canvas(state, parts, asked, Some(likely), false).await,
            None => sessions_canvas(state, parts, asked, None, false).await,
        },
        Some(Button::Digest) => sessions_canvas(state, parts, asked, None, true).await,
        Some(Button::AddNote) => add_note(state, asked, &drawn).await?,
        Some(Button::Escalate(tracker)) => escalate(state, asked, &drawn, tracker).await?,
        Some(Button::Refresh) | None => sessions_canvas(state, parts, asked, None, false).await,
    })
}

/// The contact's identities: email and `external_id` (as the uid), within `identity.max_per_request`.
fn identities(state: &AppState, asked: &CanvasRequest) -> Vec<Identity> {
    let Some(contact) = &asked.contact else {
        return Vec::new();
    };
    let exclude = &state.config.identity.exclude_domains.0;
    let mut identities: Vec<Identity> = contact
        .email
        .as_deref()
        .map(|email| extract_emails(email, exclude))
        .unwrap_or_default()
        .into_iter()
        .take(1)
        .map(Identity::Email)
        .collect();
    if let Some(uid) = contact
        .external_id
        .as_deref()
        .and_then(|u| Uid::parse(u).ok())
    {
        identities.push(Identity::Uid(uid));
    }
    identities.truncate(state.config.identity.max_per_request);
    identities
}

/// The contact's email address, the customer an escalation names.
fn customer(state: &AppState, asked: &CanvasRequest) -> Option<CustomerEmail> {
    identities(state, asked)
        .into_iter()
        .find_map(|identity| match identity {
            Identity::Email(email) => Some(email),
            Identity::Uid(_) => None,
        })
}

/// Where an escalation from the inbox app comes from: the conversation, as a stable key (workspace and
/// conversation) and its inbox link (on the region's Intercom app host, from `intercom.api_url`).
pub fn conversation_source(
    config: &crate::config::IntercomConfig,
    workspace: &str,
    conversation: &str,
) -> Source {
    let app = if config.api_url.contains(".eu.") {
        "https://app.eu.intercom.com"
    } else if config.api_url.contains(".au.") {
        "https://app.au.intercom.com"
    } else {
        "https://app.intercom.com"
    };
    Source {
        key: format!("{PLATFORM}:{workspace}:conversation:{conversation}"),
        label: format!("Intercom conversation {conversation}"),
        url: Some(format!(
            "{app}/a/inbox/{workspace}/inbox/conversation/{conversation}"
        )),
    }
}

fn requester(asked: &CanvasRequest) -> Requester {
    Requester {
        platform: PLATFORM.into(),
        tenant: asked.workspace_id.clone(),
        user: asked
            .admin
            .as_ref()
            .and_then(|a| a.id.clone())
            .unwrap_or_else(|| "admin".into()),
        place: asked
            .conversation_id()
            .map(|id| format!("conversation {id} (inbox app)")),
    }
}

/// The secret the canvas's state is signed with: the first of `intercom.client_secret` (any of them
/// opens it, so a rotation keeps canvases drawn before it working).
fn signing_secret(state: &AppState) -> &str {
    state
        .config
        .intercom
        .client_secret
        .iter()
        .next()
        .unwrap_or_default()
}

fn json(canvas: Value) -> Response {
    Json(canvas).into_response()
}

/// What the canvas's task found: the sessions, and a summary when one was asked for.
struct Found {
    result: LookupResult,
    summary: Option<SummaryOutcome>,
}

/// The sessions canvas (with the summary of `summarize` above it when asked, and the digest when
/// `digest` was asked for), or the canvas saying why not (nobody to look up, busy, FullStory failing,
/// still looking).
async fn sessions_canvas(
    state: &AppState,
    parts: &CanvasParts,
    asked: &CanvasRequest,
    summarize: Option<&Likely>,
    digest: bool,
) -> Response {
    let secret = signing_secret(state);
    let around = asked.conversation.as_ref().and_then(|c| c.created_at);
    let mut drawn = stored::State {
        v: 1,
        workspace: asked.workspace_id.clone(),
        conversation: asked.conversation_id().map(str::to_owned),
        contact: asked.contact.as_ref().and_then(|c| c.id.clone()),
        likely: None,
        around,
        drawn: state.clock.now().timestamp_millis(),
    };
    let identities = identities(state, asked);
    if identities.is_empty() {
        return json(render::message(
            "This contact has no email address or external id to look up replays for.",
            "muted",
            &[],
            &stored::seal(&drawn, secret),
        ));
    }
    if let Some(after) = parts
        .workspaces
        .delay(PLATFORM, &asked.workspace_id, identities.len())
    {
        inbound::count(state, PLATFORM, "rate_limited");
        return json(render::message(
            &format!(
                "replaydesk is answering many requests from this workspace; press Refresh in {} s.",
                after.as_secs().max(1)
            ),
            "muted",
            &[Button::Refresh],
            &stored::seal(&drawn, secret),
        ));
    }
    let task = tokio::spawn(look_up(
        state.clone(),
        identities,
        around,
        requester(asked),
        summarize.cloned(),
        digest,
    ));
    let wait = state.config.intercom.canvas_wait.0;
    let found = match tokio::time::timeout(wait, task).await {
        Ok(Ok(Ok(found))) => found,
        Ok(Ok(Err(error))) => {
            return json(render::message(
                &answer::user_message(&error),
                "error",
                &[Button::Refresh],
                &stored::seal(&drawn, secret),
            ));
        }
        Ok(Err(join)) => {
            tracing::error!(%join, "intercom canvas: the lookup task failed");
            return json(render::message(
                "replaydesk could not answer this time. Press Refresh to try again.",
                "error",
                &[Button::Refresh],
                &stored::seal(&drawn, secret),
            ));
        }
        Err(_) => {
            tracing::info!(
                wait_ms = wait.as_millis(),
                "intercom canvas: still looking; answered loading"
            );
            return json(render::message(
                "Loading: replaydesk is still looking up this contact's replays. Press Refresh in a moment.",
                "muted",
                &[Button::Refresh],
                &stored::seal(&drawn, secret),
            ));
        }
    };
    let likely = found
        .result
        .identities
        .iter()
        .find_map(|g| g.likely())
        .map(|s| Likely {
            id: s.id.as_str().to_owned(),
            url: render::MAX_URL_BYTES
                .ge(&s.url.len())
                .then(|| s.url.clone()),
        });
    drawn.likely = likely;
    let mut buttons = Vec::new();
    if drawn.likely.is_some() && state.config.fullstory.summary_profile.is_some() {
        buttons.push(Button::Summarize);
    }
    // With `fullstory.digest = "on_request"`, the digest is the admin's to ask for.
    let undigested = found
        .result
        .identities
        .iter()
        .any(|g| g.likely().is_some() && crate::render::digest_line(g).is_none());
    if undigested && state.config.fullstory.digest == crate::config::DigestMode::OnRequest {
        buttons.push(Button::Digest);
    }
    // Escalating needs the likely session, the conversation to answer on and a customer address.
    if drawn.likely.is_some() && drawn.conversation.is_some() && customer(state, asked).is_some() {
        buttons.extend(Tracker::on(&state.config).into_iter().map(Button::Escalate));
    }
    if drawn.conversation.is_some() {
        buttons.push(Button::AddNote);
    }
    let sealed = stored::seal(&drawn, secret);
    json(match &found.summary {
        Some(summary) => render::with_summary(&found.result, summary, &buttons, &sealed),
        None => render::sessions(&found.result, &buttons, &sealed),
    })
}

/// The lookup (and the summary of `summarize`), audited when it ends: run in a task of its own so a
/// canvas that stopped waiting does not stop it.
async fn look_up(
    state: AppState,
    identities: Vec<Identity>,
    around: Option<i64>,
    requester: Requester,
    summarize: Option<Likely>,
    digest: bool,
) -> Result<Found, crate::fullstory::FullStoryError> {
    let mut request = state.lookup_request(identities.clone());
    if digest && state.config.fullstory.digest.answers_asks() {
        // The admin clicked Digest: spent from the Activations kept for requests.
        request.digest = true;
        request.asked.digest = true;
    }
    let around = around.and_then(|s| DateTime::from_timestamp(s, 0));
    request.around = around;
    let result = state.lookup.run(&request).await;
    state
        .auditor
        .record(
            state.clock.now(),
            "canvas.sessions",
            &requester,
            &identities,
            result.as_ref().map_or(0, LookupResult::session_count),
            Some("intercom inbox app".into()),
        )
        .await;
    let result = result?;
    let summary = match summarize {
        None => None,
        Some(likely) => {
            // Only a session of this contact's: the state named it, the lookup must have found it.
            let session = result
                .identities
                .iter()
                .flat_map(|g| &g.sessions)
                .find(|s| s.id.as_str() == likely.id)
                .map(|s| (s.id.clone(), s.created));
            match session {
                Some((id, created)) => {
                    let end = around.filter(|around| *around > created);
                    // The admin clicked Summarize: spent from the Activations kept for requests.
                    let outcome = state
                        .lookup
                        .summarize(&id, end, crate::activations::Purpose::OnRequest)
                        .await?;
                    state
                        .auditor
                        .record(
                            state.clock.now(),
                            "canvas.summary",
                            &requester,
                            &identities,
                            1,
                            Some(format!("session {id}")),
                        )
                        .await;
                    Some(outcome)
                }
                None => Some(SummaryOutcome::Unavailable(
                    "that session is no longer among this contact's recent sessions".into(),
                )),
            }
        }
    };
    Ok(Found { result, summary })
}

/// "Add as note": the webhook's job for this contact, queued once per drawn canvas.
async fn add_note(
    state: &AppState,
    asked: &CanvasRequest,
    drawn: &stored::State,
) -> Result<Response, Rejection> {
    let secret = signing_secret(state);
    let Some(conversation) = drawn.conversation.clone() else {
        return Err(Rejection::Malformed(
            "context.conversation_id: the app is not beside a conversation".into(),
        ));
    };
    let contact = asked.contact.as_ref().and_then(|c| {
        Some(ContactId {
            id: c.id.clone()?,
            external_id: c.external_id.clone(),
        })
    });
    let job = ConversationJob {
        workspace_id: asked.workspace_id.clone(),
        conversation_id: conversation.clone(),
        contacts: contact.into_iter().collect(),
        named: Vec::new(),
        created_at: drawn.around,
        asked_by: Some(requester(asked).user),
    };
    let new_job = NewJob::of(&job).map_err(|_| Rejection::Unavailable)?;
    let key = format!(
        "canvas-note:{conversation}:{}:{}",
        drawn.contact.as_deref().unwrap_or("-"),
        drawn.drawn
    );
    let accepted = inbound::accept(state, PLATFORM, &key, new_job).await?;
    tracing::info!(?accepted, "intercom canvas: note queued");
    let mut again = drawn.clone();
    again.drawn = state.clock.now().timestamp_millis();
    Ok(json(render::message(
        "The note is on its way to this conversation (only sessions it does not show yet).",
        "paragraph",
        &[Button::Refresh],
        &stored::seal(&again, secret),
    )))
}

/// "Escalate to Linear / Jira": the canvas's likely session escalated from this conversation (see the
/// module docs). What the canvas answers: queued, already escalated, or why not.
async fn escalate(
    state: &AppState,
    asked: &CanvasRequest,
    drawn: &stored::State,
    tracker: Tracker,
) -> Result<Response, Rejection> {
    let secret = signing_secret(state);
    let say = |words: &str, style: &str| {
        json(render::message(
            words,
            style,
            &[Button::Refresh],
            &stored::seal(drawn, secret),
        ))
    };
    let (Some(conversation), Some(session)) = (
        drawn.conversation.as_deref(),
        drawn
            .likely
            .as_ref()
            .and_then(|likely| SessionId::new(&likely.id)),
    ) else {
        return Ok(say(
            "Nothing to escalate here: no likely session beside a conversation.",
            "muted",
        ));
    };
    if !tracker.enabled(&state.config) {
        return Ok(say(
            &format!("{tracker} is not configured on replaydesk any more. Press Refresh."),
            "error",
        ));
    }
    let Some(customer) = customer(state, asked) else {
        return Ok(say(
            "This contact has no email address to escalate with.",
            "muted",
        ));
    };
    let source = conversation_source(&state.config.intercom, &asked.workspace_id, conversation);
    if let Some((key, url)) = crate::escalate::already(&state.store, &source, &session).await {
        return Ok(say(&format!("Already escalated: {key} {url}"), "paragraph"));
    }
    let mut job = EscalateJob::new(
        customer,
        tracker,
        source,
        Some(session.clone()),
        requester(asked),
    );
    job.around = drawn.around.and_then(|s| DateTime::from_timestamp(s, 0));
    job.reply = Some(ReplyTo::new(&Target {
        conversation_id: conversation.to_owned(),
    }));
    let new_job = NewJob::of(&job).map_err(|_| Rejection::Unavailable)?;
    let key = format!(
        "canvas-escalate:{conversation}:{}:{}",
        session.as_str(),
        tracker.as_str()
    );
    let accepted = inbound::accept(state, PLATFORM, &key, new_job).await?;
    tracing::info!(?accepted, %tracker, "intercom canvas: escalation queued");
    Ok(say(
        &format!(
            "Escalation to {tracker} queued: the note with the issue follows on this conversation."
        ),
        "paragraph",
    ))
}
