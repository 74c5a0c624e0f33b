//! The internal note of a help desk, as HTML: pure functions from a lookup result (or a failure) to a
//! note's body, shared by every platform whose answer is a note on a ticket or a conversation (Zendesk's
//! `html_body`, Intercom's note `body`), so a desk platform arranges no HTML of its own.
//!
//! Every piece of text that came from outside (session links, digest lines, summaries, messages) is
//! HTML-escaped; a link is only made of an `http(s)` URL. Identities are shown redacted
//! (`j•••@acme.com`, [`render::who`]): a ticket is seen by more people than the agent. The wording is the
//! shared one ([`crate::render`]); this file only arranges it. Every note ends with a small footer
//! carrying the effect ledger's reference (`rd-…`), which is how a worker that died after posting finds
//! its note again instead of posting a second one.
//!
//! Within the desks' comment size by construction: Zendesk documents no number; its staff give "a size
//! limit that roughly translates to … ~65,000 characters, depending on your encoding/markup" (community
//! post 4719863289498); Intercom documents none for a note's body. So a note is at most
//! [`MAX_NOTE_BYTES`] = 60,000 **bytes** of UTF-8 HTML,
//! markup included: the identities share that budget equally, a summary takes at most half of its
//! identity's share, and the session list ends with "N more sessions not shown" when full. Summaries are
//! cut after escaping ([`crate::render::limits`]), never inside an entity or a `<br>`. A replay URL
//! over 2,000 bytes shows the session id instead of a link. Our own texts that name a command in
//! backticks show it as `<code>` (never literal backticks). The tags used are the few both desks keep:
//! `p`, `strong`, `em`, `small`, `code`, `ul`/`li`, `a`, `br`.

use std::fmt::Write as _;

