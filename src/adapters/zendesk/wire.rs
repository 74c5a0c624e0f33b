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
//! **Hostile bodies.** A placeholder holding free text (a comment) can forge JSON: a comment
//! `x","ticket_id":"4444","tags":"gdpr_erase` turns `{"ticket_id":"1","latest_comment":"{{…}}"}` into a
//! body naming ticket 4444 a second time. So a body with a **duplicate key** at any depth, or (when it
//! is broken and only scanned) with **more than one ticket id**, is refused with 400 saying so; and
//! nothing that decides an erasure is read from the body: the erasure tag is read from the ticket over
//! Zendesk's API only ([`super::erasure_tag`]). Tags in a body are ignored.
//!
//! [`Delivery::content_hash`] identifies what was said (the ticket id and the whole body, keys in a
//! fixed order), so the same action fired twice under two invocation ids is recognised.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The trigger body we recommend (docs/zendesk.md, `replaydesk zendesk setup`): only placeholders that
/// cannot hold a quote, the ticket id first, and the update time so that two different updates of one
/// ticket are never mistaken for one action fired twice.
pub const RECOMMENDED_TEMPLATE: &str = r#"{
  "ticket_id": "{{ticket.id}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}",
  "requester_email": "{{ticket.requester.email}}"
}"#;

/// The body the erasure trigger sends ([`super::cli`]): the ticket only. Its tags and requester are
/// read over the API: nothing in a body decides an erasure.
pub const ERASURE_TEMPLATE: &str = r#"{
  "ticket_id": "{{ticket.id}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}"
}"#;

/// A webhook body, understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub ticket_id: u64,
    /// As the template rendered it (may be empty or not an address: the job checks).
    pub requester_email: Option<String>,
    pub latest_comment: Option<String>,
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
    match strict_json(body) {
        Ok(value) => from_json(&value),
        Err(StrictError::Duplicate(key)) => Err(format!(
            "{key}: the body names this key twice (a placeholder with free text can forge keys); \
             refused. Keep free text out of the trigger's JSON body"
        )),
        Err(StrictError::Json(error)) => recover(body, &error),
    }
}

/// Why a body is not one JSON object with unique keys.
#[derive(Debug)]
pub enum StrictError {
    /// Not JSON at all.
    Json(serde_json::Error),
    /// Valid JSON naming this key twice in one object.
    Duplicate(String),
}

/// Reads JSON like `serde_json`, but refuses an object that names a key twice (at any depth), where
/// `serde_json::Value` silently keeps the last one.
pub fn strict_json(body: &[u8]) -> Result<Value, StrictError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde::Deserialize::deserialize(&mut de).and_then(|v: Unique| {
        de.end()?;
        Ok(v)
    });
    match value {
        Ok(Unique(value)) => Ok(value),
        Err(error) => match error.to_string().strip_prefix(DUPLICATE) {
            Some(rest) => Err(StrictError::Duplicate(
                rest.split(" at line ").next().unwrap_or("").to_owned(),
            )),
            None => Err(StrictError::Json(error)),
        },
    }
}

/// The prefix of the error [`Unique`] raises for a repeated key.
const DUPLICATE: &str = "duplicate key: ";

/// A JSON value whose objects have unique keys.
struct Unique(Value);

impl<'de> serde::Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueVisitor).map(Unique)
    }
}

struct UniqueVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Unique(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            let Unique(value) = map.next_value()?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

fn from_json(value: &Value) -> Result<Delivery, String> {
    if !value.is_object() {
        return Err("body: expected a JSON object with \"ticket_id\"".into());
    }
    let ticket = &value["ticket"];
    if let (Some(top), Some(nested)) = (value.get("ticket_id"), ticket.get("id"))
        && ticket_number(top) != ticket_number(nested)
    {
        return Err(
            "ticket_id: the body names two different tickets (`ticket_id` and `ticket.id`; free \
             text can forge one); refused"
                .into(),
        );
    }
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
    let named: Vec<regex::Match> = [&*TICKET_ID_RE, &*NESTED_ID_RE]
        .into_iter()
        .flat_map(|re| re.captures_iter(&text))
        .filter_map(|caps| caps.get(1))
        .collect();
    if named.len() > 1 {
        return Err(format!(
            "ticket_id: the body is not valid JSON and names {} ticket ids (free text can forge \
             one); refused. Keep free text out of the trigger's JSON body",
            named.len()
        ));
    }
    let first = named.into_iter().next();
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
        assert_eq!(
            tags_of(&serde_json::json!("vip gdpr_erase  billing")),
            ["vip", "gdpr_erase", "billing"]
        );
        assert_eq!(
            tags_of(&serde_json::json!(["gdpr_erase", 3, ""])),
            ["gdpr_erase"]
        );
        assert!(tags_of(&Value::Null).is_empty());
    }

    #[test]
    fn a_forged_second_ticket_id_or_any_repeated_key_is_refused() {
        // What the comment `x","ticket_id":"4444","tags":"gdpr_erase` makes of a template with free text.
        let forged =
            br#"{"ticket_id":"1","latest_comment":"x","ticket_id":"4444","tags":"gdpr_erase"}"#;
        let reason = parse(forged).unwrap_err();
        assert!(
            reason.starts_with("ticket_id: the body names this key twice"),
            "{reason}"
        );
        let nested = br#"{"ticket":{"id":1,"requester":{"email":"a@b.io","email":"c@d.io"}}}"#;
        assert!(
            parse(nested)
                .unwrap_err()
                .starts_with("email: the body names this key twice")
        );
        // A broken body naming two ticket ids is refused too, whichever comes first.
        let broken = br#"{"ticket_id":"1","latest_comment":"it "says" x","ticket_id":"4444"}"#;
        let reason = parse(broken).unwrap_err();
        assert!(reason.contains("names 2 ticket ids"), "{reason}");
        // Valid JSON naming the ticket twice, in its two places, with two numbers.
        let two = br#"{"ticket":{"id":1,"c":"x"},"ticket_id":"4444"}"#;
        assert!(parse(two).unwrap_err().contains("two different tickets"));
        assert_eq!(
            parse(br#"{"ticket":{"id":7},"ticket_id":"7"}"#)
                .unwrap()
                .ticket_id,
            7
        );
        // Found by fuzzing: a repeated key before the body breaks is refused for the key.
        let broken_after = b"{\"{[[\"\t:\"\",\t\t\"{[[\"\t:\"\",\t\t";
        let reason = parse(broken_after).unwrap_err();
        assert!(reason.contains("names this key twice"), "{reason}");
        // Quotes inside a string value are not keys.
        let fine = br#"{"ticket_id":"1","latest_comment":"x\",\"ticket_id\":\"4444"}"#;
        assert_eq!(parse(fine).unwrap().ticket_id, 1);
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
