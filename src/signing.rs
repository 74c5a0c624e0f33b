//! The pieces every platform's request verification is built from, written once: HMAC-SHA256 over the
//! raw body, constant-time comparison, a replay window around the request's timestamp, and a typed error
//! per way of failing.
//!
//! A leaf module (it uses nothing of the crate): the adapters verify with it and `privacy` keys its
//! hashes with [`hmac_sha256`], so neither imports the other.
//!
//! Each platform's verifier (`adapters/<platform>/verify.rs`) only says which headers hold the signature
//! and timestamp and how the signed message is laid out. Verification always runs on the raw body bytes,
//! before a byte is decoded, and takes `now` from the caller so tests fix the clock. Several secrets can be
//! configured at once (rotation): a request is good if any one of them signed it.

use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a request's timestamp may be from our clock (both directions).
pub const REPLAY_WINDOW: Duration = Duration::from_secs(300);

/// Why a request's signature was not accepted. Every variant is answered 401.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing {0} header")]
    Missing(&'static str),
    #[error("malformed {0} header")]
    Malformed(&'static str),
    #[error("the request timestamp is outside the {}-second window", REPLAY_WINDOW.as_secs())]
    Stale,
    #[error("the signature does not match")]
    Mismatch,
    #[error("no signing secret is configured")]
    NoSecret,
}

impl SignatureError {
    /// The `reason` label of `replaydesk_inbound_signature_failures`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing(_) => "missing",
            Self::Malformed(_) => "malformed",
            Self::Stale => "stale",
            Self::Mismatch => "mismatch",
            Self::NoSecret => "no_secret",
        }
    }
}

/// HMAC-SHA256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this never fails.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Whether `timestamp` is within [`REPLAY_WINDOW`] of `now`.
pub fn within_window(timestamp: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), SignatureError> {
    let skew = (now - timestamp).abs();
    match skew.to_std() {
        Ok(skew) if skew <= REPLAY_WINDOW => Ok(()),
        _ => Err(SignatureError::Stale),
    }
}

/// The Unix-seconds timestamp in header `name` (Slack's and Discord's kind), as sent, once it is
/// known to be within [`REPLAY_WINDOW`] of `now`: what the platform signed along with the body.
pub fn fresh_unix_timestamp<'a>(
    headers: &'a axum::http::HeaderMap,
    name: &'static str,
    now: DateTime<Utc>,
) -> Result<&'a str, SignatureError> {
    let timestamp = header(headers, name)?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::Malformed(name))?;
    let sent =
        DateTime::<Utc>::from_timestamp(seconds, 0).ok_or(SignatureError::Malformed(name))?;
    within_window(sent, now)?;
    Ok(timestamp)
}

/// Reads a header as text, or says which one is missing or malformed.
pub fn header<'a>(
    headers: &'a axum::http::HeaderMap,
    name: &'static str,
) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .ok_or(SignatureError::Missing(name))?
        .to_str()
        .map(str::trim)
        .map_err(|_| SignatureError::Malformed(name))
}

/// Checks `expected` against the HMAC of `parts` under each secret; one match is enough.
pub fn any_secret_matches<'s>(
    secrets: impl Iterator<Item = &'s str>,
    parts: &[&[u8]],
    expected: &[u8],
) -> Result<(), SignatureError> {
    let mut any = false;
    let mut matched = false;
    for secret in secrets {
        any = true;
        // Check every secret, so the time taken does not say which one matched.
        matched |= constant_time_eq(&hmac_sha256(secret.as_bytes(), parts), expected);
    }
    match (any, matched) {
        (false, _) => Err(SignatureError::NoSecret),
        (true, true) => Ok(()),
        (true, false) => Err(SignatureError::Mismatch),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn comparison_needs_equal_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    #[test]
    fn the_window_is_five_minutes_either_way() {
        let now = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        assert!(within_window(now - chrono::Duration::seconds(300), now).is_ok());
        assert!(within_window(now + chrono::Duration::seconds(300), now).is_ok());
        assert_eq!(
            within_window(now - chrono::Duration::seconds(301), now),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            within_window(now + chrono::Duration::seconds(301), now),
            Err(SignatureError::Stale)
        );
    }
}

/// What the verifiers' tests share: the signed headers and a moment, built the same way for every
/// platform.
#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod test_support {
    use axum::http::{HeaderMap, HeaderValue};
    use chrono::{DateTime, TimeZone, Utc};

    /// Headers holding `(name, value)` pairs (a timestamp and a signature).
    pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    /// The moment `seconds` after the Unix epoch.
    pub(crate) fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }
}
