//! The Zendesk internal note, as HTML: pure functions from a lookup result (or a failure) to the note's
//! `html_body`, snapshot-tested.
//!
//! Every piece of text that came from outside (session links, digest lines, summaries, messages) is
//! HTML-escaped; a link is only made of an `http(s)` URL. Identities are shown redacted
//! (`j•••@acme.com`, [`render::who`]): a ticket is seen by more people than the agent. The wording is the
//! shared one ([`crate::render`]); this file only arranges it. Every note ends with a small footer
//! carrying the effect ledger's reference (`rd-…`), which is how a worker that died after posting finds
//! its note again instead of posting a second one.

use std::fmt::Write as _;

use crate::{
    identity::CustomerEmail,
    lookup::{IdentityResult, LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    render,
};

/// The note listing each identity's sessions (newest first, times in UTC), the likely one marked with
/// why, its digest line and FullStory's summary when present. Identities without sessions are left out.
pub fn sessions_note(result: &LookupResult, reference: &str) -> String {
    let mut html = String::new();
    for group in result.identities.iter().filter(|g| !g.sessions.is_empty()) {
        group_html(&mut html, result, group);
    }
    not_looked_up_html(&mut html, result);
    html.push_str(&footer(reference));
    html
}

fn group_html(html: &mut String, result: &LookupResult, group: &IdentityResult) {
    let _ = write!(
        html,
        "<p><strong>{}</strong></p>\n<ul>\n",
        escape(&render::sessions_heading(group))
    );
    for session in &group.sessions {
        let when = escape(&render::utc(session.created));
        let link = if is_web_url(&session.url) {
            format!("<a href=\"{}\">{when}</a>", escape(&session.url))
        } else {
            when
        };
        html.push_str("<li>");
        html.push_str(&link);
        if session.likely {
            let _ = write!(
                html,
                " · <strong>{}</strong> ({})",
                render::LIKELY,
                escape(render::likely_reason(result))
            );
            if let Some(line) = render::digest_line(group) {
                let _ = write!(html, "<br>{}", escape(&line));
            }
        }
        html.push_str("</li>\n");
    }
    html.push_str("</ul>\n");
    match &group.summary {
        Some(SummaryOutcome::Ready(text)) => {
            let _ = writeln!(
                html,
                "<p><strong>Summary</strong>: {}</p>",
                escape_multiline(text)
            );
        }
        Some(SummaryOutcome::Unavailable(reason)) => {
            let _ = writeln!(html, "<p><em>No summary: {}</em></p>", escape(reason));
        }
        None => {}
    }
}

fn not_looked_up_html(html: &mut String, result: &LookupResult) {
    if let Some(line) = render::not_looked_up(result) {
        let _ = writeln!(html, "<p><em>{}</em></p>", escape(&line));
    }
}

/// The short note when nobody in the ticket has sessions.
pub fn empty_note(result: &LookupResult, reference: &str) -> String {
    let mut html = String::new();
    for group in &result.identities {
        let _ = writeln!(
            html,
            "<p>{}</p>",
            escape(&render::no_sessions(&group.identity, result.lookback_days))
        );
    }
    not_looked_up_html(&mut html, result);
    html.push_str(&footer(reference));
    html
}

/// The note when no answer will come: the reason in the agent's words and the job reference an admin
/// can replay.
pub fn failure_note(message: &str, job_reference: &str, reference: &str) -> String {
    format!(
        "<p>{}</p>\n<p><small>Reference: {}</small></p>\n{}",
        escape(message),
        escape(job_reference),
        footer(reference)
    )
}

/// A summary asked for on its own (a summary job answered on a ticket).
pub fn summary_note(url: Option<&str>, outcome: &SummaryOutcome, reference: &str) -> String {
    let session = match url.filter(|u| is_web_url(u)) {
        Some(url) => format!("<a href=\"{}\">this session</a>", escape(url)),
        None => "this session".to_owned(),
    };
    let body = match outcome {
        SummaryOutcome::Ready(text) => format!(
            "<p><strong>Summary</strong> of {session}: {}</p>\n",
            escape_multiline(text)
        ),
        SummaryOutcome::Unavailable(reason) => {
            format!(
                "<p><em>No summary of {session}: {}</em></p>\n",
                escape(reason)
            )
        }
    };
    body + &footer(reference)
}

/// An erasure's receipt: the heading (done, or not finished), then each thing deleted with its upstream
/// reference and each thing still pending, as a list.
pub fn receipt_note(email: &CustomerEmail, receipt: &ErasureReceipt, reference: &str) -> String {
    let mut html = format!(
        "<p><strong>{}</strong></p>\n<ul>\n",
        escape(&render::erasure_heading(email, receipt))
    );
    for line in render::erasure_lines(receipt) {
        let _ = writeln!(html, "<li>{}</li>", escape(&line));
    }
    html.push_str("</ul>\n");
    html.push_str(&footer(reference));
    html
}

/// The small last line holding the reference the effect ledger searches for.
fn footer(reference: &str) -> String {
    format!(
        "<p><small>replaydesk · ref {}</small></p>",
        escape(reference)
    )
}

fn is_web_url(url: &str) -> bool {
    reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// [`escape`], keeping line breaks as `<br>`.
fn escape_multiline(text: &str) -> String {
    text.trim()
        .lines()
        .map(escape)
        .collect::<Vec<_>>()
        .join("<br>")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::{
        fullstory::SessionId,
        identity::{CustomerEmail, Identity},
        lookup::{Digest, FoundSession},
    };

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn email(s: &str) -> Identity {
        Identity::Email(CustomerEmail::parse(s).unwrap())
    }

    fn session(id: &str, created: &str, likely: bool) -> FoundSession {
        FoundSession {
            id: SessionId::new(id).unwrap(),
            url: format!("https://app.fullstory.com/ui/o-1/session/{id}?a=1&b=2"),
            created: at(created),
            likely,
        }
    }

    fn result() -> LookupResult {
        LookupResult {
            not_looked_up: 0,
            around: Some(at("2026-11-20T14:10:00Z")),
            lookback_days: 30,
            identities: vec![
                IdentityResult {
                    identity: email("jane@acme.com"),
                    sessions: vec![
                        session("5:3", "2026-11-20T14:02:00Z", true),
                        session("5:1", "2026-11-19T09:11:00Z", false),
                    ],
                    digest: Some(Digest {
                        pages: 6,
                        errors: 2,
                        rage_clicks: 3,
                        duration_secs: Some(420),
                        ..Digest::default()
                    }),
                    summary: Some(SummaryOutcome::Ready(
                        "Tried to pay twice; the <Pay> button did nothing.\nGave up.".into(),
                    )),
                },
                IdentityResult {
                    identity: email("bob@acme.com"),
                    sessions: vec![session("7:9", "2026-11-18T08:00:00Z", false)],
                    digest: None,
                    summary: None,
                },
                IdentityResult {
                    identity: email("nobody@acme.com"),
                    sessions: vec![],
                    digest: None,
                    summary: None,
                },
            ],
        }
    }

    #[test]
    fn the_sessions_note_marks_the_likely_session_with_its_digest_and_summary() {
        insta::assert_snapshot!(sessions_note(&result(), "rd-42-note-9f3a01c2"));
    }

    #[test]
    fn the_empty_note_says_so_per_identity_without_showing_an_address() {
        let mut empty = result();
        for group in &mut empty.identities {
            group.sessions.clear();
        }
        let html = empty_note(&empty, "rd-7-note-00000001");
        assert!(!html.contains("jane@"));
        insta::assert_snapshot!(html);
    }

    #[test]
    fn the_failure_and_summary_notes_escape_what_came_from_outside() {
        insta::assert_snapshot!(failure_note(
            "FullStory is \"down\" <again>",
            "job 12 (an admin can run `replaydesk jobs retry 12`)",
            "rd-12-failed-0000abcd"
        ));
        insta::assert_snapshot!(summary_note(
            Some("https://app.fullstory.com/ui/o-1/session/5:3"),
            &SummaryOutcome::Unavailable("summaries are off: set fullstory.summary_profile".into()),
            "rd-13-summary-0000abcd"
        ));
    }

    #[test]
    fn only_web_links_become_links() {
        let mut odd = result();
        odd.identities[0].sessions[0].url = "javascript:alert(1)".into();
        let html = sessions_note(&odd, "rd-1-note-00000000");
        assert!(!html.contains("javascript:"));
        assert!(html.contains("<li>2026-11-20 14:02 UTC · <strong>likely</strong>"));
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }
}
