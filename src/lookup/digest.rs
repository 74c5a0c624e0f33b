//! The one-line digest of a session: "6 pages · 2 errors · 3 rage clicks · 7 min".
//!
//! Built from the session's events, which cost one metered call, so the digest is made only when asked
//! and only for the likely session.
//!
//! Event times are clamped to the session: an event stamped before the session started or more than
//! [`MAX_SESSION`] after it (a client clock far off, a timestamp of 0) says nothing about how long the
//! customer was there, so it counts (a page is a page) but does not stretch the duration. Without this
//! one bad stamp gave "0 pages · 16895357 min".

use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::fullstory::{EventKind, SessionEvent};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Digest {
    /// Pages viewed (distinct URLs when known, else page-view events).
    pub pages: usize,
    /// Console and network errors.
    pub errors: usize,
    pub rage_clicks: usize,
    pub dead_clicks: usize,
    pub error_clicks: usize,
    /// From the first to the last event, in seconds.
    pub duration_secs: Option<i64>,
    /// The last page the customer was on.
    pub last_url: Option<String>,
    /// The console errors, failed requests and frustrated pages ([`super::WhatWentWrong`]), from the
    /// same events; empty with `fullstory.what_went_wrong = false`.
    #[serde(skip_serializing_if = "super::WhatWentWrong::is_empty")]
    pub went_wrong: super::WhatWentWrong,
}

/// The longest a session can last, as far as the digest believes event times: FullStory ends a session
/// after 30 minutes without activity, and a day is far beyond any real one.
pub const MAX_SESSION: TimeDelta = TimeDelta::hours(24);

impl Digest {
    /// The digest of a session that started at `started`, from its events (see the module docs).
    pub fn from_events(events: &[SessionEvent], started: DateTime<Utc>) -> Self {
        // Saturating: a start stamped near the end of time must not overflow.
        let until = started
            .checked_add_signed(MAX_SESSION)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let within = |at: &DateTime<Utc>| *at >= started && *at <= until;
        let mut digest = Digest::default();
        let mut urls = HashSet::new();
        let mut page_views = 0;
        for event in events {
            match event.kind {
                EventKind::PageView => {
                    page_views += 1;
                    if let Some(url) = &event.url {
                        urls.insert(url.as_str());
                    }
                }
                EventKind::ConsoleError | EventKind::NetworkError => digest.errors += 1,
                EventKind::RageClick => digest.rage_clicks += 1,
                EventKind::DeadClick => digest.dead_clicks += 1,
                EventKind::ErrorClick => digest.error_clicks += 1,
                EventKind::Click | EventKind::Other => {}
            }
        }
        digest.pages = if urls.is_empty() {
            page_views
        } else {
            urls.len()
        };
        let times: Vec<_> = events.iter().filter_map(|e| e.at).filter(within).collect();
        if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
            digest.duration_secs = Some((*last - *first).num_seconds());
        }
        digest.last_url = events
            .iter()
            .filter(|e| e.url.is_some() && e.at.as_ref().is_none_or(within))
            .max_by_key(|e| e.at)
            .and_then(|e| e.url.clone());
        digest
    }

    /// "6 pages · 2 errors · 3 rage clicks · 7 min" (zero counts left out, except pages).
    pub fn line(&self) -> String {
        let mut parts = vec![plural(self.pages, "page", "pages")];
        for (n, one, many) in [
            (self.errors, "error", "errors"),
            (self.rage_clicks, "rage click", "rage clicks"),
            (self.dead_clicks, "dead click", "dead clicks"),
            (self.error_clicks, "error click", "error clicks"),
        ] {
            if n > 0 {
                parts.push(plural(n, one, many));
            }
        }
        if let Some(secs) = self.duration_secs {
            parts.push(if secs < 60 {
                format!("{secs} s")
            } else {
                format!("{} min", (secs + 30) / 60)
            });
        }
        parts.join(" · ")
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn start() -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000, 0)
            .single()
            .unwrap_or_default()
    }

    fn event(kind: EventKind, secs: i64, url: Option<&str>) -> SessionEvent {
        crate::fullstory::test_event(kind, secs, url)
    }

    #[test]
    fn the_digest_counts_pages_errors_and_frustration() {
        let events = vec![
            event(EventKind::PageView, 0, Some("https://a/home")),
            event(EventKind::PageView, 30, Some("https://a/cart")),
            event(EventKind::PageView, 60, Some("https://a/home")),
            event(EventKind::RageClick, 90, None),
            event(EventKind::ConsoleError, 100, None),
            event(EventKind::NetworkError, 110, None),
            event(EventKind::DeadClick, 200, None),
            event(EventKind::PageView, 420, Some("https://a/checkout")),
        ];
        let digest = Digest::from_events(&events, start());
        assert_eq!(digest.pages, 3);
        assert_eq!(digest.errors, 2);
        assert_eq!(digest.rage_clicks, 1);
        assert_eq!(digest.duration_secs, Some(420));
        assert_eq!(digest.last_url.as_deref(), Some("https://a/checkout"));
        assert_eq!(
            digest.line(),
            "3 pages · 2 errors · 1 rage click · 1 dead click · 7 min"
        );
    }

    #[test]
    fn an_empty_session_has_a_plain_digest() {
        assert_eq!(Digest::from_events(&[], start()).line(), "0 pages");
    }

    #[test]
    fn event_times_outside_the_session_do_not_stretch_its_duration() {
        let events = vec![
            event(EventKind::Click, -1_700_000_000, None),
            event(EventKind::Click, 0, None),
            event(EventKind::RageClick, 300, None),
            event(EventKind::Click, 400 * 24 * 3600, None),
        ];
        let digest = Digest::from_events(&events, start());
        assert_eq!(digest.duration_secs, Some(300));
        assert_eq!(digest.line(), "0 pages · 1 rage click · 5 min");
    }
}
