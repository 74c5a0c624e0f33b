//! The words every platform's message shares, written once: who a result is about (always redacted:
//! chat channels and tickets are seen by more people than the one who asked), the polite "looking up" and
//! "no sessions" lines, the likely marker, the digest line, and the help text.
//!
//! Each platform's `render.rs` (Block Kit, a Zendesk HTML note, a Discord embed) arranges these pieces in
//! its own format; none writes its own wording. All of them are pure functions, snapshot-tested.
//!
//! Every renderer stays within its platform's documented limits by construction, with the one set of
//! cutting and budgeting helpers in [`limits`]. When a platform refuses a message anyway, the replier
//! sends the plain fallback built here ([`fallback_lines`]: who, when, and the links, nothing else).

pub mod limits;
pub mod note;

#[cfg(test)]
pub(crate) mod sample;

use chrono::{DateTime, Utc};

use crate::{
    answer::Answer,
    identity::{CustomerEmail, Identity, redact_emails},
    lookup::{IdentityResult, LookupResult},
    privacy::ErasureReceipt,
};

/// `j•••@acme.com` or `uid:12345`.
pub fn who(identity: &Identity) -> String {
    identity.to_string()
}

/// `j•••@acme.com, uid:12345`.
pub fn who_all(identities: &[Identity]) -> String {
    identities.iter().map(who).collect::<Vec<_>>().join(", ")
}

/// The acknowledgement shown while the lookup runs: the first `max` identities (those looked up),
/// and how many more were left out.
pub fn looking_up(identities: &[Identity], max: usize) -> String {
    let shown = identities.get(..max).unwrap_or(identities);
    let left_out = identities.len() - shown.len();
    if left_out == 0 {
        format!("Looking up replays for {}…", who_all(shown))
    } else {
        format!(
            "Looking up replays for {}… ({left_out} more not looked up: at most {max} per request)",
            who_all(shown)
        )
    }
}

/// The line every answer carries when the request named more identities than are looked up (see
/// [`crate::lookup`]): how many were left out and why. `None` when none was.
pub fn not_looked_up(result: &LookupResult) -> Option<String> {
    let n = result.not_looked_up;
    (n > 0).then(|| {
        format!(
            "{n} more {} not looked up: replaydesk looks up the first {} of a request. Ask again for them.",
            if n == 1 { "identity was" } else { "identities were" },
            result.identities.len()
        )
    })
}

/// The polite answer when a customer has no sessions to show: none found, or (for a customer who was
/// erased and is still remembered: [`crate::privacy::Tombstones`]) that they asked to be forgotten.
pub fn no_sessions(group: &IdentityResult, lookback_days: u64) -> String {
    if group.forgotten {
        return forgotten(&group.identity);
    }
    format!(
        "No sessions found for {} in the last {lookback_days} days.",
        who(&group.identity)
    )
}

