//! The parts of a Discord interaction replaydesk reads, and what the person is asking for.
//!
//! Interactions are read with small serde structs of our own, built from serenity's id, permission and
//! type models, rather than serenity's whole `Interaction`: serenity 0.12's `CommandInteraction` requires
//! every field Discord sends today (`entitlements`, `locale`, `attachment_size_limit`, whole `Message`s in
//! `resolved`, …), so a change on Discord's side to a field we never read would turn every request into a
//! 400, and its hand-written `Deserialize` hides which field failed. Ours read only what we use, and
//! `serde_path_to_error` names the field that failed (without echoing its value, which may be an email).
//!
//! What we understand:
//! - type 1 PING;
//! - type 2 APPLICATION_COMMAND: `data.type` 1 CHAT_INPUT `/replays` with the options `email` (one or
//!   several addresses), `uid` and `summary`; `data.type` 3 MESSAGE ("Find replays"): the target message
//!   is `data.resolved.messages[data.target_id]` (a map id → message), its emails are looked up around its
//!   timestamp;
//! - type 3 MESSAGE_COMPONENT: our Summarize button, whose `custom_id` carries the session and the moment
//!   ([`super::render::summarize_id`]).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serenity::model::{
    Permissions,
    application::{CommandType, InteractionType},
    id::{ApplicationId, ChannelId, GuildId, InteractionId, MessageId, RoleId, UserId},
};

use super::render;
use crate::{
    fullstory::SessionId,
    identity::{Identity, Uid, extract_emails, parse_query},
};

/// The name of the slash command.
pub const COMMAND: &str = "replays";
/// The name of the message command (shown under Apps when right-clicking a message).
pub const MESSAGE_COMMAND: &str = "Find replays";

/// What is needed to check the tenant before reading the rest.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub application_id: ApplicationId,
    pub guild_id: Option<GuildId>,
}

/// One interaction, as far as replaydesk reads it.
#[derive(Debug, Deserialize)]
pub struct Interaction {
    pub id: InteractionId,
    pub application_id: ApplicationId,
    #[serde(rename = "type")]
    pub kind: InteractionType,
    /// Lets us edit our answer for 15 minutes.
    pub token: Option<String>,
    pub guild_id: Option<GuildId>,
    pub channel_id: Option<ChannelId>,
    /// The invoking member, in a guild.
    pub member: Option<Member>,
    /// The invoking user, in a DM.
    pub user: Option<User>,
    pub data: Option<Data>,
    /// The message a component sits on (read leniently: only for the replay link beside a summary).
    pub message: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Member {
    pub user: Option<User>,
    #[serde(default)]
    pub roles: Vec<RoleId>,
    /// The member's permissions in the channel, overwrites included.
    pub permissions: Option<Permissions>,
}

#[derive(Debug, Deserialize)]
pub struct User {
    pub id: UserId,
}

#[derive(Debug, Default, Deserialize)]
pub struct Data {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<CommandType>,
    #[serde(default)]
    pub options: Vec<CommandOption>,
    pub target_id: Option<MessageId>,
    #[serde(default)]
    pub resolved: Resolved,
    pub custom_id: Option<String>,
    /// A submitted modal's rows of inputs.
    #[serde(default)]
    pub components: Vec<ModalRow>,
}

/// A row of a submitted modal.
#[derive(Debug, Default, Deserialize)]
pub struct ModalRow {
    #[serde(default)]
    pub components: Vec<ModalInput>,
}

/// One input of a submitted modal.
#[derive(Debug, Default, Deserialize)]
pub struct ModalInput {
    #[serde(default)]
    pub custom_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CommandOption {
    pub name: String,
    #[serde(default)]
    pub value: serde_json::Value,
}

#[derive(Debug, Default, Deserialize)]
pub struct Resolved {
    #[serde(default)]
    pub messages: HashMap<MessageId, ResolvedMessage>,
}

#[derive(Debug, Deserialize)]
pub struct ResolvedMessage {
    #[serde(default)]
    pub content: String,
    pub timestamp: DateTime<Utc>,
}

/// What the person asked for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    Ping,
    Lookup {
        identities: Vec<Identity>,
        around: Option<DateTime<Utc>>,
        summary: bool,
        /// The moderator asked for the digest (`digest:true`): fetched even with
        /// `fullstory.digest = "on_request"`, from the Activations kept for requests.
        digest: bool,
    },
    Summarize {
        session: SessionId,
        around: Option<DateTime<Utc>>,
        url: Option<String>,
    },
    /// Nothing to look up: answer at once with this (ephemeral) text.
    Explain(String),
    /// An Escalate button: answer with its modal.
    EscalateForm(render::EscalateOrigin),
    /// The Escalate modal, submitted: escalate, answering later.
    Escalate {
        origin: render::EscalateOrigin,
        title: Option<String>,
        note: Option<String>,
        issue: Option<String>,
    },
}

pub fn envelope(body: &[u8]) -> Result<Envelope, String> {
    crate::adapters::inbound::read_json(body)
}

pub fn parse(body: &[u8]) -> Result<Interaction, String> {
    crate::adapters::inbound::read_json(body)
}

impl Interaction {
    /// The invoking member; `None` in a DM.
    pub fn member(&self) -> Option<&Member> {
        self.member.as_ref()
    }

