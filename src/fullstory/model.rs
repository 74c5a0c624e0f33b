//! FullStory's data as replaydesk uses it, and lenient readers for every response shape seen in the wild.
//!
//! The list-sessions response comes in at least four shapes (PLATFORMS.md): the official example
//! (`userId, sessionId, createdTime` as an epoch-seconds *string*, `fsUrl`), the docs table's snake_case
//! integers (`user_id, session_id, created_time, fs_url`), the SDK's ISO-8601 `createdTime`, and the seed
//! OpenAPI's `{sessionId, url, created}`. Events come as `{"events":[{event_time, event_type,
//! event_properties}]}` or as a bare `[{type, timestamp, data}]`. We read JSON as a `Value` and look for
//! each field under all its names; unknown fields are ignored; an entry we cannot use is skipped and
//! counted, never fatal to the whole answer.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A FullStory session id: `deviceId:sessionId`. It contains `:`, so it is percent-encoded in paths.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(String);

/// Everything but RFC 3986's unreserved characters is encoded (`:` → `%3A`).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

impl SessionId {
    pub fn new(id: impl Into<String>) -> Option<Self> {
        let id: String = id.into();
        let id = id.trim();
        (!id.is_empty() && id.len() <= 256 && !id.chars().any(char::is_control))
            .then(|| Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as one URL path segment.
    pub fn path_segment(&self) -> String {
        utf8_percent_encode(&self.0, PATH_SEGMENT).to_string()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One recorded session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: SessionId,
    pub user_id: Option<String>,
    pub created: DateTime<Utc>,
    pub url: String,
}

/// A list-sessions answer: the sessions we could read, and how many entries we could not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionList {
    pub sessions: Vec<Session>,
    pub skipped: usize,
}

/// What kind of thing happened in a session, as far as the digest cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    PageView,
    Click,
    RageClick,
    DeadClick,
    ErrorClick,
    ConsoleError,
    NetworkError,
    Other,
}

impl EventKind {
    /// Reads FullStory's many spellings: `rage-click`, `RAGE_CLICK`, `rageclick`, `navigate`, …
    pub fn from_name(name: &str) -> Self {
        let folded: String = name
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        match folded.as_str() {
            "navigate" | "pageview" | "page" | "load" | "pageload" | "navigation" => Self::PageView,
            "click" => Self::Click,
            "rageclick" | "rage" => Self::RageClick,
            "deadclick" | "dead" => Self::DeadClick,
            "errorclick" => Self::ErrorClick,
            "consoleerror" | "error" | "exception" | "jserror" | "uncaughterror" => {
                Self::ConsoleError
            }
            "networkerror" | "requesterror" | "failedrequest" => Self::NetworkError,
            _ => Self::Other,
        }
    }
}

/// One event of a session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SessionEvent {
    pub kind: EventKind,
    pub at: Option<DateTime<Utc>>,
    /// The page (a page view, a click) or the request's URL (a failed request).
    pub url: Option<String>,
    /// What a console error said, when the event carries it (raw: scrubbed before it is shown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A request's HTTP method and status, when the event carries them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// An event `secs` after 2023-11-14T22:13:20Z, for the tests of what reads events.
#[cfg(test)]
pub(crate) fn test_event(kind: EventKind, secs: i64, url: Option<&str>) -> SessionEvent {
    SessionEvent {
        kind,
        at: Utc.timestamp_opt(1_700_000_000 + secs, 0).single(),
        url: url.map(str::to_owned),
        message: None,
        method: None,
        status: None,
    }
}

/// An AI summary of a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub text: String,
}

/// Reads a time written as epoch seconds or milliseconds (number or numeric string) or ISO-8601.
pub fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .map(epoch)
            .or_else(|| n.as_f64().map(|f| epoch(f as i64)))?,
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<i64>() {
                return epoch(n);
            }
            if let Ok(f) = s.parse::<f64>() {
                return epoch(f as i64);
            }
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| {
                    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
                        .ok()
                        .map(|t| t.and_utc())
                })
        }
        _ => None,
    }
}

/// Epoch seconds, or milliseconds when the number is too large to be seconds (after year 5138).
fn epoch(n: i64) -> Option<DateTime<Utc>> {
    if n > 100_000_000_000 {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

fn field<'a>(object: &'a Value, names: &[&str]) -> Option<&'a Value> {
    names
        .iter()
        .find_map(|name| object.get(*name).filter(|v| !v.is_null()))
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The top-level array, whether bare or under one of `keys`.
fn items<'a>(body: &'a Value, keys: &[&str]) -> Result<&'a [Value], String> {
    if let Value::Array(items) = body {
        return Ok(items);
    }
    match field(body, keys) {
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("`{}` is not a list", keys[0])),
        None if body.is_object() => Ok(&[]),
        None => Err("expected a JSON object or list".into()),
    }
}

