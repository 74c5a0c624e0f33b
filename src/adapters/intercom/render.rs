//! The inbox app's canvas (Canvas Kit, npm `intercom-client` 6.x `CanvasObject`): pure functions from a
//! lookup result to `{"canvas": {"content": {"components": […]}, "stored_data": {…}}}`, snapshot-tested
//! and checked against Intercom's published types by `tests/contracts`.
//!
//! What it shows, per identity: a header (who, redacted, and how many sessions), the sessions as a list
//! whose items open the replay (`url` action; the likely one marked, with why and its digest line),
//! what went wrong, and FullStory's summary when one was asked for; then the buttons (Summarize, Digest,
//! Escalate to Linear / Jira, Add as note, Refresh, each a `submit` action whose `id` the submit request
//! names).
//!
//! **Within 64 KB by construction.** Intercom takes a canvas's `content` and its `stored_data` up to
//! 64 KB each. Components are added only while the serialized `content` stays within
//! [`MAX_CONTENT_BYTES`] (with room kept for the buttons and a last "N more not shown" line); a text is
//! cut after escaping ([`crate::render::limits::cut_bytes`]); a replay URL over [`MAX_URL_BYTES`] gets
//! no link. `stored_data` holds only ids, one URL and times ([`super::stored`]).
//!
//! **Escaping.** Canvas Kit's text renders Markdown (bold, links): every text from outside (summaries,
//! what went wrong, who) has Markdown's punctuation backslash-escaped, so FullStory's words cannot make
//! a link or bold text; list item titles are ours.

use serde_json::{Value, json};

use crate::{
    escalate::Tracker,
    lookup::{IdentityResult, LookupResult, SummaryOutcome},
    render::{self, limits::cut_bytes},
};

/// The most a canvas's serialized `content` weighs here (Intercom: 64 KB).
pub const MAX_CONTENT_BYTES: usize = 60_000;
const _: () = assert!(
    MAX_CONTENT_BYTES < 64_000,
    "Intercom takes at most 64 KB of content"
);
/// The most its serialized `stored_data` weighs here (Intercom: 64 KB).
pub const MAX_STORED_BYTES: usize = 8_000;
/// The longest replay URL made a link.
pub const MAX_URL_BYTES: usize = 2_000;
/// The longest one text component (a summary, a line of what went wrong) is shown.
const MAX_TEXT_BYTES: usize = 6_000;
/// Room kept for the buttons and the "more not shown" line.
const RESERVE: usize = 2_000;

/// The buttons a canvas offers (each a `submit` action; its `id` comes back as `component_id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Button {
    Summarize,
    /// The likely session's digest, with `fullstory.digest = "on_request"` (an on-request Activation).
    Digest,
    /// The likely session escalated to a tracker (issue 25): one button per tracker that is on.
    Escalate(Tracker),
    AddNote,
    Refresh,
}

impl Button {
    pub const fn id(self) -> &'static str {
        match self {
            Self::Summarize => "summarize",
            Self::Digest => "digest",
            Self::Escalate(Tracker::Linear) => "escalate_linear",
            Self::Escalate(Tracker::Jira) => "escalate_jira",
            Self::AddNote => "add_note",
            Self::Refresh => "refresh",
        }
    }

    /// The button a submit request's `component_id` names.
    pub fn named(id: &str) -> Option<Self> {
        [
            Self::Summarize,
            Self::Digest,
            Self::Escalate(Tracker::Linear),
            Self::Escalate(Tracker::Jira),
            Self::AddNote,
            Self::Refresh,
        ]
        .into_iter()
        .find(|b| b.id() == id)
    }

    fn component(self) -> Value {
        let (label, style) = match self {
            Self::Summarize => ("Summarize".to_owned(), "primary"),
            Self::Digest => ("Digest".to_owned(), "secondary"),
            Self::Escalate(tracker) => (format!("Escalate to {tracker}"), "secondary"),
            Self::AddNote => ("Add as note".to_owned(), "secondary"),
            Self::Refresh => ("Refresh".to_owned(), "secondary"),
        };
        json!({"type": "button", "id": self.id(), "label": label, "style": style,
               "action": {"type": "submit"}})
    }
}