    /// Who clicked or typed, in a guild or a DM.
    pub fn user_id(&self) -> Option<UserId> {
        self.member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())
            .map(|u| u.id)
    }

    /// What is asked for. `Err` says which part is not something replaydesk offers (answered 400).
    pub fn intent(&self, exclude_domains: &[String]) -> Result<Intent, String> {
        let data = || self.data.as_ref().ok_or("data: missing field `data`");
        match self.kind {
            InteractionType::Ping => Ok(Intent::Ping),
            InteractionType::Command => {
                let data = data()?;
                match data.kind.unwrap_or(CommandType::ChatInput) {
                    CommandType::ChatInput if data.name.as_deref() == Some(COMMAND) => {
                        Ok(slash_command(data, exclude_domains))
                    }
                    CommandType::Message => message_command(data, exclude_domains),
                    _ => Err("data.name: not a replaydesk command".into()),
                }
            }
            InteractionType::Component
                if data()?
                    .custom_id
                    .as_deref()
                    .and_then(render::parse_escalate_id)
                    .is_some() =>
            {
                let custom_id = data()?.custom_id.as_deref().unwrap_or_default();
                let origin = render::parse_escalate_id(custom_id)
                    .ok_or("data.custom_id: not a replaydesk button")?;
                Ok(Intent::EscalateForm(origin))
            }
            InteractionType::Modal => {
                let data = data()?;
                let origin = data
                    .custom_id
                    .as_deref()
                    .and_then(render::parse_escalate_id)
                    .ok_or("data.custom_id: not a replaydesk modal")?;
                let input = |name: &str| {
                    data.components
                        .iter()
                        .flat_map(|row| &row.components)
                        .find(|input| input.custom_id == name)
                        .and_then(|input| input.value.as_deref())
                        .map(str::trim)
                        .filter(|v| !v.is_empty())
                        .map(str::to_owned)
                };
                Ok(Intent::Escalate {
                    origin,
                    title: input("title"),
                    note: input("note"),
                    issue: input("issue"),
                })
            }
            InteractionType::Component => {
                let custom_id = data()?.custom_id.as_deref().unwrap_or_default();
                let (session, around) = render::parse_summarize_id(custom_id)
                    .ok_or("data.custom_id: not a replaydesk button")?;
                let url = self
                    .message
                    .as_ref()
                    .and_then(|message| replay_link(message, &session));
                Ok(Intent::Summarize {
                    session,
                    around,
                    url,
                })
            }
            _ => Err("type: not an interaction replaydesk handles".into()),
        }
    }
}

/// `/replays email:… uid:… summary:…`.
fn slash_command(data: &Data, exclude_domains: &[String]) -> Intent {
    let option = |name: &str| data.options.iter().find(|o| o.name == name);
    let mut identities = option("email")
        .and_then(|o| o.value.as_str())
        .map(|text| parse_query(text, exclude_domains).identities)
        .unwrap_or_default();
    if let Some(uid) = option("uid").and_then(|o| o.value.as_str()) {
        match Uid::parse(uid) {
            Ok(uid) => identities.push(Identity::Uid(uid)),
            Err(error) => return Intent::Explain(format!("{error}. {}", render::usage())),
        }
    }
    identities.dedup();
    if identities.is_empty() {
        return Intent::Explain(render::usage());
    }
    Intent::Lookup {
        identities,
        around: None,
        summary: option("summary").and_then(|o| o.value.as_bool()) == Some(true),
        digest: option("digest").and_then(|o| o.value.as_bool()) == Some(true),
    }
}

/// "Find replays" on a message: its emails, around its time.
fn message_command(data: &Data, exclude_domains: &[String]) -> Result<Intent, String> {
    let target = data.target_id.ok_or("data: missing field `target_id`")?;
    let message = data
        .resolved
        .messages
        .get(&target)
        .ok_or("data.resolved.messages: the target message is missing")?;
    let identities: Vec<Identity> = extract_emails(&message.content, exclude_domains)
        .into_iter()
        .map(Identity::Email)
        .collect();
    if identities.is_empty() {
        return Ok(Intent::Explain(crate::render::NO_IDENTITIES.into()));
    }
    Ok(Intent::Lookup {
        identities,
        around: Some(message.timestamp),
        summary: false,
        digest: false,
    })
}

