//! `POST /discord/interactions`: Discord's interactions endpoint.
//!
//! Order: verify the Ed25519 signature on the raw body with our clock (401 for every failure, as Discord
//! requires) → check the tenant: `application_id` must be ours and the guild allowed (403) → parse (400
//! naming the field) → PING is answered PONG → the invoker's permissions are checked (a polite ephemeral
//! refusal, nothing enqueued) → what was asked becomes a platform-neutral job, stored durably with the
//! interaction id as delivery key ([`inbound::accept`]) → answered within Discord's 3 seconds with type 5
//! (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE) and flags 64 (ephemeral). A repeated interaction id is answered
//! the same way and adds no job. Requests that need no lookup (how to use the command, no email in the
//! message) are answered at once (type 4, ephemeral).
//!
//! A Summarize button press is answered the same way as a command, with a new deferred ephemeral
//! message rather than DEFERRED_UPDATE_MESSAGE: the summary then arrives under the list of sessions
//! instead of replacing it.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serenity::interactions_endpoint::Verifier;

use super::{
    Discord, PLATFORM,
    permissions::Gate,
    render,
    reply::Target,
    wire::{self, Intent, Interaction},
};
use crate::{
    adapters::inbound::{self, Rejection, Verified},
    answer::{LookupJob, ReplyTo, SummaryJob},
    app::AppState,
    privacy::Requester,
    store::NewJob,
};

/// What the endpoint needs beyond the app state, built once from `[discord]`.
pub struct Endpoint {
    pub application_id: String,
    pub verifier: Verifier,
    pub gate: Gate,
    pub allowed_guild_ids: crate::config::List,
    /// `discord.allow_any_guild`: every guild, and direct messages.
    pub allow_any_guild: bool,
}

impl Endpoint {
    /// Whether interactions from `guild` are served: a listed guild, or any with
    /// `discord.allow_any_guild`. Closed by default. A direct message (no guild) passes here and is
    /// refused politely by the permission gate (there is no member to hold a permission).
    fn serves(&self, guild: Option<serenity::model::id::GuildId>) -> bool {
        let Some(guild) = guild else {
            return true;
        };
        self.allow_any_guild
            || self
                .allowed_guild_ids
                .iter()
                .any(|allowed| allowed == guild.to_string())
    }
}

pub async fn interactions(
    State(state): State<AppState>,
    Extension(endpoint): Extension<Arc<Endpoint>>,
    request: Verified<Discord>,
) -> Response {
    let result = receive(&state, &endpoint, &request.body).await;
    inbound::respond(&state, PLATFORM, result)
}

/// A signed interaction: the application and guild, what was asked, the member's permissions, then
/// the job, durably.
async fn receive(
    state: &AppState,
    endpoint: &Endpoint,
    body: &[u8],
) -> Result<Response, Rejection> {
    let envelope = wire::envelope(body).map_err(Rejection::Malformed)?;
    if envelope.application_id.to_string() != endpoint.application_id {
        return Err(Rejection::Forbidden(
            "the interaction is for another application".into(),
        ));
    }
    let interaction = wire::parse(body).map_err(Rejection::Malformed)?;
    let exclude = &state.config.identity.exclude_domains.0;
    let intent = interaction.intent(exclude).map_err(Rejection::Malformed)?;
    if intent == Intent::Ping {
        inbound::count(state, PLATFORM, "immediate");
        return Ok(Json(render::pong()).into_response());
    }
    // After the PING (Discord's own endpoint check carries no guild), before anything else.
    if !endpoint.serves(envelope.guild_id) {
        return Err(Rejection::Forbidden(
            "this guild is not in discord.allowed_guild_ids".into(),
        ));
    }
    if !endpoint.gate.allows(interaction.member()) {
        inbound::count(state, PLATFORM, "not_permitted");
        tracing::info!(
            platform = PLATFORM,
            user = ?interaction.user_id(),
            guild = ?interaction.guild_id,
            "refused: the member lacks the required permissions or roles"
        );
        return Ok(Json(render::ephemeral(crate::render::NOT_ALLOWED)).into_response());
    }
    if let Intent::Explain(text) = &intent {
        inbound::count(state, PLATFORM, "immediate");
        return Ok(Json(render::ephemeral(text)).into_response());
    }
    // An Escalate button: its modal is the answer (nothing to store until it is submitted).
    if let Intent::EscalateForm(origin) = &intent {
        inbound::count(state, PLATFORM, "immediate");
        let custom_id = render::escalate_id(origin).unwrap_or_default();
        return Ok(Json(render::escalate_modal(origin, &custom_id)).into_response());
    }
    let guild = interaction
        .guild_id
        .map(|g| g.to_string())
        .unwrap_or_default();
    let asked = match &intent {
        Intent::Lookup { identities, .. } => identities.len(),
        _ => 1,
    };
    if !inbound::within_source_limit(state, PLATFORM, &guild, asked) {
        return Ok(Json(render::ephemeral(crate::source_limits::OVER_LIMIT)).into_response());
    }
    let job = match intent {
        Intent::Escalate {
            origin,
            title,
            note,
            issue,
        } => {
            let asked = Asked { title, note, issue };
            match escalation(state, &interaction, &origin, asked).await? {
                Ok(job) => job,
                Err(refusal) => return Ok(Json(render::ephemeral(&refusal)).into_response()),
            }
        }
        intent => to_job(&interaction, intent)?,
    };
    inbound::accept(state, PLATFORM, &interaction.id.to_string(), job).await?;
    Ok(Json(render::deferred()).into_response())
}