/// The answer about a customer who was erased: nothing was looked up, nothing is kept.
pub fn forgotten(identity: &Identity) -> String {
    format!(
        "{} asked to be forgotten: replaydesk erased their data and looks nothing up for them.",
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

/// The heading of the "what went wrong" list.
pub const WENT_WRONG_HEADING: &str = "What went wrong";

/// The likely session's "what went wrong" list, one line per item (`1:15 console error: TypeError: x`),
/// errors first, then failed requests, then frustrated pages; empty when nothing went wrong (or the
/// list is off). The texts are scrubbed already ([`crate::lookup::WhatWentWrong`]); each platform
/// escapes them like any other text from FullStory.
pub fn went_wrong_lines(group: &IdentityResult) -> Vec<String> {
    group
        .digest
        .as_ref()
        .map(|d| went_wrong_list(&d.went_wrong))
        .unwrap_or_default()
}

/// [`went_wrong_lines`] of one list (a Slack link preview has a digest but no identity).
pub fn went_wrong_list(went: &crate::lookup::WhatWentWrong) -> Vec<String> {
    let at = |offset: Option<i64>| match offset {
        Some(secs) => format!("{}:{:02} ", secs / 60, secs % 60),
        None => String::new(),
    };
    let mut lines = Vec::new();
    for (items, what) in [
        (&went.console_errors, "console error: "),
        (&went.failed_requests, "failed request: "),
        (&went.frustrated_pages, ""),
    ] {
        lines.extend(
            items
                .iter()
                .map(|m| format!("{}{what}{}", at(m.offset_secs), m.text)),
        );
    }
    lines
}

/// The digest line of a group's likely session, when there is one; or, when the digest asked for
/// was skipped (the FullStory Activation budget is used), the line saying so.
pub fn digest_line(group: &IdentityResult) -> Option<String> {
    group
        .digest
        .as_ref()
        .map(crate::lookup::Digest::line)
        .or_else(|| group.digest_skipped.clone())
}

/// A session's start as plain UTC text (`2026-11-20 14:02 UTC`), for formats without local-time markup.
pub fn utc(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// How to ask, for chat platforms' help and usage answers.
pub fn usage(command: &str) -> String {
    format!(
        "Usage: `{command} jane@acme.com` (several emails and `uid:12345` work too; add `--summary` for \
         FullStory's AI summary of the likely session, `--digest` for its digest)."
    )
}

/// The answer when a message (a shortcut's target, a mention and its thread) names nobody to look up.
pub const NO_IDENTITIES: &str =
    "I found no customer email address (or `uid:…`) to look up in that message.";

/// What the person sees when they may not use replaydesk here.
pub const NOT_ALLOWED: &str =
    "Sorry, replaydesk is not enabled for you here. Ask your replaydesk admin if you need access.";

/// What someone outside `privacy.admin_slack_user_ids` is told when they ask for an erasure.
pub const FORGET_NOT_ALLOWED: &str = "Sorry, only your privacy admins can erase customer data. \
     Please ask one of them (your replaydesk admin knows who they are).";

/// How to ask for an erasure.
pub fn forget_usage(command: &str) -> String {
    format!("Usage: `{command} forget jane@acme.com` (one customer email address).")
}

/// The question before an erasure.
pub fn confirm_erasure(email: &CustomerEmail) -> String {
    format!(
        "Erase {email} everywhere? replaydesk will delete the customer's FullStory user(s), their Heap \
         user (when Heap is set up) and everything replaydesk keeps about them. This cannot be undone."
    )
}

/// What a cancelled erasure's confirmation becomes.
pub const ERASURE_CANCELLED: &str = "Cancelled: nothing was erased.";

/// The first line of an erasure's receipt: whom, and whether it is finished. Pending is never done.
pub fn erasure_heading(email: &CustomerEmail, receipt: &ErasureReceipt) -> String {
    let job = receipt.job_id;
    match receipt.status.as_str() {
        "done" => format!("Erasure of {email}: done (job {job})."),
        "incomplete" => format!(
            "Erasure of {email}: NOT complete. replaydesk did what it can; a person must finish what \
             is listed below (job {job})."
        ),
        "dead" => format!(
            "Erasure of {email}: NOT finished. replaydesk gave up after several tries (job {job}; an \
             admin can run `replaydesk jobs retry {job}`)."
        ),
        "cancelled" => format!(
            "Erasure of {email}: NOT finished. An admin cancelled it while it waited (job {job}; \
             `replaydesk jobs retry {job}` takes it back)."
        ),
        _ => format!(
            "Erasure of {email}: still pending. replaydesk keeps retrying and will report again (job {job})."
        ),
    }
}

/// The receipt's other lines: each thing deleted (with its upstream reference), each thing pending,
/// and for an unfinished erasure the last error (emails in it redacted).
pub fn erasure_lines(receipt: &ErasureReceipt) -> Vec<String> {
    let mut lines: Vec<String> = receipt.done.iter().map(|d| format!("✓ {d}")).collect();
    lines.extend(receipt.pending.iter().map(|p| format!("… pending: {p}")));
    lines.extend(
        receipt
            .needs_action
            .iter()
            .map(|a| format!("⚠ needs a person: {a}")),
    );
    if receipt.status != "done"
        && let Some(error) = &receipt.last_error
    {
        let error: String = redact_emails(error).chars().take(300).collect();
        lines.push(format!("Last error: {error}"));
    }
    lines
}

/// The first line of a plain fallback: why the answer looks plain.
pub const FALLBACK_INTRO: &str =
    "The full answer could not be shown here, so here are the replay links.";

/// The lines of the plain answer sent when a platform refused the rich one: for sessions, each
/// identity's heading and one line per session (its start in UTC, `likely`, and the link as the
/// platform writes it with `link`, or the session id when `link` cannot carry that URL); for a summary
/// only the replay link; for the other answers their text. No summary, digest or button: the plainest
/// message that still answers. `escape` is the platform's escaping, applied to every word not ours.
pub fn fallback_lines(
    answer: &Answer<'_>,
    escape: impl Fn(&str) -> String,
    link: impl Fn(&str) -> Option<String>,
) -> Vec<String> {
    let session_line = |created: DateTime<Utc>, likely: bool, id: &str, url: &str| {
        let mut line = utc(created);
        if likely {
            line.push_str(&format!(" ({LIKELY})"));
        }
        match link(url) {
            Some(link) => format!("{line}: {link}"),
            None => format!("{line}: session {}", escape(id)),
        }
    };
    match answer {
        Answer::Sessions { result, .. } => {
            let mut lines = vec![FALLBACK_INTRO.to_owned()];
            for group in &result.identities {
                if group.sessions.is_empty() {
                    lines.push(escape(&no_sessions(group, result.lookback_days)));
                    continue;
                }
                lines.push(escape(&sessions_heading(group)));
                lines.extend(
                    group
                        .sessions
                        .iter()
                        .map(|s| session_line(s.created, s.likely, s.id.as_str(), &s.url)),
                );
            }
            lines
        }
        Answer::Summary { job, .. } => {
            let mut lines =
                vec!["FullStory's summary could not be shown here; the replay:".to_owned()];
            let url = job.url.as_deref().unwrap_or_default();
            lines.push(match link(url) {
                Some(link) => link,
                None => format!("session {}", escape(job.session.as_str())),
            });
            lines
        }
        Answer::Delayed { message } => vec![escape(message)],
        Answer::Failed { message, reference } => {
            vec![escape(message), escape(&format!("Reference: {reference}"))]
        }
        Answer::Erasure { email, receipt } => std::iter::once(erasure_heading(email, receipt))
            .chain(erasure_lines(receipt))
            .map(|line| escape(&line))
            .collect(),
        Answer::Escalated { escalated } => vec![escape(&escalated.message())],
    }
}

/// A lookup job for `result`'s identities, for renderers' tests (a job is only read for its reply).
#[cfg(test)]
pub(crate) fn test_job(result: &LookupResult) -> crate::answer::LookupJob {
    crate::answer::LookupJob {
        identities: result
            .identities
            .iter()
            .map(|g| g.identity.clone())
            .collect(),
        around: result.around,
        summary: false,
        digest: None,
        requester: crate::privacy::Requester::default(),
        reply: crate::answer::ReplyTo::nowhere(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::identity::{CustomerEmail, Uid};

    #[test]
    fn what_went_wrong_reads_as_times_and_scrubbed_texts() {
        use crate::lookup::{Digest, Moment, WhatWentWrong};
        let moment = |secs, text: &str| Moment {
            offset_secs: secs,
            text: text.into(),
        };
        let mut group = IdentityResult {
            digest_skipped: None,
            identity: Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap()),
            forgotten: false,
            sessions: vec![],
            digest: None,
            summary: None,
        };
        assert!(went_wrong_lines(&group).is_empty());
        group.digest = Some(Digest {
            went_wrong: WhatWentWrong {
                console_errors: vec![moment(Some(75), "TypeError: x")],
                failed_requests: vec![moment(Some(212), "POST /api/pay → 502")],
                frustrated_pages: vec![moment(None, "3 rage clicks on /checkout")],
            },
            ..Digest::default()
        });
        assert_eq!(
            went_wrong_lines(&group),
            [
                "1:15 console error: TypeError: x",
                "3:32 failed request: POST /api/pay → 502",
                "3 rage clicks on /checkout",
            ]
        );
    }

    #[test]
    fn lines_never_show_a_full_email() {
        let jane = Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap());
        let uid = Identity::Uid(Uid::parse("12345").unwrap());
        assert_eq!(
            looking_up(&[jane.clone(), uid.clone()], 10),
            "Looking up replays for j•••@acme.com, uid:12345…"
        );
        assert_eq!(
            looking_up(&[jane.clone(), uid, jane.clone()], 1),
            "Looking up replays for j•••@acme.com… (2 more not looked up: at most 1 per request)"
        );
        let mut group = IdentityResult {
            digest_skipped: None,
            identity: jane.clone(),
            forgotten: false,
            sessions: vec![],
            digest: None,
            summary: None,
        };
        assert_eq!(
            no_sessions(&group, 30),
            "No sessions found for j•••@acme.com in the last 30 days."
        );
        group.forgotten = true;
        assert_eq!(
            no_sessions(&group, 30),
            "j•••@acme.com asked to be forgotten: replaydesk erased their data and looks nothing up \
             for them."
        );
    }

    #[test]
    fn the_cut_is_named_only_when_there_was_one() {
        let result = |not_looked_up| LookupResult {
            around: None,
            lookback_days: 30,
            identities: Vec::new(),
            not_looked_up,
        };
        assert_eq!(not_looked_up(&result(0)), None);
        assert_eq!(
            not_looked_up(&result(1)).unwrap(),
            "1 more identity was not looked up: replaydesk looks up the first 0 of a request. Ask again for them."
        );
        assert!(
            not_looked_up(&result(290))
                .unwrap()
                .starts_with("290 more identities were")
        );
    }

    #[test]
    fn a_receipt_never_calls_a_pending_erasure_done_and_never_shows_an_email() {
        let jane = CustomerEmail::parse("jane@acme.com").unwrap();
        let pending = ErasureReceipt {
            job_id: 7,
            status: "pending".into(),
            done: vec!["fullstory user u1: deletion requested".into()],
            pending: vec!["heap".into()],
            last_error: Some("Heap refused user_deletion (400): unknown jane@acme.com".into()),
            ..ErasureReceipt::default()
        };
        let heading = erasure_heading(&jane, &pending);
        assert!(heading.contains("still pending"), "{heading}");
        assert!(!heading.contains("done"), "{heading}");
        let lines = erasure_lines(&pending).join("\n");
        assert_eq!(
            lines,
            "✓ fullstory user u1: deletion requested\n… pending: heap\n\
             Last error: Heap refused user_deletion (400): unknown j•••@acme.com"
        );
        let done = ErasureReceipt {
            status: "done".into(),
            pending: vec![],
            ..pending
        };
        assert_eq!(
            erasure_heading(&jane, &done),
            "Erasure of j•••@acme.com: done (job 7)."
        );
        assert!(!erasure_lines(&done).join(" ").contains("error"));
        let incomplete = ErasureReceipt {
            status: "incomplete".into(),
            needs_action: vec!["FullStory user u2 has no uid: delete it by hand".into()],
            ..done
        };
        let heading = erasure_heading(&jane, &incomplete);
        assert!(heading.contains("NOT complete"), "{heading}");
        assert!(!heading.contains("done"), "{heading}");
        assert!(
            erasure_lines(&incomplete)
                .join("\n")
                .contains("⚠ needs a person: FullStory user u2")
        );
    }
}