/// Reads a list-sessions answer in any of its shapes.
pub fn parse_session_list(body: &[u8]) -> Result<SessionList, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let mut list = SessionList::default();
    for entry in items(&body, &["sessions"])? {
        match parse_session(entry) {
            Some(session) => list.sessions.push(session),
            None => list.skipped += 1,
        }
    }
    Ok(list)
}

/// One list entry, or `None` when it lacks what a session needs. Its replay URL must be a web link
/// ([`crate::outbound::web_link`]): a `javascript:` or `data:` URL in FullStory's answer would otherwise
/// reach an `<a href>` in the sidebar and a Slack or Discord button on every platform.
fn parse_session(entry: &Value) -> Option<Session> {
    let url = field(entry, &["fsUrl", "fs_url", "url", "FsUrl"])
        .and_then(text)
        .and_then(|url| crate::outbound::web_link(&url))?
        .to_string();
    let created = field(
        entry,
        &[
            "createdTime",
            "created_time",
            "created",
            "createdAt",
            "created_at",
        ],
    )
    .and_then(parse_time)?;
    let user_id = field(entry, &["userId", "user_id"]).and_then(text);
    let session = field(entry, &["sessionId", "session_id", "id"]).and_then(text);
    let id = full_session_id(session.as_deref(), user_id.as_deref(), &url)?;
    Some(Session {
        id,
        user_id,
        created,
        url,
    })
}

/// The `deviceId:sessionId` the events and summary endpoints need. The official example gives the two
/// halves apart (`userId`, `sessionId`) and the whole in the replay URL's last segment.
fn full_session_id(session: Option<&str>, user: Option<&str>, url: &str) -> Option<SessionId> {
    let from_url = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .filter(|segment| segment.contains(':'));
    match (session, user, from_url) {
        (Some(s), _, _) if s.contains(':') => SessionId::new(s),
        (Some(s), _, Some(u)) if u.ends_with(&format!(":{s}")) => SessionId::new(u),
        (Some(s), Some(user), _) => SessionId::new(format!("{user}:{s}")),
        (Some(s), None, _) => SessionId::new(s),
        (None, _, Some(u)) => SessionId::new(u),
        (None, _, None) => None,
    }
}

/// Reads a session-events answer in either shape.
pub fn parse_events(body: &[u8]) -> Result<Vec<SessionEvent>, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    Ok(items(&body, &["events", "data"])?
        .iter()
        .filter_map(|event| {
            let name = field(event, &["event_type", "type", "eventType", "kind"]).and_then(text)?;
            let properties = field(
                event,
                &["event_properties", "data", "properties", "eventProperties"],
            );
            let url = properties
                .and_then(|p| {
                    field(
                        p,
                        &[
                            "url",
                            "request_url",
                            "requestUrl",
                            "page_url",
                            "pageUrl",
                            "href",
                            "location",
                        ],
                    )
                })
                .or_else(|| field(event, &["url", "page_url", "pageUrl"]))
                .and_then(text);
            let detail = |names: &[&str]| {
                properties
                    .and_then(|p| field(p, names))
                    .or_else(|| field(event, names))
                    .and_then(text)
            };
            let message = detail(&["message", "msg", "error_message", "errorMessage", "error"]);
            let method = detail(&["method", "http_method", "httpMethod", "request_method"]);
            let status = detail(&["status", "status_code", "statusCode", "http_status"])
                .and_then(|s| s.parse::<u16>().ok());
            let level = detail(&["level", "severity", "log_level"]).unwrap_or_default();
            let kind = match EventKind::from_name(&name) {
                // FullStory's documented `console` and `request` events: an error by their level or
                // status.
                EventKind::Other if is_one_of(&name, &["console", "log", "consolemessage"]) => {
                    if is_one_of(&level, &["error", "exception", "fatal"]) {
                        EventKind::ConsoleError
                    } else {
                        EventKind::Other
                    }
                }
                EventKind::Other
                    if is_one_of(
                        &name,
                        &["request", "network", "xhr", "fetch", "httprequest"],
                    ) =>
                {
                    if status.is_some_and(|s| s >= 400) {
                        EventKind::NetworkError
                    } else {
                        EventKind::Other
                    }
                }
                // Some exports record rage/dead/error clicks as a click with a flag or subtype.
                EventKind::Click => properties
                    .and_then(|p| field(p, &["click_type", "clickType", "subtype"]))
                    .and_then(text)
                    .map(|t| EventKind::from_name(&format!("{t}click")))
                    .filter(|k| *k != EventKind::Other)
                    .unwrap_or(EventKind::Click),
                kind => kind,
            };
            Some(SessionEvent {
                kind,
                at: field(event, &["event_time", "timestamp", "eventTime", "time"])
                    .and_then(parse_time),
                url,
                message,
                method,
                status,
            })
        })
        .collect())
}

