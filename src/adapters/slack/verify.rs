//! Slack request signing (api.slack.com/authentication/verifying-requests-from-slack).
//!
//! `X-Slack-Request-Timestamp` is Unix seconds; `X-Slack-Signature` is `v0=` + lowercase hex
//! HMAC-SHA256(signing secret, `"v0:" + timestamp + ":" + raw body`). Requests more than five minutes
//! from our clock are refused (replays). Several signing secrets may be configured during rotation.

use axum::http::{HeaderMap, request::Parts};
use chrono::{DateTime, Utc};

use super::{PLATFORM, Slack};
use crate::{
    adapters::inbound::Signed,
    app::AppState,
    signing::{SignatureError, any_secret_matches, fresh_unix_timestamp, header},
};

pub const SIGNATURE: &str = "x-slack-signature";
pub const TIMESTAMP: &str = "x-slack-request-timestamp";

/// Slack's HTTP routes take only requests signed with one of `slack.signing_secret`, now.
impl Signed for Slack {
    const PLATFORM: &'static str = PLATFORM;

    fn verify(state: &AppState, request: &Parts, body: &[u8]) -> Result<(), SignatureError> {
        verify(
            &request.headers,
            body,
            state.config.slack.signing_secret.iter(),
            state.clock.now(),
        )
    }
}

/// Verifies a Slack request's signature over its raw body at time `now`.
pub fn verify<'s>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl Iterator<Item = &'s str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let timestamp = fresh_unix_timestamp(headers, TIMESTAMP, now)?;
    let signature = header(headers, SIGNATURE)?;
    let hex_part = signature
        .strip_prefix("v0=")
        .ok_or(SignatureError::Malformed(SIGNATURE))?;
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed(SIGNATURE))?;
    any_secret_matches(
        secrets,
        &[b"v0:", timestamp.as_bytes(), b":", body],
        &expected,
    )
}

/// The headers Slack would send for `body` at `timestamp` (for tests, the demo and load tools).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> (String, String) {
    let ts = timestamp.to_string();
    let mac = crate::signing::hmac_sha256(secret.as_bytes(), &[b"v0:", ts.as_bytes(), b":", body]);
    (ts, format!("v0={}", hex::encode(mac)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signing::test_support::at;

    // PLATFORMS.md's known-answer vector, verbatim.
    const SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const TS: &str = "1531420618";
    const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SIGNATURE_VALUE: &str =
        "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn headers(ts: &str, signature: &str) -> HeaderMap {
        crate::signing::test_support::headers(&[(TIMESTAMP, ts), (SIGNATURE, signature)])
    }

    #[test]
    fn the_known_answer_vector_verifies() {
        let result = verify(
            &headers(TS, SIGNATURE_VALUE),
            BODY.as_bytes(),
            [SECRET].into_iter(),
            at(1_531_420_618 + 10),
        );
        assert_eq!(result, Ok(()));
        assert_eq!(
            sign(SECRET, 1_531_420_618, BODY.as_bytes()).1,
            SIGNATURE_VALUE
        );
    }

    #[test]
    fn a_rotated_secret_list_accepts_either_secret() {
        let result = verify(
            &headers(TS, SIGNATURE_VALUE),
            BODY.as_bytes(),
            ["new-secret", SECRET].into_iter(),
            at(1_531_420_618),
        );
        assert_eq!(result, Ok(()));
    }

    #[test]
    fn a_changed_body_wrong_secret_or_stale_time_is_refused() {
        let now = at(1_531_420_618);
        let h = headers(TS, SIGNATURE_VALUE);
        assert_eq!(
            verify(&h, b"token=tampered", [SECRET].into_iter(), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(&h, BODY.as_bytes(), ["other"].into_iter(), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(
                &h,
                BODY.as_bytes(),
                [SECRET].into_iter(),
                at(1_531_420_618 + 301)
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(
                &HeaderMap::new(),
                BODY.as_bytes(),
                [SECRET].into_iter(),
                now
            ),
            Err(SignatureError::Missing(TIMESTAMP))
        );
        assert_eq!(
            verify(
                &headers(TS, "a2114d"),
                BODY.as_bytes(),
                [SECRET].into_iter(),
                now
            ),
            Err(SignatureError::Malformed(SIGNATURE))
        );
        assert_eq!(
            verify(
                &headers("yesterday", SIGNATURE_VALUE),
                BODY.as_bytes(),
                [SECRET].into_iter(),
                now
            ),
            Err(SignatureError::Malformed(TIMESTAMP))
        );
    }
}
