//! What an escalated issue says: the words an agent would have typed, built once ([`Report`]) and
//! written in each tracker's format (Linear: Markdown, [`Report::markdown`]; Jira: Atlassian Document
//! Format, [`super::adf`]).
//!
//! The issue carries: a title (the asker's, else the first thing that went wrong, else "Support
//! escalation", with the customer masked); the customer, **masked** (`j•••@acme.com`) unless
//! `escalate.include_email = true`; the likely session's link and start; the digest; what went wrong,
//! each item with its time into the session ("3:32 into the session: console error: …"; the texts are
//! scrubbed already, [`crate::lookup::WhatWentWrong`]); the summary when there is one and the note the
//! agent added (both with every email address masked); the source (the Zendesk ticket, the Slack
//! message, the Discord message); who escalated, by their name on that platform (never an email).
//!
//! # Limits, by construction
//! Jira Cloud refuses a summary over 255 characters and a description over 32,767 (400); Linear
//! documents no limits for `title` and `description` (none found in its public pages), so the same
//! budget is used for both. Every part is cut to its own size here ([`TITLE_MAX`], [`NOTE_MAX`],
//! [`SUMMARY_MAX`], …; the agent's multi-line texts to at most [`MAX_LINES`] lines; a link over
//! [`URL_MAX`] is left out), so the written description stays under [`DESCRIPTION_MAX`] even when every
//! character needs escaping, whatever the inputs: a property test writes both formats from arbitrary
//! inputs and measures them (UTF-16 code units, [`crate::render::limits::len`]).

use chrono::{DateTime, Utc};

use crate::{
    identity::{CustomerEmail, redact_emails},
    lookup::{Digest, FoundSession, WhatWentWrong},
    render::limits::{cut, len},
};

/// Longest title (Jira's summary takes 255; one under, as Jira counts).
pub const TITLE_MAX: usize = 254;
/// Longest description either tracker is sent (Jira's 32,767).
pub const DESCRIPTION_MAX: usize = 32_767;
/// Longest summary kept.
pub const SUMMARY_MAX: usize = 5_000;
/// Longest note from the agent.
pub const NOTE_MAX: usize = 2_000;
/// Longest link kept (a longer one is left out, never cut: a cut link leads nowhere).
pub const URL_MAX: usize = 2_000;
/// Longest short field (the source's words, the asker's name).
pub const SHORT_MAX: usize = 200;
/// Lines kept of a multi-line text (the rest joined to the last one).
pub const MAX_LINES: usize = 20;

/// Text with a link or emphasis, inside a paragraph or list item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inline {
    Text(String),
    Strong(String),
    Link { text: String, url: String },
}

/// One block of the description.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    Paragraph(Vec<Inline>),
    Heading(String),
    Bullets(Vec<Vec<Inline>>),
}

/// An issue's title and description, platform-neutral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// What an escalation knows, for its report.
#[derive(Clone, Debug)]
pub struct Facts<'a> {
    pub customer: &'a CustomerEmail,
    /// `escalate.include_email`.
    pub include_email: bool,
    /// The session escalated (the likely one), when one was found.
    pub session: Option<&'a FoundSession>,
    /// Why that one ([`crate::render::likely_reason`]).
    pub likely_reason: Option<&'a str>,
    pub digest: Option<&'a Digest>,
    pub summary: Option<&'a str>,
    /// The source in words ("Zendesk ticket #123") and its link.
    pub source_label: &'a str,
    pub source_url: Option<&'a str>,
    /// Who escalated, by their name on that platform ("Ada Lovelace (Slack)").
    pub escalated_by: &'a str,
    pub note: Option<&'a str>,
    /// The asker's title, when they gave one.
    pub title: Option<&'a str>,
}

/// `secs` into a session as `m:ss` (`3:32`), or `h:mm:ss` past an hour.
pub fn offset(secs: i64) -> String {
    let secs = secs.max(0);
    if secs >= 3_600 {
        format!("{}:{:02}:{:02}", secs / 3_600, (secs / 60) % 60, secs % 60)
    } else {
        format!("{}:{:02}", secs / 60, secs % 60)
    }
}

/// One line of text: control characters (line breaks included) as spaces, trimmed, cut to `max`.
fn line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    cut(flat.trim(), max)
}