/// Whether `name`, folded to lower-case letters and digits, is one of `names`.
fn is_one_of(name: &str, names: &[&str]) -> bool {
    let folded: String = name
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    names.contains(&folded.as_str())
}

/// Reads a summary answer: `{summary}` / `{response}` (text or structured) / the seed's shape.
pub fn parse_summary(body: &[u8]) -> Result<Summary, String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let value =
        field(&body, &["summary", "response", "text"]).ok_or("no `summary` or `response` field")?;
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Value::Array(items) => items
            .iter()
            .map(|v| text(v).unwrap_or_else(|| v.to_string()))
            .collect::<Vec<_>>()
            .join("\n"),
        other => other.to_string(),
    };
    if text.is_empty() {
        return Err("the summary is empty".into());
    }
    Ok(Summary { text })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_official_example_shape_is_read() {
        let list = parse_session_list(br#"{"sessions":[{"userId":"1234567890","sessionId":"1234567890","createdTime":"1411492739","fsUrl":"https://www.fullstory.com/ui/ORG_ID/discover/session/1234567890:1234567890"}]}"#).unwrap();
        assert_eq!(list.skipped, 0);
        let s = &list.sessions[0];
        assert_eq!(s.id.as_str(), "1234567890:1234567890");
        assert_eq!(s.created.timestamp(), 1_411_492_739);
        assert_eq!(s.user_id.as_deref(), Some("1234567890"));
    }

    #[test]
    fn snake_case_integers_are_read() {
        let list = parse_session_list(br#"{"sessions":[{"user_id":42,"session_id":7,"created_time":1700000000,"fs_url":"https://app.fullstory.com/ui/o/session/42:7"}]}"#).unwrap();
        assert_eq!(list.sessions[0].id.as_str(), "42:7");
        assert_eq!(list.sessions[0].created.timestamp(), 1_700_000_000);
    }

    #[test]
    fn iso_times_and_the_seed_shape_are_read() {
        let list = parse_session_list(br#"{"sessions":[
            {"userId":"u","sessionId":"s","createdTime":"2024-05-01T10:00:00Z","fsUrl":"https://x/ui/o/session/u:s"},
            {"sessionId":"d:9","url":"https://x/ui/o/session/d:9","created":"2024-05-02T10:00:00+02:00"}]}"#).unwrap();
        assert_eq!(list.sessions.len(), 2);
        assert_eq!(
            list.sessions[1].created.to_rfc3339(),
            "2024-05-02T08:00:00+00:00"
        );
    }

    #[test]
    fn a_bad_entry_is_skipped_and_counted() {
        let list = parse_session_list(br#"{"sessions":[{"sessionId":"a"},{"sessionId":"d:1","url":"https://x/d:1","created":1700000000}, 5]}"#).unwrap();
        assert_eq!(list.sessions.len(), 1);
        assert_eq!(list.skipped, 2);
    }

    #[test]
    fn only_web_links_are_kept_as_replay_urls() {
        let list = parse_session_list(
            br#"{"sessions":[
              {"sessionId":"d:1","url":"javascript:alert(document.domain)//d:1","created":1700000000},
              {"sessionId":"d:2","url":"JaVaScRiPt:alert(1)","created":1700000000},
              {"sessionId":"d:3","url":"data:text/html,<script>alert(1)</script>","created":1700000000},
              {"sessionId":"d:4","url":"http://evil.example/ui/o/session/d:4","created":1700000000},
              {"sessionId":"d:5","url":" https://app.fullstory.com/ui/o/session/d:5","created":1700000000},
              {"sessionId":"d:6","url":"http://127.0.0.1:9/ui/o/session/d:6","created":1700000000}
            ]}"#,
        )
        .unwrap();
        let urls: Vec<&str> = list.sessions.iter().map(|s| s.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "https://app.fullstory.com/ui/o/session/d:5",
                "http://127.0.0.1:9/ui/o/session/d:6"
            ]
        );
        assert_eq!(list.skipped, 4);
    }

    #[test]
    fn millisecond_epochs_are_recognised() {
        assert_eq!(
            parse_time(&serde_json::json!(1_700_000_000_123_i64))
                .unwrap()
                .timestamp_millis(),
            1_700_000_000_123
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        assert!(parse_session_list(b"<html>").is_err());
        assert!(parse_session_list(br#"{"sessions":"nope"}"#).is_err());
        assert!(parse_session_list(br#"{}"#).unwrap().sessions.is_empty());
        assert!(parse_events(b"{").is_err());
        assert!(parse_summary(br#"{"other":1}"#).is_err());
    }

    #[test]
    fn session_ids_are_percent_encoded_in_paths() {
        assert_eq!(
            SessionId::new("123:456").unwrap().path_segment(),
            "123%3A456"
        );
    }

    #[test]
    fn both_event_shapes_are_read() {
        let official = parse_events(br#"{"events":[{"event_time":"2024-05-01T10:00:00Z","event_type":"navigate","event_properties":{"url":"https://a/x"}},{"event_time":"2024-05-01T10:01:00Z","event_type":"rage-click"}]}"#).unwrap();
        assert_eq!(official[0].kind, EventKind::PageView);
        assert_eq!(official[0].url.as_deref(), Some("https://a/x"));
        assert_eq!(official[1].kind, EventKind::RageClick);
        let seed = parse_events(
            br#"[{"type":"CONSOLE_ERROR","timestamp":"2024-05-01T10:00:00Z","data":{}}]"#,
        )
        .unwrap();
        assert_eq!(seed[0].kind, EventKind::ConsoleError);
    }

    #[test]
    fn what_went_wrong_details_are_read_from_every_event_shape() {
        // The seed's `type`/`timestamp`/`data`.
        let seed = parse_events(
            br#"{"events":[
              {"type":"console-error","timestamp":"2024-05-01T10:00:00Z","data":{"message":"TypeError: x"}},
              {"type":"network-error","timestamp":"2024-05-01T10:00:05Z","data":{"url":"https://a/api/pay?x=1","method":"POST","status":502}},
              {"type":"rage-click","timestamp":"2024-05-01T10:00:09Z","data":{"url":"https://a/pay"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(seed[0].kind, EventKind::ConsoleError);
        assert_eq!(seed[0].message.as_deref(), Some("TypeError: x"));
        assert_eq!(seed[1].kind, EventKind::NetworkError);
        assert_eq!(
            (seed[1].method.as_deref(), seed[1].status),
            (Some("POST"), Some(502))
        );
        assert_eq!(seed[1].url.as_deref(), Some("https://a/api/pay?x=1"));
        assert_eq!(seed[2].kind, EventKind::RageClick);
        // FullStory's documented `event_type`/`event_time`/`event_properties`, with its `console` and
        // `request` events: errors by level and status only.
        let documented = parse_events(
            br#"{"events":[
              {"event_type":"console","event_time":"2024-05-01T10:00:00Z","event_properties":{"level":"error","message":"boom"}},
              {"event_type":"console","event_time":"2024-05-01T10:00:01Z","event_properties":{"level":"log","message":"hello"}},
              {"event_type":"request","event_time":"2024-05-01T10:00:02Z","event_properties":{"request_url":"https://a/api","http_method":"GET","status_code":"404"}},
              {"event_type":"request","event_time":"2024-05-01T10:00:03Z","event_properties":{"request_url":"https://a/ok","status_code":200}},
              {"event_type":"someday-new","event_time":"2024-05-01T10:00:04Z"}
            ]}"#,
        )
        .unwrap();
        let kinds: Vec<EventKind> = documented.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            [
                EventKind::ConsoleError,
                EventKind::Other,
                EventKind::NetworkError,
                EventKind::Other,
                EventKind::Other
            ]
        );
        assert_eq!(documented[0].message.as_deref(), Some("boom"));
        assert_eq!(documented[2].status, Some(404));
        assert_eq!(documented[2].method.as_deref(), Some("GET"));
    }

    #[test]
    fn summaries_read_text_and_structured_answers() {
        assert_eq!(
            parse_summary(br#"{"summary":"User failed checkout"}"#)
                .unwrap()
                .text,
            "User failed checkout"
        );
        assert_eq!(
            parse_summary(br#"{"sessionId":"a:b","summary":"S","configProfileId":"p"}"#)
                .unwrap()
                .text,
            "S"
        );
        assert_eq!(
            parse_summary(br#"{"response":{"goal":"pay"}}"#)
                .unwrap()
                .text,
            "goal: pay"
        );
    }
}
