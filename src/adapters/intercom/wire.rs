//! What Intercom sends us, read with [`read_json`] (a bad body is 400 naming the field, never quoting
//! it): webhook notifications and Canvas Kit requests.
//!
//! - A notification (developers.intercom.com, "Webhook models"): `{"type": "notification_event",
//!   "app_id": <workspace>, "topic": …, "id": <notification id>, "created_at": …, "data": {"item":
//!   <conversation>}}`. A conversation's `contacts.contacts` carry only `id` (and `external_id` when the
//!   workspace sets one): emails are read over the API ([`super::api`]). Its first message is
//!   `source.body` (HTML); a reply is the last `conversation_parts.conversation_parts` entry.
//! - A Canvas Kit request (npm `intercom-client` 6.x `InitializeRequest` / `SubmitRequest`):
//!   `workspace_id`, `admin`, `context` (`conversation_id`, `location`), `conversation`, `contact` (with
//!   `email` and `external_id`), and on submit `component_id` and `current_canvas.stored_data`.
//!
//! Ids are read as text whether Intercom writes them as strings or numbers (`context.conversation_id`
//! is a number, `conversation.id` a string).

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::adapters::inbound::read_json;

/// The topic of a new conversation started by a customer.
pub const CREATED: &str = "conversation.user.created";
/// The topic of a customer's reply in a conversation.
pub const REPLIED: &str = "conversation.user.replied";

