//! "What went wrong" in the likely session: the console errors, the failed requests and the pages where
//! the customer rage- or dead-clicked, each with its time into the session.
//!
//! Why here: support teams ask "show me what failed" before they ask anything else, and the answer is in
//! the events the digest already reads (one metered call for the likely session, made only when the
//! digest is on): it costs the customer no extra FullStory quota.
//!
//! Private by default: error messages and URLs can hold personal data, so every text is scrubbed before
//! it leaves this module ([`scrub`]): emails masked (`j•••@acme.com`), query strings and fragments
//! dropped, long digit runs and token-like strings replaced, cut short. `fullstory.what_went_wrong =
//! false` turns the list off. Each list holds at most [`MAX_PER_LIST`] distinct items, so an answer
//! stays small whatever the session holds.

use std::{collections::HashSet, sync::LazyLock};

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::Serialize;

use crate::{
    fullstory::{EventKind, SessionEvent},
    identity::redact_emails,
};

/// Items per list.
pub const MAX_PER_LIST: usize = 3;
/// Longest text of one item, in characters.
pub const MAX_TEXT: usize = 120;

/// One thing that went wrong, `offset_secs` into the session.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Moment {
    /// Seconds from the session's start; `None` when the event had no usable time.
    pub offset_secs: Option<i64>,
    /// Already scrubbed ([`scrub`]).
    pub text: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WhatWentWrong {
    /// Distinct console errors (their messages).
    pub console_errors: Vec<Moment>,
    /// Failed requests: `POST /api/pay → 502`.
    pub failed_requests: Vec<Moment>,
    /// Pages with rage or dead clicks: `3 rage clicks on /checkout`, at the first of them.
    pub frustrated_pages: Vec<Moment>,
}

impl WhatWentWrong {
    pub fn is_empty(&self) -> bool {
        self.console_errors.is_empty()
            && self.failed_requests.is_empty()
            && self.frustrated_pages.is_empty()
    }

    /// Reads the session's events (any order); `start` is the session's start, for the offsets. An
    /// offset before the start or more than a day after it is left out (a bad stamp, not a moment).
    pub fn from_events(events: &[SessionEvent], start: DateTime<Utc>) -> Self {
        let mut sorted: Vec<&SessionEvent> = events.iter().collect();
        sorted.sort_by_key(|e| e.at);
        let offset = |e: &SessionEvent| {
            e.at.map(|at| (at - start).num_seconds())
                .filter(|s| (0..=86_400).contains(s))
        };
        let mut went = Self::default();
        let mut seen = HashSet::new();
        let mut page: Option<String> = None;
        // Per page: (first offset, rage clicks, dead clicks), in order of first frustration.
        let mut frustration: Vec<(String, Option<i64>, usize, usize)> = Vec::new();
        for event in sorted {
            match event.kind {
                EventKind::PageView => page = event.url.as_deref().map(path_of),
                EventKind::ConsoleError => {
                    let text = scrub(event.message.as_deref().unwrap_or("a console error"));
                    if went.console_errors.len() < MAX_PER_LIST && seen.insert(("c", text.clone()))
                    {
                        went.console_errors.push(Moment {
                            offset_secs: offset(event),
                            text,
                        });
                    }
                }
                EventKind::NetworkError => {
                    let method = event
                        .method
                        .as_deref()
                        .map(|m| m.trim().to_ascii_uppercase())
                        .filter(|m| !m.is_empty() && m.len() <= 10)
                        .unwrap_or_else(|| "request".into());
                    let path = event
                        .url
                        .as_deref()
                        .map(path_of)
                        .unwrap_or_else(|| "(unknown URL)".into());
                    let status = event
                        .status
                        .map_or_else(|| "failed".to_owned(), |s| s.to_string());
                    let text = scrub(&format!("{method} {path} → {status}"));
                    if went.failed_requests.len() < MAX_PER_LIST && seen.insert(("r", text.clone()))
                    {
                        went.failed_requests.push(Moment {
                            offset_secs: offset(event),
                            text,
                        });
                    }
                }
                EventKind::RageClick | EventKind::DeadClick => {
                    let on = event
                        .url
                        .as_deref()
                        .map(path_of)
                        .or_else(|| page.clone())
                        .unwrap_or_else(|| "(unknown page)".into());
                    let at = frustration.iter().position(|(p, ..)| *p == on);
                    let entry = match at {
                        Some(i) => &mut frustration[i],
                        None => {
                            frustration.push((on, offset(event), 0, 0));
                            let last = frustration.len() - 1;
                            &mut frustration[last]
                        }
                    };
                    if event.kind == EventKind::RageClick {
                        entry.2 += 1;
                    } else {
                        entry.3 += 1;
                    }
                }
                EventKind::Click | EventKind::ErrorClick | EventKind::Other => {}
            }
        }
        went.frustrated_pages = frustration
            .into_iter()
            .take(MAX_PER_LIST)
            .map(|(page, offset_secs, rage, dead)| {
                let counts: Vec<String> = [(rage, "rage click"), (dead, "dead click")]
                    .into_iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, what)| format!("{n} {what}{}", if n == 1 { "" } else { "s" }))
                    .collect();
                Moment {
                    offset_secs,
                    text: scrub(&format!("{} on {page}", counts.join(", "))),
                }
            })
            .collect();
        went
    }
}