/// What the Escalate modal said.
struct Asked {
    title: Option<String>,
    note: Option<String>,
    issue: Option<String>,
}

/// The escalation a submitted Escalate modal asks for: the customer read from the lookup job whose
/// answer carried the button, only for the member who asked it in this guild; `Err` with what to
/// tell them otherwise (the answer gone, someone else's, or the tracker off).
async fn escalation(
    state: &AppState,
    interaction: &Interaction,
    origin: &render::EscalateOrigin,
    asked: Asked,
) -> Result<Result<NewJob, String>, Rejection> {
    let guild = interaction
        .guild_id
        .map(|g| g.to_string())
        .unwrap_or_default();
    let user = interaction
        .user_id()
        .map(|u| u.to_string())
        .unwrap_or_default();
    if !origin.tracker.enabled(&state.config) {
        return Ok(Err(format!("{} is not configured here.", origin.tracker)));
    }
    let stored = state.app.store.get_job(origin.job).await.map_err(|error| {
        tracing::warn!(%error, job = origin.job, "could not read the escalated answer's job");
        Rejection::Unavailable
    })?;
    let lookup = stored
        .filter(|job| job.kind == <LookupJob as crate::queue::Job>::KIND)
        .and_then(|job| serde_json::from_value::<LookupJob>(job.payload).ok())
        .filter(|l| {
            l.requester.platform == PLATFORM
                && l.requester.tenant == guild
                && l.requester.user == user
        });
    let Some(customer) = lookup
        .as_ref()
        .and_then(|l| l.identities.iter().find_map(|i| i.as_email()).cloned())
    else {
        return Ok(Err(
            "This answer is gone (or is someone else's): look the customer up again.".into(),
        ));
    };
    let channel = interaction
        .channel_id
        .map(|c| c.to_string())
        .unwrap_or_default();
    let source = crate::escalate::Source {
        key: format!("{PLATFORM}:{guild}:{channel}:answer:{}", origin.job),
        label: format!("a Discord answer in channel {channel}"),
        url: None,
    };
    let requester = Requester {
        platform: PLATFORM.into(),
        tenant: guild,
        user,
        place: Some(channel),
    };
    let mut job = crate::escalate::EscalateJob::new(
        customer,
        origin.tracker,
        source,
        Some(origin.session.clone()),
        requester,
    );
    job.around = lookup.and_then(|l| l.around);
    job.title = asked.title;
    job.note = asked.note;
    job.existing = asked.issue;
    job.reply = Some(ReplyTo::new(&Target {
        application_id: interaction.application_id.to_string(),
        token: interaction
            .token
            .clone()
            .ok_or_else(|| Rejection::Malformed("missing field `token`".into()))?,
        interaction_id: interaction.id.to_string(),
    }));
    Ok(NewJob::of(&job).map_err(|error| {
        tracing::error!(error = %format!("{error:#}"), "could not build the job");
        "replaydesk could not record the escalation.".to_owned()
    }))
}

/// The job a lookup or a Summarize press asks for.
fn to_job(interaction: &Interaction, intent: Intent) -> Result<NewJob, Rejection> {
    let token = interaction
        .token
        .clone()
        .ok_or_else(|| Rejection::Malformed("missing field `token`".into()))?;
    let requester = Requester {
        platform: PLATFORM.into(),
        tenant: interaction
            .guild_id
            .map(|g| g.to_string())
            .unwrap_or_default(),
        user: interaction
            .user_id()
            .map(|u| u.to_string())
            .unwrap_or_default(),
        place: interaction.channel_id.map(|c| c.to_string()),
    };
    let target = Target {
        application_id: interaction.application_id.to_string(),
        token,
        interaction_id: interaction.id.to_string(),
    };
    let reply = ReplyTo::new(&target);
    let job = match intent {
        Intent::Lookup {
            identities,
            around,
            summary,
            digest,
        } => NewJob::of(&LookupJob {
            identities,
            around,
            summary,
            digest: digest.then_some(true),
            requester,
            reply,
        }),
        Intent::Summarize {
            session,
            around,
            url,
        } => NewJob::of(&SummaryJob {
            session,
            url,
            around,
            requester,
            reply,
        }),
        Intent::Ping | Intent::Explain(_) | Intent::EscalateForm(_) | Intent::Escalate { .. } => {
            return Err(Rejection::Malformed("nothing to look up".into()));
        }
    };
    job.map_err(|error| {
        tracing::error!(error = %format!("{error:#}"), "could not build the job");
        Rejection::Unavailable
    })
}