/// A multi-line text: emails masked, control characters other than line breaks dropped, at most
/// [`MAX_LINES`] non-empty lines (the rest joined to the last), cut to `max`.
fn lines(text: &str, max: usize) -> Vec<String> {
    let masked = redact_emails(text);
    let cleaned: String = masked
        .chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect();
    let cut_text = cut(cleaned.trim(), max);
    let mut out: Vec<String> = Vec::new();
    for part in cut_text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if out.len() < MAX_LINES {
            out.push(part.to_owned());
        } else if let Some(last) = out.last_mut() {
            last.push(' ');
            last.push_str(part);
        }
    }
    out
}

/// A link, when it is one a person may open and short enough to keep whole.
fn link(url: &str) -> Option<String> {
    let url = crate::outbound::web_link(url)?;
    let text = url.to_string();
    (len(&text) <= URL_MAX).then_some(text)
}

/// Each item of what went wrong, with its time into the session.
pub fn went_wrong_items(went: &WhatWentWrong) -> Vec<String> {
    let mut items = Vec::new();
    for (moments, what) in [
        (&went.console_errors, "console error: "),
        (&went.failed_requests, "failed request: "),
        (&went.frustrated_pages, ""),
    ] {
        for moment in moments {
            let at = moment
                .offset_secs
                .map(|s| format!("{} into the session: ", offset(s)))
                .unwrap_or_default();
            items.push(line(&format!("{at}{what}{}", moment.text), SHORT_MAX));
        }
    }
    items
}

fn field(name: &str, value: Vec<Inline>) -> Block {
    let mut content = vec![Inline::Strong(format!("{name}:")), Inline::Text(" ".into())];
    content.extend(value);
    Block::Paragraph(content)
}

fn text(value: String) -> Vec<Inline> {
    vec![Inline::Text(value)]
}

impl Report {
    /// The report of an escalation (see the module docs for what it says and its limits).
    pub fn new(facts: &Facts<'_>) -> Self {
        let customer = if facts.include_email {
            facts.customer.as_str().to_owned()
        } else {
            facts.customer.redacted()
        };
        let went = facts
            .digest
            .map(|d| went_wrong_items(&d.went_wrong))
            .unwrap_or_default();
        let title = match facts.title.map(|t| line(&redact_emails(t), TITLE_MAX)) {
            Some(title) if !title.is_empty() => title,
            _ => match went.first() {
                Some(first) => line(&format!("{first} ({customer})"), TITLE_MAX),
                None => line(&format!("Support escalation: {customer}"), TITLE_MAX),
            },
        };

        let mut blocks = vec![field("Customer", text(line(&customer, SHORT_MAX * 2)))];
        match facts.session {
            Some(session) => {
                let started = crate::render::utc(session.created);
                let mut value = match link(&session.url) {
                    Some(url) => vec![Inline::Link {
                        text: "open the replay".into(),
                        url,
                    }],
                    None => text(line(session.id.as_str(), SHORT_MAX)),
                };
                let why = facts
                    .likely_reason
                    .map(|r| format!(", the likely one ({})", line(r, SHORT_MAX)))
                    .unwrap_or_default();
                value.push(Inline::Text(format!(" (started {started}{why})")));
                blocks.push(field("Session", value));
            }
            None => blocks.push(field(
                "Session",
                text("none found for this customer in the lookback window".into()),
            )),
        }
        if let Some(digest) = facts.digest {
            blocks.push(field("Digest", text(line(&digest.line(), SHORT_MAX * 2))));
        }
        if !went.is_empty() {
            blocks.push(Block::Heading(crate::render::WENT_WRONG_HEADING.into()));
            blocks.push(Block::Bullets(went.into_iter().map(text).collect()));
        }
        if let Some(summary) = facts.summary {
            let summary = lines(summary, SUMMARY_MAX);
            if !summary.is_empty() {
                blocks.push(Block::Heading("Summary".into()));
                blocks.extend(summary.into_iter().map(|l| Block::Paragraph(text(l))));
            }
        }
        if let Some(note) = facts.note {
            let note = lines(note, NOTE_MAX);
            if !note.is_empty() {
                blocks.push(Block::Heading("Note".into()));
                blocks.extend(note.into_iter().map(|l| Block::Paragraph(text(l))));
            }
        }
        let label = line(&redact_emails(facts.source_label), SHORT_MAX);
        let label = if label.is_empty() {
            "the request".to_owned()
        } else {
            label
        };
        blocks.push(field(
            "Source",
            match facts.source_url.and_then(link) {
                Some(url) => vec![Inline::Link { text: label, url }],
                None => text(label),
            },
        ));
        let by = line(&redact_emails(facts.escalated_by), SHORT_MAX);
        if !by.is_empty() {
            blocks.push(field("Escalated by", text(by)));
        }
        blocks.push(Block::Paragraph(text(
            "Escalated with replaydesk: the customer's session replay, where support happens."
                .into(),
        )));
        Self { title, blocks }
    }

