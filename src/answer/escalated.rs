//! What an escalation ([`crate::escalate`]) answers the person who asked: the key and link,
//! and whether it was made now, already made by an earlier ask, or an existing issue linked. Kept here,
//! beside [`super::Answer::Escalated`] that carries it, so the repliers never import the trackers.

use serde::{Deserialize, Serialize};

/// An escalation's outcome, as told to the asker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalated {
    /// `Linear`, `Jira`.
    pub tracker: String,
    /// `LIN-123`.
    pub key: String,
    pub url: String,
    /// The same source and session had been escalated before: this is that issue.
    pub already: bool,
    /// An existing issue was linked (`--issue`, the modal's field), not a new one made.
    pub linked: bool,
}

impl Escalated {
    /// One line: "Escalated to Linear: LIN-123 <url>", "Already escalated: LIN-123 <url>", "Linked to
    /// Jira issue SUP-42 <url>".
    pub fn message(&self) -> String {
        let Self {
            tracker, key, url, ..
        } = self;
        if self.already {
            format!("Already escalated: {key} {url}")
        } else if self.linked {
            format!("Linked to {tracker} issue {key} {url}")
        } else {
            format!("Escalated to {tracker}: {key} {url}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_says_what_happened_with_the_key_and_link() {
        let mut escalated = Escalated {
            tracker: "Linear".into(),
            key: "LIN-123".into(),
            url: "https://linear.app/acme/issue/LIN-123".into(),
            already: false,
            linked: false,
        };
        assert_eq!(
            escalated.message(),
            "Escalated to Linear: LIN-123 https://linear.app/acme/issue/LIN-123"
        );
        escalated.already = true;
        assert_eq!(
            escalated.message(),
            "Already escalated: LIN-123 https://linear.app/acme/issue/LIN-123"
        );
        escalated.already = false;
        escalated.linked = true;
        assert_eq!(
            escalated.message(),
            "Linked to Linear issue LIN-123 https://linear.app/acme/issue/LIN-123"
        );
    }
}
