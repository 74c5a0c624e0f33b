//! Zendesk webhook signing (developer.zendesk.com/documentation/webhooks/verifying).
//!
//! `x-zendesk-webhook-signature` = base64(HMAC-SHA256(key = the signing secret's bytes *as written*, not
//! base64-decoded, message = `x-zendesk-webhook-signature-timestamp` + raw body)). The timestamp is
//! ISO-8601 (`2021-03-25T05:09:27Z`). Zendesk documents no replay window, so we apply our own five minutes
//! (and dedupe deliveries). Several secrets may be configured during rotation.

use axum::http::{HeaderMap, request::Parts};
use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};

use super::{PLATFORM, Zendesk};
use crate::{
    adapters::inbound::Signed,
    app::AppState,
    signing::{SignatureError, any_secret_matches, header, within_window},
};

pub const SIGNATURE: &str = "x-zendesk-webhook-signature";
pub const TIMESTAMP: &str = "x-zendesk-webhook-signature-timestamp";

/// The webhook takes only deliveries signed with one of `zendesk.webhook_secret`, now.
impl Signed for Zendesk {
    const PLATFORM: &'static str = PLATFORM;

    fn verify(state: &AppState, request: &Parts, body: &[u8]) -> Result<(), SignatureError> {
        verify(
            &request.headers,
            body,
            state.config.zendesk.webhook_secret.iter(),
            state.clock.now(),
        )
    }
}

/// Verifies a Zendesk webhook's signature over its raw body at time `now`.
pub fn verify<'s>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl Iterator<Item = &'s str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let timestamp = header(headers, TIMESTAMP)?;
    let sent = DateTime::parse_from_rfc3339(timestamp)
        .map_err(|_| SignatureError::Malformed(TIMESTAMP))?
        .with_timezone(&Utc);
    within_window(sent, now)?;
    let expected = STANDARD
        .decode(header(headers, SIGNATURE)?)
        .map_err(|_| SignatureError::Malformed(SIGNATURE))?;
    any_secret_matches(secrets, &[timestamp.as_bytes(), body], &expected)
}

/// The signature Zendesk would send for `body` at `timestamp` (for tests, the demo and load tools).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    STANDARD.encode(crate::signing::hmac_sha256(
        secret.as_bytes(),
        &[timestamp.as_bytes(), body],
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    // PLATFORMS.md's known-answer vector, verbatim.
    const SECRET: &str = "dGhpc19zZWNyZXRfaXNfZm9yX3Rlc3Rpbmdfb25seQ==";
    const TS: &str = "2021-03-25T05:09:27Z";
    const BODY: &str = r#"{"ticket_id":"123"}"#;
    const SIGNATURE_VALUE: &str = "YmkQCnSLfGdf5pcvqNFcuOtUpzUb/ss09fM0NCi/wvw=";

    fn headers(ts: &str, signature: &str) -> HeaderMap {
        crate::signing::test_support::headers(&[(TIMESTAMP, ts), (SIGNATURE, signature)])
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2021-03-25T05:10:00Z")
            .unwrap()
            .to_utc()
    }

    #[test]
    fn the_known_answer_vector_verifies_with_the_secret_as_written() {
        assert_eq!(
            verify(
                &headers(TS, SIGNATURE_VALUE),
                BODY.as_bytes(),
                [SECRET].into_iter(),
                now()
            ),
            Ok(())
        );
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), SIGNATURE_VALUE);
    }

    #[test]
    fn the_secret_is_not_base64_decoded() {
        let decoded = String::from_utf8(STANDARD.decode(SECRET).unwrap()).unwrap();
        assert_eq!(
            verify(
                &headers(TS, SIGNATURE_VALUE),
                BODY.as_bytes(),
                [decoded.as_str()].into_iter(),
                now()
            ),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn tampering_staleness_and_bad_headers_are_refused() {
        let h = headers(TS, SIGNATURE_VALUE);
        assert_eq!(
            verify(&h, br#"{"ticket_id":"124"}"#, [SECRET].into_iter(), now()),
            Err(SignatureError::Mismatch)
        );
        let late = DateTime::parse_from_rfc3339("2021-03-25T05:14:28Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            verify(&h, BODY.as_bytes(), [SECRET].into_iter(), late),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(
                &headers("1616648967", SIGNATURE_VALUE),
                BODY.as_bytes(),
                [SECRET].into_iter(),
                now()
            ),
            Err(SignatureError::Malformed(TIMESTAMP))
        );
        assert_eq!(
            verify(
                &headers(TS, "not base64!"),
                BODY.as_bytes(),
                [SECRET].into_iter(),
                now()
            ),
            Err(SignatureError::Malformed(SIGNATURE))
        );
        assert_eq!(
            verify(&h, BODY.as_bytes(), std::iter::empty(), now()),
            Err(SignatureError::NoSecret)
        );
    }
}