/// A webhook notification.
#[derive(Clone, Debug, Deserialize)]
pub struct Notification {
    /// The workspace.
    #[serde(deserialize_with = "id")]
    pub app_id: String,
    pub topic: String,
    /// Unique per notification; Intercom's retries of one notification keep it.
    #[serde(deserialize_with = "id")]
    pub id: String,
    #[serde(default)]
    pub data: Data,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Data {
    #[serde(default)]
    pub item: Value,
}

/// The parts of a conversation a note needs.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Conversation {
    #[serde(deserialize_with = "id")]
    pub id: String,
    /// Unix seconds.
    #[serde(default)]
    pub created_at: Option<i64>,
    #[serde(default)]
    pub contacts: Contacts,
    #[serde(default)]
    pub source: Option<Part>,
    #[serde(default)]
    pub conversation_parts: Option<Parts>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Contacts {
    #[serde(default)]
    pub contacts: Vec<ContactRef>,
}

/// A contact as a conversation names it.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ContactRef {
    #[serde(deserialize_with = "id")]
    pub id: String,
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Parts {
    #[serde(default)]
    pub conversation_parts: Vec<Part>,
}

/// A message of the conversation (its `source`, or a part).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Part {
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub author: Option<Author>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Author {
    /// `user`, `lead`, `contact`, `admin`, `bot`, `team`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

impl Part {
    /// Written by the customer (not a teammate or a bot).
    pub fn by_customer(&self) -> bool {
        self.author
            .as_ref()
            .and_then(|a| a.kind.as_deref())
            .is_none_or(|kind| matches!(kind, "user" | "lead" | "contact"))
    }
}

impl Conversation {
    /// The customer's newest words: the last part a customer wrote, else the first message.
    pub fn latest_customer_text(&self) -> Option<&str> {
        self.conversation_parts
            .as_ref()
            .and_then(|p| p.conversation_parts.iter().rev().find(|p| p.by_customer()))
            .or(self.source.as_ref())
            .and_then(|p| p.body.as_deref())
    }
}

/// Reads a notification's envelope.
pub fn notification(body: &[u8]) -> Result<Notification, String> {
    read_json(body)
}

/// Reads a notification's conversation (`data.item`).
pub fn conversation(item: &Value) -> Result<Conversation, String> {
    serde_json::from_value::<Conversation>(item.clone()).map_err(|error| {
        let message = error.to_string();
        if message.starts_with("missing field") {
            format!("data.item: {message}")
        } else {
            "data.item: not a conversation".to_owned()
        }
    })
}

/// A Canvas Kit request: initialize or submit.
#[derive(Clone, Debug, Deserialize)]
pub struct CanvasRequest {
    #[serde(deserialize_with = "id")]
    pub workspace_id: String,
    #[serde(default)]
    pub admin: Option<Admin>,
    #[serde(default)]
    pub context: Option<Context>,
    #[serde(default)]
    pub conversation: Option<CanvasConversation>,
    #[serde(default)]
    pub contact: Option<CanvasContact>,
    /// The clicked component (submit only).
    #[serde(default)]
    pub component_id: Option<String>,
    #[serde(default)]
    pub current_canvas: Option<CurrentCanvas>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Admin {
    #[serde(default, deserialize_with = "optional_id")]
    pub id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct Context {
    #[serde(default, deserialize_with = "optional_id")]
    pub conversation_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CanvasConversation {
    #[serde(default, deserialize_with = "optional_id")]
    pub id: Option<String>,
    #[serde(default)]
    pub created_at: Option<i64>,
}

/// The contact whose panel the app is shown in: one per request (a group conversation gets a request
/// per contact).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CanvasContact {
    #[serde(default, deserialize_with = "optional_id")]
    pub id: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub external_id: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
pub struct CurrentCanvas {
    #[serde(default)]
    pub stored_data: Value,
}

impl CanvasRequest {
    /// The conversation the app is shown beside: `context.conversation_id`, else `conversation.id`.
    pub fn conversation_id(&self) -> Option<&str> {
        self.context
            .as_ref()
            .and_then(|c| c.conversation_id.as_deref())
            .or_else(|| self.conversation.as_ref()?.id.as_deref())
    }

    /// The state we left in the canvas last time (`null` on initialize).
    pub fn stored_data(&self) -> &Value {
        static NULL: Value = Value::Null;
        self.current_canvas
            .as_ref()
            .map_or(&NULL, |c| &c.stored_data)
    }
}

/// Reads a Canvas Kit request.
pub fn canvas_request(body: &[u8]) -> Result<CanvasRequest, String> {
    read_json(body)
}

/// An id written as a string or a number, as text.
fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    optional_id(deserializer)?
        .ok_or_else(|| serde::de::Error::custom("must be a non-empty id (a string or a number)"))
}

fn optional_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) if !s.trim().is_empty() && s.len() <= 200 => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_notification_names_its_workspace_topic_and_conversation() {
        let body = json!({
            "type": "notification_event", "app_id": "ws1", "topic": CREATED, "id": "notif_1",
            "data": {"item": {"type": "conversation", "id": "123", "created_at": 1_764_000_000,
                "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": "c1", "external_id": "u-1"}]},
                "source": {"body": "<p>Help, jane@acme.com here</p>", "author": {"type": "user"}}}}
        });
        let n = notification(body.to_string().as_bytes()).unwrap();
        assert_eq!((n.app_id.as_str(), n.id.as_str()), ("ws1", "notif_1"));
        let c = conversation(&n.data.item).unwrap();
        assert_eq!(c.id, "123");
        assert_eq!(c.contacts.contacts[0].external_id.as_deref(), Some("u-1"));
        assert_eq!(
            c.latest_customer_text(),
            Some("<p>Help, jane@acme.com here</p>")
        );
    }

    #[test]
    fn the_latest_customer_part_wins_over_a_teammates_and_the_first_message() {
        let c = conversation(&json!({"id": 9,
            "source": {"body": "first", "author": {"type": "user"}},
            "conversation_parts": {"conversation_parts": [
                {"body": "customer reply", "author": {"type": "user"}},
                {"body": "teammate answer", "author": {"type": "admin"}}]}}))
        .unwrap();
        assert_eq!(c.id, "9");
        assert_eq!(c.latest_customer_text(), Some("customer reply"));
    }

    #[test]
    fn bad_bodies_name_the_field_without_quoting_it() {
        let err = notification(br#"{"topic": "x", "id": "n"}"#).unwrap_err();
        assert!(err.contains("app_id"), "{err}");
        let err =
            notification(br#"{"app_id": "jane@acme.com", "topic": 1, "id": "n"}"#).unwrap_err();
        assert!(err.starts_with("topic"), "{err}");
        assert!(!err.contains("jane"), "{err}");
        assert_eq!(
            notification(b"not json").unwrap_err(),
            "the body is not valid JSON"
        );
        assert!(
            conversation(&json!({"contacts": []}))
                .unwrap_err()
                .starts_with("data.item")
        );
    }

    #[test]
    fn a_canvas_request_finds_its_conversation_in_the_context_or_the_conversation() {
        let r = canvas_request(
            br#"{"workspace_id":"ws1","context":{"conversation_id":77,"location":"conversation"},
                 "contact":{"id":"c1","email":"jane@acme.com"}}"#,
        )
        .unwrap();
        assert_eq!(r.conversation_id(), Some("77"));
        assert!(r.stored_data().is_null());
        let r = canvas_request(br#"{"workspace_id":"ws1","conversation":{"id":"78"}}"#).unwrap();
        assert_eq!(r.conversation_id(), Some("78"));
    }
}