/// The link button on our own message that opens `session`'s replay.
fn replay_link(message: &serde_json::Value, session: &SessionId) -> Option<String> {
    let rows = message.get("components")?.as_array()?;
    rows.iter()
        .filter_map(|row| row.get("components")?.as_array())
        .flatten()
        .filter_map(|component| component.get("url")?.as_str())
        .find(|url| url.contains(session.as_str()) || url.contains(&session.path_segment()))
        .map(str::to_owned)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn intent(body: serde_json::Value) -> Result<Intent, String> {
        parse(body.to_string().as_bytes())?.intent(&["ourco.com".to_owned()])
    }

    fn command(data: serde_json::Value) -> serde_json::Value {
        json!({"id": "1", "application_id": "2", "type": 2, "token": "t", "guild_id": "3", "data": data})
    }

    fn email(text: &str) -> Identity {
        Identity::Email(crate::identity::CustomerEmail::parse(text).unwrap())
    }

    #[test]
    fn the_slash_command_reads_its_options() {
        let got = intent(command(json!({"name": "replays", "type": 1, "options": [
            {"name": "email", "type": 3, "value": "Jane@Acme.com, bob@ourco.com"},
            {"name": "uid", "type": 3, "value": "12345"},
            {"name": "summary", "type": 5, "value": true}
        ]})))
        .unwrap();
        assert_eq!(
            got,
            Intent::Lookup {
                identities: vec![
                    email("jane@acme.com"),
                    Identity::Uid(Uid::parse("12345").unwrap())
                ],
                around: None,
                summary: true,
                digest: false,
            }
        );
    }

    #[test]
    fn a_slash_command_with_nothing_to_look_up_is_explained() {
        let got = intent(command(json!({"name": "replays", "type": 1}))).unwrap();
        assert_eq!(got, Intent::Explain(render::usage()));
        let got = intent(command(json!({"name": "replays", "options": [
            {"name": "email", "type": 3, "value": "not an address"}
        ]})))
        .unwrap();
        assert_eq!(got, Intent::Explain(render::usage()));
    }

    #[test]
    fn the_message_command_reads_the_target_from_the_resolved_map() {
        let got = intent(command(json!({"name": "Find replays", "type": 3, "target_id": "77",
            "resolved": {"messages": {
                "76": {"id": "76", "content": "other@acme.com", "timestamp": "2026-11-20T10:00:00+00:00"},
                "77": {"id": "77", "content": "Hi, I am jane@acme.com and the pay button is dead",
                       "timestamp": "2026-11-20T14:05:00.123000+00:00"}
            }}})))
        .unwrap();
        assert_eq!(
            got,
            Intent::Lookup {
                identities: vec![email("jane@acme.com")],
                around: Some("2026-11-20T14:05:00.123Z".parse().unwrap()),
                summary: false,
                digest: false,
            }
        );
    }

    #[test]
    fn a_message_without_an_email_is_explained_and_a_missing_target_is_malformed() {
        let got = intent(command(json!({"name": "Find replays", "type": 3, "target_id": "77",
            "resolved": {"messages": {"77": {"content": "help!", "timestamp": "2026-11-20T14:05:00Z"}}}})))
        .unwrap();
        assert_eq!(got, Intent::Explain(crate::render::NO_IDENTITIES.into()));
        let err = intent(command(
            json!({"name": "Find replays", "type": 3, "target_id": "77"}),
        ))
        .unwrap_err();
        assert!(err.starts_with("data.resolved.messages"), "{err}");
    }

    #[test]
    fn the_summarize_button_carries_session_moment_and_finds_its_link() {
        let session = SessionId::new("5191865402245120:4000000000000003").unwrap();
        let around = Some("2026-11-20T14:05:00Z".parse().unwrap());
        let custom_id = render::summarize_id(&session, around).unwrap();
        let got = intent(json!({"id": "1", "application_id": "2", "type": 3, "token": "t",
            "data": {"custom_id": custom_id, "component_type": 2},
            "message": {"components": [{"type": 1, "components": [
                {"type": 2, "style": 5, "url": "https://app.fullstory.com/ui/o/session/5191865402245120:4000000000000003"}
            ]}]}}))
        .unwrap();
        assert_eq!(
            got,
            Intent::Summarize {
                session,
                around,
                url: Some(
                    "https://app.fullstory.com/ui/o/session/5191865402245120:4000000000000003"
                        .into()
                ),
            }
        );
    }

    #[test]
    fn a_bad_field_is_named_without_its_value() {
        let err = parse(
            br#"{"id":"1","application_id":"2","type":2,"member":{"permissions":"jane@acme.com"}}"#,
        )
        .unwrap_err();
        assert_eq!(err, "member.permissions: invalid value");
        let err = parse(br#"{"application_id":"2","type":1}"#).unwrap_err();
        assert_eq!(err, "missing field `id`");
        let err = parse(b"{not json").unwrap_err();
        assert_eq!(err, "the body is not valid JSON");
        let err =
            intent(json!({"id": "1", "application_id": "2", "type": 4, "data": {}})).unwrap_err();
        assert!(err.starts_with("type:"), "{err}");
    }
}
