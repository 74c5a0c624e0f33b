//! The one sample lookup result the renderers' tests show (Slack's Block Kit, Zendesk's note, Discord's
//! embed), so that the three platforms' snapshots tell the same story and differ only in their format.
//!
//! jane@acme.com has three sessions (the likely one, live just before the ticket, in the middle), a
//! digest and what went wrong; bob@acme.com one older session; `uid:12345` none. Session links carry a
//! query with `&`, so every format's escaping of links shows. A test changes what it needs from here
//! (a summary, `around`, more sessions) in the test itself.

#![allow(clippy::expect_used)]

use chrono::{DateTime, Utc};

use crate::{
    fullstory::SessionId,
    identity::{CustomerEmail, Identity, Uid},
    lookup::{Digest, FoundSession, IdentityResult, LookupResult, WhatWentWrong},
};

/// When the ticket or message the lookup was for was written: the sample's `around`.
pub(crate) const AROUND: &str = "2026-11-24T14:05:00Z";

/// The sample's likely session (jane's second).
pub(crate) const LIKELY: &str = "5191865402245120:4000000000000003";

/// `text` (RFC 3339) as a time.
pub(crate) fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 time")
        .to_utc()
}

/// A session `id` that began at `created` (RFC 3339), likely or not.
pub(crate) fn session(id: &str, created: &str, likely: bool) -> FoundSession {
    FoundSession {
        id: SessionId::new(id).expect("a session id"),
        url: format!("https://app.fullstory.com/ui/o-1/session/{id}?a=1&b=2"),
        created: at(created),
        likely,
    }
}

/// The sample described above.
pub(crate) fn sample_result() -> LookupResult {
    let email = |text: &str| Identity::Email(CustomerEmail::parse(text).expect("an email"));
    LookupResult {
        not_looked_up: 0,
        around: Some(at(AROUND)),
        lookback_days: 30,
        identities: vec![
            IdentityResult {
                digest_skipped: None,
                identity: email("jane@acme.com"),
                forgotten: false,
                sessions: vec![
                    session(
                        "5191865402245120:4000000000000004",
                        "2026-11-24T15:00:00Z",
                        false,
                    ),
                    session(LIKELY, "2026-11-24T14:02:00Z", true),
                    session(
                        "5191865402245120:4000000000000001",
                        "2026-11-20T09:11:00Z",
                        false,
                    ),
                ],
                digest: Some(Digest {
                    pages: 6,
                    errors: 2,
                    rage_clicks: 3,
                    duration_secs: Some(420),
                    went_wrong: WhatWentWrong::sample(),
                    ..Digest::default()
                }),
                summary: None,
            },
            IdentityResult {
                digest_skipped: None,
                identity: email("bob@acme.com"),
                forgotten: false,
                sessions: vec![session(
                    "5191865402245120:4000000000000009",
                    "2026-11-18T08:00:00Z",
                    false,
                )],
                digest: None,
                summary: None,
            },
            IdentityResult {
                digest_skipped: None,
                identity: Identity::Uid(Uid::parse("12345").expect("a uid")),
                forgotten: false,
                sessions: vec![],
                digest: None,
                summary: None,
            },
        ],
    }
}
