//! What a Zendesk trigger's webhook body tells us, read tolerantly.
//!
//! The body is whatever JSON the trigger's template says, with placeholders filled in. Only the ticket
//! id is required: `ticket_id` or `ticket.id`, as a string or a number. `requester_email` /
//! `ticket.requester.email` and `latest_comment` / `ticket.latest_comment` are used when present; the
//! job reads everything else (and whatever is missing) over the Zendesk API.
//!
//! Placeholders are not JSON-escaped (PLATFORMS.md [U]): a quote in a comment breaks the body. Such a
//! body is still accepted when the ticket id can be found by a tolerant scan (the first
//! `"ticket_id": "123"` or `"ticket": {"id": 123`), and then the job reads the rest over the API;
//! without a ticket id it is refused with 400 naming the field. That is why the recommended template
//! puts the ticket id first and leaves free text out ([`RECOMMENDED_TEMPLATE`]).
//!
//! `tags` / `ticket.tags` (an array, or `{{ticket.tags}}`'s space-separated string) are read when present,
//! for the erasure tag ([`super::job`]); the job also reads the ticket's tags over the API.
//!
//! [`Delivery::content_hash`] identifies what was said (the ticket id and the whole body, keys in a
//! fixed order), so the same action fired twice under two invocation ids is recognised.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The trigger body we recommend (README, `replaydesk zendesk setup`): only placeholders that cannot
/// hold a quote, the ticket id first, and the update time so that two different updates of one ticket
/// are never mistaken for one action fired twice.
pub const RECOMMENDED_TEMPLATE: &str = r#"{
  "ticket_id": "{{ticket.id}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}",
  "requester_email": "{{ticket.requester.email}}"
}"#;

/// The body the erasure trigger sends ([`super::cli`]): the ticket and its tags; the requester is read
/// over the API.
pub const ERASURE_TEMPLATE: &str = r#"{
  "ticket_id": "{{ticket.id}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}",
  "tags": "{{ticket.tags}}"
}"#;

/// A webhook body, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub ticket_id: u64,
    /// As the template rendered it (may be empty or not an address: the job checks).
    pub requester_email: Option<String>,
    pub latest_comment: Option<String>,
    /// The ticket's tags, when the template sent them.
    pub tags: Vec<String>,
    /// The body was not valid JSON; only the ticket id was recovered from it.
    pub recovered: bool,
    /// Hex SHA-256 of the ticket id and the body's content.
    pub content_hash: String,
}

/// Reads a webhook body. The error is a reason naming the field, safe to return in a 400 (it never
/// repeats the body).
pub fn parse(body: &[u8]) -> Result<Delivery, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            "body: empty; the trigger must send JSON with \"ticket_id\": \"{{ticket.id}}\"".into(),
        );
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => from_json(&value),
        Err(error) => recover(body, &error),
    }
}

fn from_json(value: &Value) -> Result<Delivery, String> {
    if !value.is_object() {
        return Err("body: expected a JSON object with \"ticket_id\"".into());
    }
    let ticket = &value["ticket"];
    let ticket_id = match (value.get("ticket_id"), ticket.get("id")) {
        (Some(id), _) => ticket_number(id).ok_or_else(|| {
            "ticket_id: expected a ticket number like \"123\" (use \"{{ticket.id}}\")".to_owned()
        })?,
        (None, Some(id)) => ticket_number(id).ok_or_else(|| {
            "ticket.id: expected a ticket number like \"123\" (use \"{{ticket.id}}\")".to_owned()
        })?,
        (None, None) => {
            return Err("ticket_id: missing; the trigger must send \
                        \"ticket_id\": \"{{ticket.id}}\" (or \"ticket\": {\"id\": …})"
                .into());
        }
    };
    let text = |top: &str, nested: &Value| {
        value
            .get(top)
            .or(Some(nested))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Delivery {
        ticket_id,
        requester_email: text("requester_email", &ticket["requester"]["email"]),
        latest_comment: text("latest_comment", &ticket["latest_comment"]),
        tags: tags_of(value.get("tags").unwrap_or(&ticket["tags"])),
        recovered: false,
        content_hash: hash(ticket_id, value.to_string().as_bytes()),
    })
}

