//! The inbox app's `stored_data`: what replaydesk leaves in a canvas and Intercom sends back with the
//! next submit (the workspace, conversation and contact it was shown for, the likely session a
//! Summarize button means, the conversation's start, when it was drawn), signed.
//!
//! Why signed, although the submit request is signed by Intercom as a whole: what comes back should be
//! exactly what we drew for *this* workspace, conversation and contact, and nothing a canvas of
//! another conversation held. So it is `{"state": {…}, "sig": hex HMAC-SHA256(state as we wrote it,
//! keyed by the client secret)}` ([`crate::signing`]); a submit whose state does not verify (another
//! secret after a rotation, a state of another conversation) is answered as a fresh start, never
//! acted on. It holds ids, one URL and times: no email.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::signing::{any_secret_matches, hmac_sha256};

/// The likely session a Summarize button means.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Likely {
    pub id: String,
    pub url: Option<String>,
}

/// What a canvas remembers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub v: u8,
    pub workspace: String,
    pub conversation: Option<String>,
    pub contact: Option<String>,
    pub likely: Option<Likely>,
    /// The conversation's start (Unix seconds).
    pub around: Option<i64>,
    /// When the canvas was drawn (Unix milliseconds): one "Add as note" per drawn canvas.
    pub drawn: i64,
}

/// `state` with its signature, as `stored_data`.
pub fn seal(state: &State, secret: &str) -> Value {
    let bytes = serde_json::to_vec(state).unwrap_or_default();
    json!({
        "state": state,
        "sig": hex::encode(hmac_sha256(secret.as_bytes(), &[&bytes])),
    })
}

/// The state in `stored`, when one of `secrets` signed it and it was drawn for `workspace` and
/// `conversation`.
pub fn open<'s>(
    stored: &Value,
    secrets: impl Iterator<Item = &'s str>,
    workspace: &str,
    conversation: Option<&str>,
    contact: Option<&str>,
) -> Option<State> {
    let state: State = serde_json::from_value(stored.get("state")?.clone()).ok()?;
    let sig = hex::decode(stored.get("sig")?.as_str()?).ok()?;
    let bytes = serde_json::to_vec(&state).ok()?;
    any_secret_matches(secrets, &[&bytes], &sig).ok()?;
    // Its place and its contact: a state drawn for one contact of a conversation never acts for another.
    (state.workspace == workspace
        && state.conversation.as_deref() == conversation
        && state.contact.as_deref() == contact)
        .then_some(state)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            v: 1,
            workspace: "ws1".into(),
            conversation: Some("123".into()),
            contact: Some("c1".into()),
            likely: Some(Likely {
                id: "5:3".into(),
                url: Some("https://app.fullstory.com/ui/o/session/5:3".into()),
            }),
            around: Some(1_764_000_000),
            drawn: 1_764_000_000_000,
        }
    }

    #[test]
    fn a_sealed_state_opens_only_for_its_workspace_conversation_and_contact_with_a_known_secret() {
        let sealed = seal(&state(), "new");
        assert_eq!(
            open(
                &sealed,
                ["old", "new"].into_iter(),
                "ws1",
                Some("123"),
                Some("c1")
            ),
            Some(state())
        );
        assert_eq!(
            open(&sealed, ["old"].into_iter(), "ws1", Some("123"), Some("c1")),
            None
        );
        assert_eq!(
            open(&sealed, ["new"].into_iter(), "ws2", Some("123"), Some("c1")),
            None
        );
        assert_eq!(
            open(&sealed, ["new"].into_iter(), "ws1", Some("124"), Some("c1")),
            None
        );
        assert_eq!(
            open(&sealed, ["new"].into_iter(), "ws1", Some("123"), Some("c2")),
            None,
            "another contact of the conversation"
        );
        let mut forged = sealed.clone();
        forged["state"]["likely"]["id"] = json!("9:9");
        assert_eq!(
            open(&forged, ["new"].into_iter(), "ws1", Some("123"), Some("c1")),
            None
        );
        assert_eq!(
            open(
                &Value::Null,
                ["new"].into_iter(),
                "ws1",
                Some("123"),
                Some("c1")
            ),
            None
        );
    }
}
