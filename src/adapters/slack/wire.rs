//! The parts of Slack's inbound payloads replaydesk reads, as serde models of our own.
//!
//! Why not slack-morphism's event models: they model every field Slack documents and are strict about
//! some (a `SlackHistoryMessage` inside every shortcut, flattened message content in `app_mention`), so a
//! field Slack adds or reshapes could turn a good request into a 400, and flattening loses the field path
//! a 400 should name. These models hold only what we use, ignore the rest, and are decoded with
//! `serde_path_to_error` so a malformed payload is refused naming its field (`payload.message.ts`).
//! The same models read HTTP requests and Socket Mode envelopes (whose payloads are the same JSON; a
//! slash command's form fields become a JSON object of strings).

use serde::{Deserialize, de::DeserializeOwned};
use serde_json::Value;

use crate::adapters::inbound::Rejection;

/// A slash command (`/replays …`).
#[derive(Debug, Deserialize)]
pub struct SlashCommand {
    pub team_id: String,
    pub channel_id: String,
    pub user_id: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub text: String,
    pub response_url: String,
    pub trigger_id: String,
}

#[derive(Debug, Deserialize)]
pub struct Id {
    pub id: String,
}

/// A message shortcut (`type: message_action`).
#[derive(Debug, Deserialize)]
pub struct MessageAction {
    pub callback_id: String,
    pub trigger_id: String,
    pub response_url: String,
    pub user: Id,
    pub channel: Id,
    pub message: ShortcutMessage,
}

#[derive(Debug, Deserialize)]
pub struct ShortcutMessage {
    #[serde(default)]
    pub text: String,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
}

/// A button click (`type: block_actions`).
#[derive(Debug, Deserialize)]
pub struct BlockActions {
    pub trigger_id: String,
    #[serde(default)]
    pub response_url: Option<String>,
    pub user: Id,
    #[serde(default)]
    pub channel: Option<Id>,
    #[serde(default)]
    pub container: Container,
    #[serde(default)]
    pub message: Option<ActionMessage>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Container {
    #[serde(default)]
    pub channel_id: Option<String>,
    #[serde(default)]
    pub message_ts: Option<String>,
    #[serde(default)]
    pub thread_ts: Option<String>,
    #[serde(default)]
    pub is_ephemeral: bool,
}

#[derive(Debug, Deserialize)]
pub struct ActionMessage {
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Action {
    pub action_id: String,
    #[serde(default)]
    pub value: Option<String>,
}

/// An Events API `event_callback` envelope; `event` is read according to its `type`.
#[derive(Debug, Deserialize)]
pub struct EventCallback {
    pub team_id: String,
    pub event_id: String,
    pub event: Value,
}

/// An `app_mention` event.
#[derive(Debug, Deserialize)]
pub struct AppMention {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub bot_id: Option<String>,
    #[serde(default)]
    pub text: String,
    pub ts: String,
    #[serde(default)]
    pub thread_ts: Option<String>,
    pub channel: String,
}

/// Decodes `value` as `T`, or refuses with 400 naming the field under `root` (`payload.message.ts`).
pub fn decode<T: DeserializeOwned>(value: Value, root: &str) -> Result<T, Rejection> {
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            root.to_owned()
        } else {
            format!("{root}.{path}")
        };
        Rejection::Malformed(format!("{field}: {}", error.inner()))
    })
}

/// An interactivity payload, by its `type`.
#[derive(Debug)]
pub enum Interaction {
    /// A message shortcut (`message_action`).
    Shortcut(MessageAction),
    /// A button click (`block_actions`).
    Buttons(BlockActions),
    /// A modal submitted (`view_submission`), read by the modal's own module.
    Submission(Value),
    /// A type replaydesk does not handle (a global shortcut, a view submission, …).
    Other,
}