/// Components added while they fit ([`MAX_CONTENT_BYTES`]), the rest counted.
struct Components {
    kept: Vec<Value>,
    used: usize,
    left_out: usize,
}

impl Components {
    fn new() -> Self {
        Self {
            kept: Vec::new(),
            used: r#"{"components":[]}"#.len(),
            left_out: 0,
        }
    }

    /// Adds `component` when it fits with the reserve kept (and nothing was left out before it).
    fn push(&mut self, component: Value) {
        let size = component.to_string().len() + 1;
        if self.left_out == 0 && self.used + size + RESERVE <= MAX_CONTENT_BYTES {
            self.used += size;
            self.kept.push(component);
        } else {
            self.left_out += 1;
        }
    }

    /// The content with `buttons` (which the reserve holds), and a last line when parts were left out.
    fn finish(mut self, buttons: &[Button]) -> Value {
        if self.left_out > 0 {
            let n = self.left_out;
            self.kept.push(text(
                &format!(
                    "{n} more part{} not shown here.",
                    if n == 1 { "" } else { "s" }
                ),
                "muted",
            ));
        }
        if !buttons.is_empty() {
            self.kept.push(json!({"type": "divider"}));
        }
        self.kept.extend(buttons.iter().map(|b| b.component()));
        json!({"components": self.kept})
    }
}

/// A text component (`style`: `header`, `paragraph`, `muted`, `error`) of our own words or escaped ones.
fn text(words: &str, style: &str) -> Value {
    json!({"type": "text", "text": words, "style": style})
}

/// `text` from outside, Markdown-escaped and cut to `max` bytes.
fn outside(text: &str, max: usize) -> String {
    cut_bytes(&escape(text), max)
}

/// Backslash-escapes Markdown's punctuation (and drops `<`/`>` to their entities), so text from
/// outside renders as written.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '*' | '_' | '`' | '[' | ']' | '(' | ')' | '#' | '~' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn is_link(url: &str) -> bool {
    url.len() <= MAX_URL_BYTES
        && reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
}

/// One identity's part: header, sessions, what went wrong, summary.
fn group(components: &mut Components, result: &LookupResult, n: usize, group: &IdentityResult) {
    if group.sessions.is_empty() {
        components.push(text(
            &outside(
                &render::no_sessions(group, result.lookback_days),
                MAX_TEXT_BYTES,
            ),
            "paragraph",
        ));
        return;
    }
    components.push(text(
        &outside(&render::sessions_heading(group), MAX_TEXT_BYTES),
        "header",
    ));
    let items: Vec<Value> = group
        .sessions
        .iter()
        .enumerate()
        .map(|(i, session)| {
            let mut title = render::utc(session.created);
            let mut item = json!({"type": "item", "id": format!("session-{n}-{i}")});
            if session.likely {
                title.push_str(&format!(" · {}", render::LIKELY));
                item["subtitle"] = json!(render::likely_reason(result));
                if let Some(digest) = render::digest_line(group) {
                    item["tertiary_text"] = json!(cut_bytes(&digest, 500));
                }
            }
            item["title"] = json!(title);
            if is_link(&session.url) {
                item["action"] = json!({"type": "url", "url": session.url});
            }
            item
        })
        .collect();
    // A list too large for what is left is shown as far as it fits, in lists of ten.
    for chunk in items.chunks(10) {
        components.push(json!({"type": "list", "items": chunk}));
    }
    let went_wrong = render::went_wrong_lines(group);
    if !went_wrong.is_empty() {
        components.push(text(render::WENT_WRONG_HEADING, "muted"));
        for line in went_wrong {
            components.push(text(&outside(&line, 1_000), "paragraph"));
        }
    }
    match &group.summary {
        Some(SummaryOutcome::Ready(summary)) => components.push(text(
            &format!("**Summary**: {}", outside(summary, MAX_TEXT_BYTES)),
            "paragraph",
        )),
        Some(SummaryOutcome::Unavailable(why)) => components.push(text(
            &format!("No summary: {}", outside(why, 1_000)),
            "muted",
        )),
        None => {}
    }
}