use crate::{
    answer::Answer,
    identity::CustomerEmail,
    lookup::{IdentityResult, LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    render::{
        self,
        limits::{Lines, cut_bytes},
    },
};

/// The most a note weighs, in UTF-8 bytes of HTML (see the module docs).
pub const MAX_NOTE_BYTES: usize = 60_000;
/// The longest replay URL made a link.
const MAX_URL_BYTES: usize = 2_000;
/// Room kept for a "more not shown" line.
const MORE_RESERVE: usize = 64;

/// The note listing each identity's sessions (newest first, times in UTC), the likely one marked with
/// why, its digest line and FullStory's summary when present. Identities without sessions are left out.
pub fn sessions_note(result: &LookupResult, reference: &str) -> String {
    let footer = footer(reference);
    let cut_line = not_looked_up_html(result);
    let groups: Vec<&IdentityResult> = result
        .identities
        .iter()
        .filter(|g| !g.sessions.is_empty())
        .collect();
    let share = MAX_NOTE_BYTES.saturating_sub(footer.len() + cut_line.len()) / groups.len().max(1);
    let mut html = String::new();
    for group in groups {
        group_html(&mut html, result, group, share);
    }
    html.push_str(&cut_line);
    html.push_str(&footer);
    html
}

/// One identity's part of the note, in at most `share` bytes.
fn group_html(html: &mut String, result: &LookupResult, group: &IdentityResult, share: usize) {
    let heading = format!(
        "<p><strong>{}</strong></p>\n<ul>\n",
        escape(&render::sessions_heading(group))
    );
    let summary = match &group.summary {
        Some(SummaryOutcome::Ready(text)) => {
            let open = "<p><strong>Summary</strong>: ";
            let room = (share / 2).saturating_sub(open.len() + "</p>\n".len());
            format!("{open}{}</p>\n", cut_bytes(&escape_multiline(text), room))
        }
        Some(SummaryOutcome::Unavailable(reason)) => {
            let room = (share / 2).saturating_sub(40);
            format!(
                "<p><em>No summary: {}</em></p>\n",
                cut_bytes(&escape(reason), room)
            )
        }
        None => String::new(),
    };
    let went_wrong = went_wrong_html(group, share / 4);
    let room =
        share.saturating_sub(heading.len() + "</ul>\n".len() + summary.len() + went_wrong.len());
    let mut lines = Lines::bytes(room, MORE_RESERVE, "\n");
    for session in &group.sessions {
        let when = escape(&render::utc(session.created));
        let mut line = if is_web_url(&session.url) && session.url.len() <= MAX_URL_BYTES {
            format!("<li><a href=\"{}\">{when}</a>", escape(&session.url))
        } else {
            format!("<li>{when} · session {}", escape(session.id.as_str()))
        };
        if session.likely {
            let _ = write!(
                line,
                " · <strong>{}</strong> ({})",
                render::LIKELY,
                escape(render::likely_reason(result))
            );
            if let Some(digest) = render::digest_line(group) {
                let _ = write!(line, "<br>{}", escape(&digest));
            }
        }
        line.push_str("</li>");
        lines.push(line);
    }
    html.push_str(&heading);
    let list = lines.finish(|n| {
        format!(
            "<li>{n} more session{} not shown</li>",
            if n == 1 { "" } else { "s" }
        )
    });
    if !list.is_empty() {
        html.push_str(&list);
        html.push('\n');
    }
    html.push_str("</ul>\n");
    html.push_str(&went_wrong);
    html.push_str(&summary);
}

/// The "N more identities were not looked up" paragraph, when the request was cut.
fn not_looked_up_html(result: &LookupResult) -> String {
    render::not_looked_up(result)
        .map(|line| format!("<p><em>{}</em></p>\n", escape(&line)))
        .unwrap_or_default()
}

/// The likely session's "what went wrong" list, within `room` bytes (whole items only).
fn went_wrong_html(group: &IdentityResult, room: usize) -> String {
    let lines = render::went_wrong_lines(group);
    if lines.is_empty() {
        return String::new();
    }
    let open = format!(
        "<p><strong>{}</strong></p>\n<ul>\n",
        render::WENT_WRONG_HEADING
    );
    let close = "</ul>\n";
    let mut html = open.clone();
    for line in lines {
        let item = format!("<li>{}</li>\n", escape(&line));
        if html.len() + item.len() + close.len() > room {
            break;
        }
        html.push_str(&item);
    }
    if html.len() == open.len() {
        return String::new();
    }
    html.push_str(close);
    html
}

/// The short note when nobody in the ticket has sessions.
pub fn empty_note(result: &LookupResult, reference: &str) -> String {
    let footer = footer(reference);
    let cut_line = not_looked_up_html(result);
    let mut lines = Lines::bytes(
        MAX_NOTE_BYTES.saturating_sub(footer.len() + cut_line.len() + 1),
        MORE_RESERVE,
        "\n",
    );
    for group in &result.identities {
        lines.push(format!(
            "<p>{}</p>",
            escape(&render::no_sessions(group, result.lookback_days))
        ));
    }
    let mut html = lines.finish(|n| format!("<p>and {n} more without sessions</p>"));
    html.push('\n');
    html.push_str(&cut_line);
    html.push_str(&footer);
    html
}

/// The note when no answer will come: the reason in the agent's words and the job reference an admin
/// can replay (the command in it as `<code>`).
pub fn failure_note(message: &str, job_reference: &str, reference: &str) -> String {
    format!(
        "<p>{}</p>\n<p><small>Reference: {}</small></p>\n{}",
        escape_with_code(&cut_bytes(message, MAX_NOTE_BYTES / 4)),
        escape_with_code(&cut_bytes(job_reference, MAX_NOTE_BYTES / 4)),
        footer(reference)
    )
}

/// The note an escalation leaves at its place: "Escalated to LIN-123 (Linear)", the key a link to
/// the issue.
pub fn escalated_note(escalated: &crate::answer::Escalated, reference: &str) -> String {
    let key = escape(&cut_bytes(&escalated.key, 200));
    let issue = if is_web_url(&escalated.url) && escalated.url.len() <= MAX_URL_BYTES {
        format!("<a href=\"{}\">{key}</a>", escape(&escalated.url))
    } else {
        key
    };
    let verb = if escalated.linked {
        "Linked to"
    } else {
        "Escalated to"
    };
    format!(
        "<p>{verb} {issue} ({}).</p>\n{}",
        escape(&cut_bytes(&escalated.tracker, 50)),
        footer(reference)
    )
}

/// The lines of the plain note posted when Zendesk refused the HTML one (see [`plain_note`]).
pub fn plain_lines(answer: &Answer<'_>) -> Vec<String> {
    let link = |url: &str| (is_web_url(url) && url.len() <= MAX_URL_BYTES).then(|| url.to_owned());
    render::fallback_lines(answer, str::to_owned, link)
}

/// The plain note: a plain-text `body` of `lines` (replay links, which Zendesk makes clickable), the
/// ledger's reference on its last line, within [`MAX_NOTE_BYTES`].
pub fn plain_note(lines: &[String], reference: &str) -> String {
    let last = format!("replaydesk · ref {reference}");
    let mut kept = Lines::bytes(
        MAX_NOTE_BYTES.saturating_sub(last.len() + 2),
        MORE_RESERVE,
        "\n",
    );
    for line in lines {
        kept.push(cut_bytes(line, MAX_NOTE_BYTES / 4));
    }
    format!("{}\n\n{last}", kept.finish(|n| format!("… and {n} more")))
}

/// A summary asked for on its own (a summary job answered on a ticket).
pub fn summary_note(url: Option<&str>, outcome: &SummaryOutcome, reference: &str) -> String {
    let session = match url.filter(|u| is_web_url(u) && u.len() <= MAX_URL_BYTES) {
        Some(url) => format!("<a href=\"{}\">this session</a>", escape(url)),
        None => "this session".to_owned(),
    };
    let room = MAX_NOTE_BYTES.saturating_sub(1_000 + session.len());
    let body = match outcome {
        SummaryOutcome::Ready(text) => format!(
            "<p><strong>Summary</strong> of {session}: {}</p>\n",
            cut_bytes(&escape_multiline(text), room)
        ),
        SummaryOutcome::Unavailable(reason) => {
            format!(
                "<p><em>No summary of {session}: {}</em></p>\n",
                cut_bytes(&escape(reason), room)
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
        escape_with_code(&render::erasure_heading(email, receipt))
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

/// [`escape`], showing what our own texts put between backticks (a command to run) as `<code>`: pairs of
/// backticks become `<code>…</code>`; an unpaired one stays as it is.
fn escape_with_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    if parts.len().is_multiple_of(2) {
        return escape(text);
    }
    parts
        .iter()
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

/// [`escape`], keeping line breaks as `<br>`.
fn escape_multiline(text: &str) -> String {
    text.trim()
        .lines()
        .map(escape)
        .collect::<Vec<_>>()
        .join("<br>")
}
