//! Discord request signing (discord.com/developers/docs/interactions/overview#setting-up-an-endpoint).
//!
//! `X-Signature-Ed25519` is the hex Ed25519 signature of `X-Signature-Timestamp` + the raw body, made with
//! the application's key; we check it with the application's public key (hex, from the developer portal)
//! through serenity's [`Verifier`]. Discord probes endpoints with bad signatures and drops those that
//! accept them, so every failure is a [`SignatureError`] (401). Beyond Discord's own scheme, the timestamp
//! must be within our replay window ([`within_window`]), so a captured request cannot be replayed later.
//! [`sign`] makes Discord's signature from a key's seed, for the demo and tests: Discord signs, we only
//! verify, but both sides of the scheme live here.

use std::sync::Arc;

use axum::http::{HeaderMap, request::Parts};
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey};
use serenity::interactions_endpoint::Verifier;

use super::{Discord, PLATFORM, inbound::Endpoint};
use crate::{
    adapters::inbound::Signed,
    app::AppState,
    signing::{SignatureError, fresh_unix_timestamp, header},
};

pub const SIGNATURE: &str = "x-signature-ed25519";
pub const TIMESTAMP: &str = "x-signature-timestamp";

/// The interactions endpoint takes only requests signed with the application's key (its verifier is
/// built once, from `discord.public_key`, and layered into the route's extensions as the [`Endpoint`]).
impl Signed for Discord {
    const PLATFORM: &'static str = PLATFORM;

    fn verify(state: &AppState, request: &Parts, body: &[u8]) -> Result<(), SignatureError> {
        let endpoint = request
            .extensions
            .get::<Arc<Endpoint>>()
            .ok_or(SignatureError::NoSecret)?;
        verify(
            &endpoint.verifier,
            &request.headers,
            body,
            state.clock.now(),
        )
    }
}

/// Verifies a Discord interaction's signature over its raw body at time `now`.
pub fn verify(
    verifier: &Verifier,
    headers: &HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let timestamp = fresh_unix_timestamp(headers, TIMESTAMP, now)?;
    let signature = header(headers, SIGNATURE)?;
    if signature.len() != 128 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SignatureError::Malformed(SIGNATURE));
    }
    verifier
        .verify(signature, timestamp, body)
        .map_err(|()| SignatureError::Mismatch)
}

/// The `X-Signature-Ed25519` Discord would send for `body` at `timestamp`, made with the application key
/// whose 32-byte secret seed is `seed` (for tests, the demo and load tools).
pub fn sign(seed: &[u8; 32], timestamp: i64, body: &[u8]) -> String {
    let mut message = timestamp.to_string().into_bytes();
    message.extend_from_slice(body);
    hex::encode(SigningKey::from_bytes(seed).sign(&message).to_bytes())
}

/// The hex public key (`discord.public_key`) of the key whose secret seed is `seed`.
pub fn public_key(seed: &[u8; 32]) -> String {
    hex::encode(SigningKey::from_bytes(seed).verifying_key().to_bytes())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::signing::test_support::at;

    // PLATFORMS.md's known-answer vector (RFC 8032 test-1 key), verbatim.
    const PUBLIC_KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    const TS: &str = "1700000000";
    const BODY: &str = r#"{"type":1}"#;
    const SIGNATURE_VALUE: &str = "1695961a47c91a1ec033b819b7e87e3dbc583dd0cee6d1fd0216f58ac87b6228ae531ddbf91fb7bc28d7edf7f08604da16f54624f38a6bc0614e4dc13cd47f0f";

    /// RFC 8032 test 1's secret seed (its public key is [`PUBLIC_KEY`]).
    const SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";

    fn verifier() -> Verifier {
        let key: [u8; 32] = hex::decode(PUBLIC_KEY).unwrap().try_into().unwrap();
        Verifier::try_new(key).unwrap()
    }

    fn headers(ts: &str, signature: &str) -> HeaderMap {
        crate::signing::test_support::headers(&[(TIMESTAMP, ts), (SIGNATURE, signature)])
    }

    #[test]
    fn the_known_answer_vector_verifies() {
        let result = verify(
            &verifier(),
            &headers(TS, SIGNATURE_VALUE),
            BODY.as_bytes(),
            at(1_700_000_000 + 10),
        );
        assert_eq!(result, Ok(()));
        let seed: [u8; 32] = hex::decode(SEED).unwrap().try_into().unwrap();
        assert_eq!(public_key(&seed), PUBLIC_KEY);
        assert_eq!(sign(&seed, 1_700_000_000, BODY.as_bytes()), SIGNATURE_VALUE);
    }

    #[test]
    fn a_changed_body_timestamp_or_signature_is_refused() {
        let now = at(1_700_000_000);
        let v = verifier();
        let h = headers(TS, SIGNATURE_VALUE);
        assert_eq!(
            verify(&v, &h, br#"{"type":2}"#, now),
            Err(SignatureError::Mismatch)
        );
        // The timestamp is part of what is signed.
        assert_eq!(
            verify(
                &v,
                &headers("1700000001", SIGNATURE_VALUE),
                BODY.as_bytes(),
                now
            ),
            Err(SignatureError::Mismatch)
        );
        let mut flipped = SIGNATURE_VALUE.to_owned();
        flipped.replace_range(0..1, "2");
        assert_eq!(
            verify(&v, &headers(TS, &flipped), BODY.as_bytes(), now),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn stale_missing_or_malformed_headers_are_refused() {
        let v = verifier();
        let body = BODY.as_bytes();
        assert_eq!(
            verify(
                &v,
                &headers(TS, SIGNATURE_VALUE),
                body,
                at(1_700_000_000 + 301)
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(&v, &HeaderMap::new(), body, at(1_700_000_000)),
            Err(SignatureError::Missing(TIMESTAMP))
        );
        assert_eq!(
            verify(
                &v,
                &headers("soon", SIGNATURE_VALUE),
                body,
                at(1_700_000_000)
            ),
            Err(SignatureError::Malformed(TIMESTAMP))
        );
        assert_eq!(
            verify(&v, &headers(TS, "1695961a"), body, at(1_700_000_000)),
            Err(SignatureError::Malformed(SIGNATURE))
        );
        let not_hex = format!("zz{}", &SIGNATURE_VALUE[2..]);
        assert_eq!(
            verify(&v, &headers(TS, &not_hex), body, at(1_700_000_000)),
            Err(SignatureError::Malformed(SIGNATURE))
        );
    }
}
