//! Value types the configuration is written in: durations like `"60s"` or `"1h30m"`, lists that may arrive as a TOML
//! array or as one comma-separated environment string, secrets that never print, and ids that may arrive
//! as text or as a number.
//!
//! Environment overrides (`REPLAYDESK_SLACK__ALLOWED_TEAM_IDS=T1,T2`) cannot spell a TOML array
//! comfortably, so every list also accepts a comma-separated string. An empty secret counts as absent,
//! so `REPLAYDESK_SLACK__BOT_TOKEN=` switches an adapter off instead of configuring an empty token.

use std::{fmt, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, de};

const UNITS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 604_800_000),
];

/// Parses `"7d"`, `"15m"`, `"1h30m"`, `"500ms"`. Usable as a clap
/// `value_parser`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad =
        || format!("invalid duration {text:?}: expected e.g. 7d, 12h, 15m, 60s, 500ms or 1h30m");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let (number, tail) = rest.split_at(digits);
        let letters = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(letters);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, ms)| *ms)
            .ok_or_else(bad)?;
        total_ms = number
            .checked_mul(scale)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = tail;
    }
    Ok(Duration::from_millis(total_ms))
}

/// Writes a duration in the form [`parse_duration`] reads, largest units
/// first (`"1h30m"`, `"7d"`, `"0s"`); sub-millisecond parts are dropped.
pub fn format_duration(duration: Duration) -> String {
    let mut ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (name, scale) in UNITS.iter().rev().filter(|(name, _)| *name != "w") {
        if ms >= *scale {
            out.push_str(&format!("{}{name}", ms / scale));
            ms %= scale;
        }
    }
    out
}

/// A `Duration` that deserializes from `"60s"` or from a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Interval;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like \"60s\", \"15m\" or \"7d\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Interval, E> {
                parse_duration(v).map(Interval).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Interval, E> {
                Ok(Interval(Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Interval, E> {
                u64::try_from(v)
                    .map(|v| Interval(Duration::from_secs(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Interval, E> {
                Duration::try_from_secs_f64(v)
                    .map(Interval)
                    .map_err(|_| E::custom("a duration must be a positive number of seconds"))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

/// A list of strings written as a TOML array or as one comma-separated string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List(pub Vec<String>);

impl List {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `value` is allowed: an empty list allows everything.
    pub fn allows(&self, value: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|v| v == value)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl<'de> Deserialize<'de> for List {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Number(i64),
            Many(Vec<ListItem>),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum ListItem {
            Text(String),
            Number(i64),
        }
        Ok(List(match Raw::deserialize(deserializer)? {
            Raw::One(text) => split_list(&text),
            Raw::Number(n) => vec![n.to_string()],
            Raw::Many(items) => items
                .into_iter()
                .map(|item| match item {
                    ListItem::Text(t) => t.trim().to_owned(),
                    ListItem::Number(n) => n.to_string(),
                })
                .filter(|s| !s.is_empty())
                .collect(),
        }))
    }
}

/// A secret: `Debug` prints `[REDACTED]`; an empty value counts as absent.
#[derive(Clone, Default)]
pub struct Secret(Option<SecretString>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        if value.trim().is_empty() {
            Self(None)
        } else {
            Self(Some(SecretString::from(value.trim().to_owned())))
        }
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// The secret's value, for the one place that sends it (an `Authorization` header, an HMAC key).
    pub fn expose(&self) -> Option<&str> {
        self.0.as_ref().map(|s| s.expose_secret())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() {
            "[REDACTED]"
        } else {
            "[unset]"
        })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Number(i64),
        }
        Ok(match Raw::deserialize(deserializer)? {
            Raw::Text(t) => Secret::new(t),
            Raw::Number(n) => Secret::new(n.to_string()),
        })
    }
}

/// Several secrets accepted at once, so a signing secret can be rotated without downtime.
#[derive(Clone, Default)]
pub struct Secrets(Vec<SecretString>);

impl Secrets {
    pub fn is_set(&self) -> bool {
        !self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.expose_secret())
    }

    pub fn from_values<I: IntoIterator<Item = S>, S: Into<String>>(values: I) -> Self {
        Self(
            values
                .into_iter()
                .map(Into::into)
                .filter(|v: &String| !v.trim().is_empty())
                .map(|v| SecretString::from(v.trim().to_owned()))
                .collect(),
        )
    }
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{} REDACTED]", self.0.len())
    }
}

impl<'de> Deserialize<'de> for Secrets {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let List(values) = List::deserialize(deserializer)?;
        Ok(Secrets::from_values(values))
    }
}

/// An id (Discord's snowflakes, Zendesk's app ids) written as text or as a number, read as text: the
/// environment turns `REPLAYDESK_DISCORD__APPLICATION_ID=123` into a number. For
/// `#[serde(deserialize_with = "values::id_as_text")]` on an `Option<String>`.
pub(super) fn id_as_text<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Number(u64),
    }
    Ok(
        Option::<Raw>::deserialize(deserializer)?.map(|raw| match raw {
            Raw::Text(text) => text.trim().to_owned(),
            Raw::Number(number) => number.to_string(),
        }),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_with_a_unit() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("7 weeks").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn durations_format_back_to_the_largest_whole_unit() {
        assert_eq!(format_duration(Duration::from_secs(604_800)), "7d");
        assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn a_secret_never_prints_its_value() {
        let secret = Secret::new("xoxb-very-secret");
        assert_eq!(format!("{secret:?}"), "[REDACTED]");
        assert_eq!(secret.expose(), Some("xoxb-very-secret"));
        assert!(!Secret::new("  ").is_set());
        let many = Secrets::from_values(["a", "b"]);
        assert_eq!(format!("{many:?}"), "[2 REDACTED]");
    }
}