    /// The description as Markdown (Linear), every text escaped.
    pub fn markdown(&self) -> String {
        let inline = |parts: &[Inline]| -> String {
            parts
                .iter()
                .map(|part| match part {
                    Inline::Text(t) => escape_markdown(t),
                    Inline::Strong(t) => format!("**{}**", escape_markdown(t)),
                    Inline::Link { text, url } => {
                        format!("[{}](<{}>)", escape_markdown(text), url.replace('>', "%3E"))
                    }
                })
                .collect()
        };
        let mut out = Vec::new();
        for block in &self.blocks {
            match block {
                Block::Paragraph(parts) => out.push(inline(parts)),
                Block::Heading(t) => out.push(format!("### {}", escape_markdown(t))),
                Block::Bullets(items) => out.push(
                    items
                        .iter()
                        .map(|item| format!("- {}", inline(item)))
                        .collect::<Vec<_>>()
                        .join("\n"),
                ),
            }
        }
        out.join("\n\n")
    }
}

/// Markdown's special characters escaped with a backslash, so a customer's text never becomes a link,
/// a heading or emphasis.
fn escape_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '|' | '~' | '!'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// When the session is about, for a line under the link ("3:32 into the session" of the first thing
/// that went wrong), when known.
pub fn moment_line(digest: Option<&Digest>, started: Option<DateTime<Utc>>) -> Option<String> {
    let went = &digest?.went_wrong;
    let first = went
        .console_errors
        .iter()
        .chain(&went.failed_requests)
        .chain(&went.frustrated_pages)
        .filter_map(|m| m.offset_secs)
        .min()?;
    let started = started.map(crate::render::utc).unwrap_or_default();
    Some(line(
        &format!(
            "first problem {} into the session {}",
            offset(first),
            if started.is_empty() {
                String::new()
            } else {
                format!("(started {started})")
            }
        ),
        SHORT_MAX,
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use crate::fullstory::SessionId;
    use crate::lookup::Moment;
    use proptest::prelude::*;

    fn session() -> FoundSession {
        FoundSession {
            id: SessionId::new("123:456").unwrap(),
            url: "https://app.fullstory.com/ui/o-1/session/123%3A456".into(),
            created: "2026-11-20T14:02:00Z".parse().unwrap(),
            likely: true,
        }
    }

    fn digest() -> Digest {
        Digest {
            pages: 6,
            errors: 2,
            duration_secs: Some(420),
            went_wrong: WhatWentWrong {
                console_errors: vec![Moment {
                    offset_secs: Some(212),
                    text: "TypeError: cart is undefined".into(),
                }],
                failed_requests: vec![Moment {
                    offset_secs: Some(215),
                    text: "POST /api/pay → 502".into(),
                }],
                frustrated_pages: vec![],
            },
            ..Digest::default()
        }
    }

    /// A report as an escalation from a Zendesk ticket makes it (for the other modules' tests).
    pub(crate) fn sample() -> Report {
        let jane = CustomerEmail::parse("jane@acme.com").unwrap();
        let (session, digest) = (session(), digest());
        Report::new(&Facts {
            customer: &jane,
            include_email: false,
            session: Some(&session),
            likely_reason: Some("live at or just before the time in question"),
            digest: Some(&digest),
            summary: Some("Jane (jane@acme.com) tried to pay twice.\nThen she gave up."),
            source_label: "Zendesk ticket #35437",
            source_url: Some("https://acme.zendesk.com/agent/tickets/35437"),
            escalated_by: "Ada Lovelace (Zendesk)",
            note: Some("Happens on Safari only"),
            title: None,
        })
    }

    #[test]
    fn the_report_says_what_an_agent_would_have_typed_with_the_customer_masked() {
        let jane = CustomerEmail::parse("jane@acme.com").unwrap();
        let (session, digest) = (session(), digest());
        let facts = Facts {
            customer: &jane,
            include_email: false,
            session: Some(&session),
            likely_reason: Some("live at or just before the time in question"),
            digest: Some(&digest),
            summary: Some("Jane (jane@acme.com) tried to pay twice."),
            source_label: "Zendesk ticket #35437",
            source_url: Some("https://acme.zendesk.com/agent/tickets/35437"),
            escalated_by: "Ada Lovelace (Zendesk)",
            note: Some("Happens on Safari only"),
            title: None,
        };
        let report = Report::new(&facts);
        assert_eq!(
            report.title,
            "3:32 into the session: console error: TypeError: cart is undefined (j•••@acme.com)"
        );
        let md = report.markdown();
        assert!(md.contains("**Customer:** j•••@acme.com"), "{md}");
        assert!(!md.contains("jane@acme.com"), "{md}");
        assert!(
            md.contains("[open the replay](<https://app.fullstory.com/ui/o-1/session/123%3A456>)"),
            "{md}"
        );
        assert!(
            md.contains("- 3:32 into the session: console error: TypeError: cart is undefined"),
            "{md}"
        );
        assert!(
            md.contains("- 3:35 into the session: failed request: POST /api/pay → 502"),
            "{md}"
        );
        assert!(
            md.contains("Jane \\(j•••@acme.com\\) tried to pay twice."),
            "{md}"
        );
        assert!(
            md.contains(
                "[Zendesk ticket \\#35437](<https://acme.zendesk.com/agent/tickets/35437>)"
            ),
            "{md}"
        );
        assert!(
            md.contains("**Escalated by:** Ada Lovelace \\(Zendesk\\)"),
            "{md}"
        );
        assert!(md.contains("Happens on Safari only"), "{md}");

        let full = Report::new(&Facts {
            include_email: true,
            ..facts
        });
        assert!(full.markdown().contains("**Customer:** jane@acme.com"));
    }

    #[test]
    fn a_time_into_the_session_reads_as_a_clock() {
        assert_eq!(offset(0), "0:00");
        assert_eq!(offset(212), "3:32");
        assert_eq!(offset(3_725), "1:02:05");
        assert_eq!(offset(-5), "0:00");
    }

    #[test]
    fn customer_text_never_becomes_markdown() {
        assert_eq!(
            escape_markdown("[click](javascript:x) **b** # h"),
            "\\[click\\]\\(javascript:x\\) \\*\\*b\\*\\* \\# h"
        );
    }

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,300}",
            "[\"\\\\\n\u{1}<>&*_\\[\\]]{0,12000}",
            "(line\n){0,3000}",
            "\\PC{0,9000}",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn every_report_fits_both_trackers_whatever_it_is_given(
            summary in any_text(),
            note in any_text(),
            title in any_text(),
            label in any_text(),
            by in any_text(),
            url_tail in "[a-z0-9%\"/]{0,4000}",
            went_text in any_text(),
            include_email in any::<bool>(),
        ) {
            let jane = CustomerEmail::parse("jane@acme.com").unwrap();
            let mut session = session();
            session.url = format!("https://app.fullstory.com/{url_tail}");
            let moment = Moment { offset_secs: Some(99_999), text: went_text };
            let mut digest = digest();
            digest.last_url = Some(url_tail.clone());
            digest.went_wrong = WhatWentWrong {
                console_errors: vec![moment.clone(); 3],
                failed_requests: vec![moment.clone(); 3],
                frustrated_pages: vec![moment; 3],
            };
            let source_url = format!("https://acme.zendesk.com/{url_tail}");
            let report = Report::new(&Facts {
                customer: &jane,
                include_email,
                session: Some(&session),
                likely_reason: Some(&label),
                digest: Some(&digest),
                summary: Some(&summary),
                source_label: &label,
                source_url: Some(&source_url),
                escalated_by: &by,
                note: Some(&note),
                title: Some(&title),
            });
            prop_assert!(!report.title.is_empty());
            prop_assert!(len(&report.title) <= TITLE_MAX);
            let md = report.markdown();
            prop_assert!(len(&md) <= DESCRIPTION_MAX, "markdown {}", len(&md));
            let adf = super::super::adf::document(&report).to_string();
            prop_assert!(len(&adf) <= DESCRIPTION_MAX, "adf {}", len(&adf));
            prop_assert!(super::super::adf::every_text_has_content(&super::super::adf::document(&report)));
        }
    }
}