/// The canvas listing `result` (see the module docs), with `buttons` and `stored_data`.
pub fn sessions(result: &LookupResult, buttons: &[Button], stored: &Value) -> Value {
    let mut components = Components::new();
    for (n, identity) in result.identities.iter().enumerate() {
        group(&mut components, result, n, identity);
    }
    if let Some(line) = render::not_looked_up(result) {
        components.push(text(&outside(&line, 1_000), "muted"));
    }
    canvas(components.finish(buttons), stored)
}

/// A canvas of one message (`loading`, `busy`, a failure, "nothing to look up", a note on its way)
/// and `buttons`.
pub fn message(words: &str, style: &str, buttons: &[Button], stored: &Value) -> Value {
    let mut components = Components::new();
    components.push(text(&outside(words, MAX_TEXT_BYTES), style));
    canvas(components.finish(buttons), stored)
}

/// A summary of one session above the sessions canvas (what "Summarize" answers).
pub fn with_summary(
    result: &LookupResult,
    summary: &SummaryOutcome,
    buttons: &[Button],
    stored: &Value,
) -> Value {
    let mut components = Components::new();
    components.push(match summary {
        SummaryOutcome::Ready(words) => text(
            &format!(
                "**Summary of the likely session**: {}",
                outside(words, MAX_TEXT_BYTES * 2)
            ),
            "paragraph",
        ),
        SummaryOutcome::Unavailable(why) => {
            text(&format!("No summary: {}", outside(why, 1_000)), "muted")
        }
    });
    components.push(json!({"type": "divider"}));
    for (n, identity) in result.identities.iter().enumerate() {
        group(&mut components, result, n, identity);
    }
    canvas(components.finish(buttons), stored)
}

fn canvas(content: Value, stored: &Value) -> Value {
    let mut canvas = json!({"content": content});
    if !stored.is_null() && stored.to_string().len() <= MAX_STORED_BYTES {
        canvas["stored_data"] = stored.clone();
    }
    json!({"canvas": canvas})
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::render::sample::sample_result;

    fn stored() -> Value {
        json!({"state": {"v": 1, "conversation": "123"}, "sig": "00"})
    }

    #[test]
    fn the_sessions_canvas_marks_the_likely_session_with_its_digest_and_the_buttons() {
        let canvas = sessions(
            &sample_result(),
            &[Button::Summarize, Button::AddNote],
            &stored(),
        );
        insta::assert_json_snapshot!(canvas);
    }

    #[test]
    fn a_summary_shows_above_the_sessions_and_escapes_markdown() {
        let canvas = with_summary(
            &sample_result(),
            &SummaryOutcome::Ready("Tried to [pay](https://evil.example) **twice**.".into()),
            &[Button::AddNote],
            &stored(),
        );
        let first = canvas["canvas"]["content"]["components"][0]["text"]
            .as_str()
            .unwrap();
        assert!(
            first.contains(r"\[pay\]\(https://evil.example\) \*\*twice\*\*"),
            "{first}"
        );
        insta::assert_json_snapshot!(canvas);
    }

    #[test]
    fn loading_is_a_message_with_refresh() {
        insta::assert_json_snapshot!(message(
            "Looking up replays… FullStory is taking a while; press Refresh in a moment.",
            "muted",
            &[Button::Refresh],
            &stored(),
        ));
    }

    #[test]
    fn buttons_are_named_back_by_their_ids() {
        for button in [
            Button::Summarize,
            Button::Digest,
            Button::AddNote,
            Button::Refresh,
        ] {
            assert_eq!(Button::named(button.id()), Some(button));
        }
        assert_eq!(Button::named("escalate"), None);
    }
}