impl WhatWentWrong {
    /// The list the renderers' tests and snapshots show: one of each kind, as a session with a failed
    /// payment would have them.
    #[cfg(test)]
    pub(crate) fn sample() -> Self {
        let moment = |secs, text: &str| Moment {
            offset_secs: Some(secs),
            text: text.into(),
        };
        Self {
            console_errors: vec![moment(230, "TypeError: total is undefined")],
            failed_requests: vec![moment(212, "POST /api/pay → 502")],
            frustrated_pages: vec![moment(262, "3 rage clicks on /checkout")],
        }
    }
}

/// A URL's path, without scheme, host, query or fragment (`https://a.io/pay?card=4111#x` → `/pay`);
/// text that is not a URL is returned without its query and fragment.
fn path_of(url: &str) -> String {
    let url = url.trim();
    let without_query = url.split(['?', '#']).next().unwrap_or("");
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => without_query,
    };
    if path.is_empty() {
        "/".into()
    } else {
        path.to_owned()
    }
}

static URL_RE: LazyLock<Regex> = LazyLock::new(|| compile(r#"https?://[^\s"'<>]+"#));
static DIGITS_RE: LazyLock<Regex> = LazyLock::new(|| compile(r"\d{6,}"));
static TOKEN_RE: LazyLock<Regex> = LazyLock::new(|| compile(r"[A-Za-z0-9_\-]{20,}"));
static QUERY_RE: LazyLock<Regex> = LazyLock::new(|| compile(r#"\?[^\s"'<>]*"#));

fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(re) => re,
        Err(err) => panic!("built-in pattern {pattern:?} does not compile: {err}"),
    }
}

/// Makes an error message or URL fit to show in a channel or a ticket: emails masked, query strings and
/// fragments dropped (URLs keep scheme, host and path), runs of six or more digits and token-like
/// strings (20+ letters, digits, `-` or `_`, with both a letter and a digit) replaced by `•••`, white
/// space folded, and the result cut to [`MAX_TEXT`] characters with "…".
pub fn scrub(text: &str) -> String {
    let text = redact_emails(text);
    let text = URL_RE.replace_all(&text, |caps: &regex::Captures| {
        let url = &caps[0];
        let cut = url.split(['?', '#']).next().unwrap_or("");
        cut.to_owned()
    });
    let text = QUERY_RE.replace_all(&text, "");
    let text = TOKEN_RE.replace_all(&text, |caps: &regex::Captures| {
        let word = &caps[0];
        let letters = word.chars().any(|c| c.is_ascii_alphabetic());
        let digits = word.chars().any(|c| c.is_ascii_digit());
        if letters && digits {
            "•••".to_owned()
        } else {
            word.to_owned()
        }
    });
    let text = DIGITS_RE.replace_all(&text, "•••");
    let folded = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if folded.chars().count() <= MAX_TEXT {
        return folded;
    }
    let mut cut: String = folded.chars().take(MAX_TEXT - 1).collect();
    if let Some(space) = cut.rfind(' ').filter(|i| *i > MAX_TEXT / 2) {
        cut.truncate(space);
    }
    format!("{}…", cut.trim_end())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn start() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0).single().unwrap()
    }

    fn event(kind: EventKind, secs: i64, url: Option<&str>) -> SessionEvent {
        crate::fullstory::test_event(kind, secs, url)
    }

    #[test]
    fn the_scrub_masks_emails_drops_queries_and_replaces_digits_and_tokens() {
        let cases = [
            (
                "Cannot read user jane@acme.com",
                "Cannot read user j•••@acme.com",
            ),
            (
                "GET https://shop.acme.com/pay?card=4111111111111111&email=j%40a.io#frag failed",
                "GET https://shop.acme.com/pay failed",
            ),
            ("/api/orders?id=7 → 500", "/api/orders → 500"),
            ("order 12345678 not found", "order ••• not found"),
            ("order 12345 not found", "order 12345 not found"),
            ("bad token eyJhbGciOiJIUzI1NiJ9abc123XYZ", "bad token •••"),
            (
                "TypeError: undefined_is_not_a_function_here",
                "TypeError: undefined_is_not_a_function_here",
            ),
            ("  many   spaces\n\tand lines ", "many spaces and lines"),
        ];
        for (input, expected) in cases {
            assert_eq!(scrub(input), expected, "{input}");
        }
        let long = "word ".repeat(100);
        let cut = scrub(&long);
        assert!(cut.chars().count() <= MAX_TEXT, "{cut}");
        assert!(cut.ends_with('…'));
        assert!(!cut.contains("wor…"), "cut at a word boundary: {cut}");
    }

    #[test]
    fn errors_requests_and_frustration_are_listed_with_their_time_into_the_session() {
        let mut error = event(EventKind::ConsoleError, 75, None);
        error.message = Some("TypeError: x is undefined (user jane@acme.com)".into());
        let mut again = error.clone();
        again.at = Utc.timestamp_opt(1_700_000_100, 0).single();
        let mut failed = event(
            EventKind::NetworkError,
            212,
            Some("https://shop.acme.com/api/pay?token=abc"),
        );
        failed.method = Some("post".into());
        failed.status = Some(502);
        let events = vec![
            event(EventKind::PageView, 0, Some("https://shop.acme.com/cart")),
            event(
                EventKind::PageView,
                150,
                Some("https://shop.acme.com/checkout?step=2"),
            ),
            failed,
            event(EventKind::RageClick, 230, None),
            event(EventKind::RageClick, 262, None),
            event(
                EventKind::DeadClick,
                270,
                Some("https://shop.acme.com/checkout"),
            ),
            error,
            again,
            event(EventKind::RageClick, 388, Some("https://shop.acme.com/pay")),
        ];
        let went = WhatWentWrong::from_events(&events, start());
        assert_eq!(
            went.console_errors,
            [Moment {
                offset_secs: Some(75),
                text: "TypeError: x is undefined (user j•••@acme.com)".into()
            }],
            "deduplicated"
        );
        assert_eq!(
            went.failed_requests,
            [Moment {
                offset_secs: Some(212),
                text: "POST /api/pay → 502".into()
            }]
        );
        assert_eq!(
            went.frustrated_pages,
            [
                Moment {
                    offset_secs: Some(230),
                    text: "2 rage clicks, 1 dead click on /checkout".into()
                },
                Moment {
                    offset_secs: Some(388),
                    text: "1 rage click on /pay".into()
                },
            ]
        );
    }

    #[test]
    fn each_list_is_capped_and_a_bad_time_is_no_offset() {
        let events: Vec<SessionEvent> = (0..10)
            .map(|i| {
                let mut e = event(EventKind::ConsoleError, i, None);
                e.message = Some(format!("error {i}"));
                e
            })
            .chain(std::iter::once(event(EventKind::NetworkError, -500, None)))
            .collect();
        let went = WhatWentWrong::from_events(&events, start());
        assert_eq!(went.console_errors.len(), MAX_PER_LIST);
        assert_eq!(went.failed_requests[0].offset_secs, None);
        assert_eq!(
            went.failed_requests[0].text,
            "request (unknown URL) → failed"
        );
        assert!(WhatWentWrong::from_events(&[], start()).is_empty());
    }
}
