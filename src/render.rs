//! The words every platform's message shares, written once: who a result is about (always redacted:
//! chat channels and tickets are seen by more people than the one who asked), the polite "looking up" and
//! "no sessions" lines, the likely marker, the digest line, and the help text.
//!
//! Each platform's `render.rs` (Block Kit, a Zendesk HTML note, a Discord embed) arranges these pieces in
//! its own format; none writes its own wording. All of them are pure functions, snapshot-tested.

use chrono::{DateTime, Utc};

use crate::{
    identity::Identity,
    lookup::{IdentityResult, LookupResult},
};

/// `j•••@acme.com` or `uid:12345`.
pub fn who(identity: &Identity) -> String {
    identity.to_string()
}

/// `j•••@acme.com, uid:12345`.
pub fn who_all(identities: &[Identity]) -> String {
    identities.iter().map(who).collect::<Vec<_>>().join(", ")
}

/// The acknowledgement shown while the lookup runs.
pub fn looking_up(identities: &[Identity]) -> String {
    format!("Looking up replays for {}…", who_all(identities))
}

/// The polite answer when a customer has no sessions.
pub fn no_sessions(identity: &Identity, lookback_days: u64) -> String {
    format!(
        "No sessions found for {} in the last {lookback_days} days.",
        who(identity)
    )
}

/// The header of one identity's sessions.
pub fn sessions_heading(group: &IdentityResult) -> String {
    let n = group.sessions.len();
    format!(
        "{} · {n} recent session{}",
        who(&group.identity),
        if n == 1 { "" } else { "s" }
    )
}

/// The marker put beside the likely session.
pub const LIKELY: &str = "likely";

/// Why a session is marked likely, for people who wonder.
pub fn likely_reason(result: &LookupResult) -> &'static str {
    if result.around.is_some() {
        "live at or just before the time in question"
    } else {
        "the most recent"
    }
}

/// The digest line of a group's likely session, when there is one.
pub fn digest_line(group: &IdentityResult) -> Option<String> {
    group.digest.as_ref().map(crate::lookup::Digest::line)
}

/// A session's start as plain UTC text (`2026-11-20 14:02 UTC`), for formats without local-time markup.
pub fn utc(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How to ask, for chat platforms' help and usage answers.
pub fn usage(command: &str) -> String {
    format!(
        "Usage: `{command} jane@acme.com` (several emails and `uid:12345` work too; add `--summary` for \
         FullStory's AI summary of the likely session)."
    )
}

/// The answer to "find replays" on a message that holds no customer email.
pub const NO_EMAIL_IN_MESSAGE: &str = "No customer email found in that message.";

/// What the person sees when they may not use replaydesk here.
pub const NOT_ALLOWED: &str =
    "Sorry, replaydesk is not enabled for you here. Ask your replaydesk admin if you need access.";

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::{CustomerEmail, Uid};

    #[test]
    fn lines_never_show_a_full_email() {
        let jane = Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap());
        let uid = Identity::Uid(Uid::parse("12345").unwrap());
        assert_eq!(
            looking_up(&[jane.clone(), uid]),
            "Looking up replays for j•••@acme.com, uid:12345…"
        );
        assert_eq!(
            no_sessions(&jane, 30),
            "No sessions found for j•••@acme.com in the last 30 days."
        );
    }
}