/// Decodes an interactivity payload according to its `type`.
pub fn interaction(payload: Value) -> Result<Interaction, Rejection> {
    match str_at(&payload, "/type") {
        Some("message_action") => Ok(Interaction::Shortcut(decode(payload, "payload")?)),
        Some("block_actions") => Ok(Interaction::Buttons(decode(payload, "payload")?)),
        Some("view_submission") => Ok(Interaction::Submission(payload)),
        Some(_) => Ok(Interaction::Other),
        None => Err(Rejection::Malformed("payload.type: missing".into())),
    }
}

/// An Events API body, by its `type`.
#[derive(Debug)]
pub enum Event {
    /// `url_verification`: answer with the challenge.
    Challenge(String),
    /// An `event_callback` holding an `app_mention`.
    Mention {
        callback: EventCallback,
        mention: AppMention,
    },
    /// An `event_callback` holding a `link_shared` (links to preview).
    LinkShared {
        callback: EventCallback,
        shared: LinkShared,
    },
    /// Anything else (another event type, an envelope type we do not use).
    Other,
}

/// A `link_shared` event: links posted (or typed in the composer) whose domain the app registered.
#[derive(Debug, Deserialize)]
pub struct LinkShared {
    pub channel: String,
    #[serde(default)]
    pub user: Option<String>,
    pub message_ts: String,
    #[serde(default)]
    pub unfurl_id: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub links: Vec<SharedLink>,
}

#[derive(Debug, Deserialize)]
pub struct SharedLink {
    pub url: String,
}

/// Decodes an Events API body (or Socket Mode's `events_api` payload) according to its `type`.
pub fn event(payload: Value) -> Result<Event, Rejection> {
    match str_at(&payload, "/type") {
        Some("url_verification") => str_at(&payload, "/challenge")
            .map(|challenge| Event::Challenge(challenge.to_owned()))
            .ok_or_else(|| Rejection::Malformed("challenge: missing".into())),
        Some("event_callback") => {
            let callback: EventCallback = decode(payload, "body")?;
            match str_at(&callback.event, "/type") {
                Some("app_mention") => {
                    let mention = decode(callback.event.clone(), "event")?;
                    Ok(Event::Mention { callback, mention })
                }
                Some("link_shared") => {
                    let shared = decode(callback.event.clone(), "event")?;
                    Ok(Event::LinkShared { callback, shared })
                }
                _ => Ok(Event::Other),
            }
        }
        Some(_) => Ok(Event::Other),
        None => Err(Rejection::Malformed("type: missing".into())),
    }
}

/// The `payload` field of an interactivity form, as JSON.
pub fn interaction_form(body: &[u8]) -> Result<Value, Rejection> {
    let form = form_to_json(body)?;
    let text = form
        .get("payload")
        .and_then(Value::as_str)
        .ok_or_else(|| Rejection::Malformed("payload: missing".into()))?;
    serde_json::from_str(text).map_err(|e| Rejection::Malformed(format!("payload: not JSON: {e}")))
}

/// A string field of a JSON object, for the few checks made before the full decode.
pub fn str_at<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A form body (`a=1&b=2`) as a JSON object of strings.
pub fn form_to_json(body: &[u8]) -> Result<Value, Rejection> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| Rejection::Malformed(format!("the body is not a form: {e}")))?;
    Ok(Value::Object(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect(),
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_missing_field_is_named_with_its_path() {
        let error = decode::<MessageAction>(
            json!({"callback_id": "find_replays", "trigger_id": "t", "response_url": "u",
                   "user": {"id": "U1"}, "channel": {"id": "C1"}, "message": {"text": "hi"}}),
            "payload",
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("payload.message: missing field `ts`"),
            "{error}"
        );
    }

    #[test]
    fn a_form_becomes_an_object_of_strings() {
        let value = form_to_json(b"team_id=T1&text=jane%40acme.com+--summary").unwrap();
        assert_eq!(
            value,
            json!({"team_id": "T1", "text": "jane@acme.com --summary"})
        );
    }
}
