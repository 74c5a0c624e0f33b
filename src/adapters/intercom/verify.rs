//! Intercom's two signatures, over the raw body, with the app's client secret (several during rotation):
//!
//! - **Webhooks** (`POST /intercom/webhook`): `X-Hub-Signature: sha1=<hex HMAC-SHA1 of the raw body,
//!   keyed by the client secret>` (developers.intercom.com, "Webhooks → Signed notifications";
//!   docs/intercom.md). SHA-1 is Intercom's choice, not ours; it is computed by `ring`'s legacy HMAC,
//!   already in the build for TLS.
//! - **Canvas Kit** (`POST /intercom/canvas/…`): `X-Body-Signature: <hex HMAC-SHA256 of the raw body,
//!   keyed by the client secret>` (an Intercom staff answer on its developer forum; docs/intercom.md).
//!
//! Neither carries a timestamp, so there is no replay window: a replayed webhook is a duplicate
//! delivery (its notification `id` is the delivery key), and a replayed canvas request only shows the
//! same canvas again.

use axum::http::{HeaderMap, request::Parts};

use super::{Intercom, PLATFORM};
use crate::{
    adapters::inbound::Signed,
    app::AppState,
    signing::{self, SignatureError, any_secret_matches, constant_time_eq, header},
};

pub const HUB_SIGNATURE: &str = "x-hub-signature";
pub const BODY_SIGNATURE: &str = "x-body-signature";

/// The webhook takes only notifications signed with one of `intercom.client_secret`.
impl Signed for Intercom {
    const PLATFORM: &'static str = PLATFORM;

    fn verify(state: &AppState, request: &Parts, body: &[u8]) -> Result<(), SignatureError> {
        verify_webhook(
            &request.headers,
            body,
            state.config.intercom.client_secret.iter(),
        )
    }
}

/// A Canvas Kit request (the inbox app), signed by Intercom.
pub struct Canvas;

impl Signed for Canvas {
    const PLATFORM: &'static str = PLATFORM;

    fn verify(state: &AppState, request: &Parts, body: &[u8]) -> Result<(), SignatureError> {
        verify_canvas(
            &request.headers,
            body,
            state.config.intercom.client_secret.iter(),
        )
    }
}

/// Verifies a webhook's `X-Hub-Signature` over its raw body.
pub fn verify_webhook<'s>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl Iterator<Item = &'s str>,
) -> Result<(), SignatureError> {
    let sent = header(headers, HUB_SIGNATURE)?;
    let expected = sent
        .strip_prefix("sha1=")
        .and_then(|hex_digits| hex::decode(hex_digits).ok())
        .ok_or(SignatureError::Malformed(HUB_SIGNATURE))?;
    let mut any = false;
    let mut matched = false;
    for secret in secrets {
        any = true;
        // Every secret is checked, so the time taken does not say which one matched.
        matched |= constant_time_eq(&hmac_sha1(secret.as_bytes(), body), &expected);
    }
    match (any, matched) {
        (false, _) => Err(SignatureError::NoSecret),
        (true, true) => Ok(()),
        (true, false) => Err(SignatureError::Mismatch),
    }
}

/// Verifies a Canvas Kit request's `X-Body-Signature` over its raw body.
pub fn verify_canvas<'s>(
    headers: &HeaderMap,
    body: &[u8],
    secrets: impl Iterator<Item = &'s str>,
) -> Result<(), SignatureError> {
    let expected = hex::decode(header(headers, BODY_SIGNATURE)?)
        .map_err(|_| SignatureError::Malformed(BODY_SIGNATURE))?;
    any_secret_matches(secrets, &[body], &expected)
}

fn hmac_sha1(key: &[u8], body: &[u8]) -> Vec<u8> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    ring::hmac::sign(&key, body).as_ref().to_vec()
}

/// The `X-Hub-Signature` Intercom would send for `body` (for tests, the demo and load tools).
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    format!("sha1={}", hex::encode(hmac_sha1(secret.as_bytes(), body)))
}

/// The `X-Body-Signature` Intercom would send for `body`.
pub fn sign_canvas(secret: &str, body: &[u8]) -> String {
    hex::encode(signing::hmac_sha256(secret.as_bytes(), &[body]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::test_support::headers;

    // Known-answer vectors computed apart from this code (Python's hmac and `openssl dgst -hmac`).
    const SECRET: &str = "intercom-client-secret";
    const WEBHOOK: &str = r#"{"type":"notification_event","app_id":"ws1","topic":"ping","id":"notif_1","data":{"item":{}}}"#;
    const WEBHOOK_SIGNATURE: &str = "sha1=e298d95e85ea3961345adc9c6fccc66891c7be68";
    const CANVAS: &str = r#"{"workspace_id":"ws1"}"#;
    const CANVAS_SIGNATURE: &str =
        "6f1f61e61d6fa630e5a847c550e049e5fb9fbf42ea32b50c762989e1326eb097";

    #[test]
    fn the_known_answer_vectors_verify_and_are_what_we_sign() {
        let h = headers(&[(HUB_SIGNATURE, WEBHOOK_SIGNATURE)]);
        assert_eq!(
            verify_webhook(&h, WEBHOOK.as_bytes(), ["old", SECRET].into_iter()),
            Ok(())
        );
        assert_eq!(sign_webhook(SECRET, WEBHOOK.as_bytes()), WEBHOOK_SIGNATURE);
        let h = headers(&[(BODY_SIGNATURE, CANVAS_SIGNATURE)]);
        assert_eq!(
            verify_canvas(&h, CANVAS.as_bytes(), [SECRET].into_iter()),
            Ok(())
        );
        assert_eq!(sign_canvas(SECRET, CANVAS.as_bytes()), CANVAS_SIGNATURE);
    }

    #[test]
    fn tampering_a_wrong_scheme_and_missing_headers_are_refused() {
        let h = headers(&[(HUB_SIGNATURE, WEBHOOK_SIGNATURE)]);
        assert_eq!(
            verify_webhook(&h, b"{}", [SECRET].into_iter()),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webhook(&h, WEBHOOK.as_bytes(), std::iter::empty()),
            Err(SignatureError::NoSecret)
        );
        let bare = headers(&[(HUB_SIGNATURE, &WEBHOOK_SIGNATURE[5..])]);
        assert_eq!(
            verify_webhook(&bare, WEBHOOK.as_bytes(), [SECRET].into_iter()),
            Err(SignatureError::Malformed(HUB_SIGNATURE))
        );
        assert_eq!(
            verify_webhook(&HeaderMap::new(), WEBHOOK.as_bytes(), [SECRET].into_iter()),
            Err(SignatureError::Missing(HUB_SIGNATURE))
        );
        // The canvas scheme is SHA-256 under its own header: the webhook's signature is not one.
        let crossed = headers(&[(BODY_SIGNATURE, &WEBHOOK_SIGNATURE[5..])]);
        assert_eq!(
            verify_canvas(&crossed, WEBHOOK.as_bytes(), [SECRET].into_iter()),
            Err(SignatureError::Mismatch)
        );
        let h = headers(&[(BODY_SIGNATURE, CANVAS_SIGNATURE)]);
        assert_eq!(
            verify_canvas(&h, br#"{"workspace_id":"ws2"}"#, [SECRET].into_iter()),
            Err(SignatureError::Mismatch)
        );
    }
}