static TICKET_ID_RE: LazyLock<Regex> =
    LazyLock::new(|| compile(r#""ticket_id"\s*:\s*"?\s*([0-9]{1,20})\b"#));
static NESTED_ID_RE: LazyLock<Regex> =
    LazyLock::new(|| compile(r#""ticket"\s*:\s*\{\s*"id"\s*:\s*"?\s*([0-9]{1,20})\b"#));

/// Compiles one of this module's constant patterns (exercised by every test: a failure here is a
/// programming error caught before release).
fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(re) => re,
        Err(err) => panic!("built-in pattern {pattern:?} does not compile: {err}"),
    }
}

/// The first ticket id a broken body names.
fn recover(body: &[u8], error: &serde_json::Error) -> Result<Delivery, String> {
    let text = String::from_utf8_lossy(body);
    let first = [&*TICKET_ID_RE, &*NESTED_ID_RE]
        .into_iter()
        .filter_map(|re| re.captures(&text))
        .filter_map(|caps| caps.get(1))
        .min_by_key(regex::Match::start);
    let Some(id) = first else {
        return Err(format!(
            "ticket_id: not found, and the body is not valid JSON ({error}); put \
             \"ticket_id\": \"{{{{ticket.id}}}}\" first in the trigger's JSON body"
        ));
    };
    let ticket_id = id
        .as_str()
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| "ticket_id: not a valid ticket number".to_owned())?;
    Ok(Delivery {
        ticket_id,
        requester_email: None,
        latest_comment: None,
        tags: Vec::new(),
        recovered: true,
        content_hash: hash(ticket_id, body),
    })
}

/// Ticket tags written as an array of strings or as one space- or comma-separated string (what the
/// `{{ticket.tags}}` placeholder renders); anything else is no tags.
pub fn tags_of(value: &Value) -> Vec<String> {
    let words: Vec<&str> = match value {
        Value::String(text) => text
            .split(|c: char| c.is_whitespace() || c == ',')
            .collect(),
        Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    words
        .into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A positive ticket number, written as a JSON number or a string of digits.
fn ticket_number(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
    .filter(|n| *n > 0)
}

fn hash(ticket_id: u64, content: &[u8]) -> String {
    let mut sha = Sha256::new();
    sha.update(ticket_id.to_string().as_bytes());
    sha.update([0]);
    sha.update(content);
    hex::encode(sha.finalize())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_ticket_id_may_be_a_string_or_a_number_at_the_top_or_nested() {
        for body in [
            r#"{"ticket_id":"123"}"#,
            r#"{"ticket_id":123}"#,
            r#"{"ticket":{"id":"123"}}"#,
            r#"{"ticket":{"id":123,"requester":{"email":"jane@acme.com"}}}"#,
        ] {
            let delivery = parse(body.as_bytes()).unwrap();
            assert_eq!(delivery.ticket_id, 123, "{body}");
            assert!(!delivery.recovered);
        }
    }

    #[test]
    fn optional_fields_are_read_when_present_and_empty_ones_are_absent() {
        let delivery =
            parse(br#"{"ticket_id":"9","requester_email":" Jane@Acme.com ","latest_comment":""}"#)
                .unwrap();
        assert_eq!(delivery.requester_email.as_deref(), Some("Jane@Acme.com"));
        assert_eq!(delivery.latest_comment, None);
        let nested =
            parse(br#"{"ticket":{"id":9,"latest_comment":"cc bob@acme.com","requester":{"email":"j@a.io"}}}"#)
                .unwrap();
        assert_eq!(nested.latest_comment.as_deref(), Some("cc bob@acme.com"));
        assert_eq!(nested.requester_email.as_deref(), Some("j@a.io"));
    }

    #[test]
    fn tags_are_read_as_an_array_or_as_the_placeholder_string() {
        let placeholder = parse(br#"{"ticket_id":"9","tags":"vip gdpr_erase  billing"}"#).unwrap();
        assert_eq!(placeholder.tags, ["vip", "gdpr_erase", "billing"]);
        let nested = parse(br#"{"ticket":{"id":9,"tags":["gdpr_erase", 3, ""]}}"#).unwrap();
        assert_eq!(nested.tags, ["gdpr_erase"]);
        assert!(
            parse(br#"{"ticket_id":"9","tags":null}"#)
                .unwrap()
                .tags
                .is_empty()
        );
        assert!(parse(br#"{"ticket_id":"9"}"#).unwrap().tags.is_empty());
    }

    #[test]
    fn a_body_broken_by_an_unescaped_quote_still_yields_its_ticket_id() {
        let body = br#"{"ticket_id": "4711", "latest_comment": "it says "error 42" on checkout"}"#;
        let delivery = parse(body).unwrap();
        assert_eq!(delivery.ticket_id, 4711);
        assert!(delivery.recovered);
        assert_eq!(delivery.latest_comment, None);
        let nested = parse(br#"{"ticket": {"id": 88, "title": "the "pay" button"}}"#).unwrap();
        assert_eq!(nested.ticket_id, 88);
    }

    #[test]
    fn a_body_without_a_ticket_id_is_refused_naming_the_field() {
        for (body, field) in [
            (&b""[..], "body:"),
            (b"[1,2]", "body:"),
            (br#"{"id":"5"}"#, "ticket_id: missing"),
            (br#"{"ticket_id":"abc"}"#, "ticket_id: expected"),
            (br#"{"ticket_id":"0"}"#, "ticket_id: expected"),
            (br#"{"ticket":{"id":true}}"#, "ticket.id: expected"),
            (
                br#"{"comment": "broken "quote" here"}"#,
                "ticket_id: not found",
            ),
            (
                br#"{"ticket_id": "99999999999999999999"#,
                "ticket_id: not a valid",
            ),
        ] {
            let reason = parse(body).unwrap_err();
            assert!(reason.starts_with(field), "{reason}");
        }
    }

    #[test]
    fn the_content_hash_tells_one_action_from_another() {
        let a = parse(br#"{"ticket_id":"1","updated_at":"2026-11-20T10:00Z"}"#).unwrap();
        let same = parse(br#"{ "updated_at": "2026-11-20T10:00Z", "ticket_id": "1" }"#).unwrap();
        let later = parse(br#"{"ticket_id":"1","updated_at":"2026-11-20T10:05Z"}"#).unwrap();
        let other_ticket = parse(br#"{"ticket_id":"2","updated_at":"2026-11-20T10:00Z"}"#).unwrap();
        assert_eq!(a.content_hash, same.content_hash);
        assert_ne!(a.content_hash, later.content_hash);
        assert_ne!(a.content_hash, other_ticket.content_hash);
    }

    #[test]
    fn the_recommended_and_erasure_templates_render_to_valid_bodies() {
        let render = |template: &str| {
            let rendered = template
                .replace("{{ticket.id}}", "35436")
                .replace("{{ticket.updated_at_with_timestamp}}", "2026-11-20T10:00Z")
                .replace("{{ticket.requester.email}}", "jane@acme.com")
                .replace("{{ticket.tags}}", "gdpr_erase vip");
            parse(rendered.as_bytes()).unwrap()
        };
        let lookup = render(RECOMMENDED_TEMPLATE);
        assert_eq!(lookup.ticket_id, 35436);
        assert_eq!(lookup.requester_email.as_deref(), Some("jane@acme.com"));
        let erasure = render(ERASURE_TEMPLATE);
        assert_eq!(erasure.ticket_id, 35436);
        assert_eq!(erasure.tags, ["gdpr_erase", "vip"]);
    }

    proptest! {
        #[test]
        fn any_body_is_answered_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse(&body);
        }

        #[test]
        fn any_text_around_a_ticket_id_still_finds_it(prefix in "[^\"]{0,40}", junk in ".{0,80}", id in 1u64..1_000_000_000) {
            let body = format!("{{{prefix}\"ticket_id\": \"{id}\", \"x\": \"{junk}");
            let delivery = parse(body.as_bytes());
            prop_assert!(delivery.is_ok(), "{:?}", delivery);
            if let Ok(delivery) = delivery {
                prop_assert!(delivery.ticket_id == id || !delivery.recovered);
            }
        }
    }
}
