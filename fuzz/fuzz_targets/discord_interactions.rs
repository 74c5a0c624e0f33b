//! Discord interactions: the Ed25519 verifier with arbitrary headers and bodies (never accepted without
//! the application key's signature), then the body read as an envelope, an interaction and what it asks
//! for. A typed error or a value, never a panic.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::discord::{verify, wire};
use serenity::interactions_endpoint::Verifier;

/// PLATFORMS.md's known-answer public key (RFC 8032 test 1).
const PUBLIC_KEY: [u8; 32] = [
    0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3, 0xc9, 0x64, 0x07, 0x3a,
    0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
];

fuzz_target!(|data: &[u8]| {
    // Layout: timestamp \0 signature \0 body
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(ts), Some(sig), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    if let Ok(verifier) = Verifier::try_new(PUBLIC_KEY) {
        let mut headers = HeaderMap::new();
        if let (Ok(t), Ok(s)) = (HeaderValue::from_bytes(ts), HeaderValue::from_bytes(sig)) {
            headers.insert(HeaderName::from_static(verify::TIMESTAMP), t);
            headers.insert(HeaderName::from_static(verify::SIGNATURE), s);
        }
        // Only the private key's signature over this exact timestamp and body verifies: the fuzzer
        // finding one would be a forgery.
        assert!(verify::verify(&verifier, &headers, body, chrono::Utc::now()).is_err());
    }
    let _ = wire::envelope(body);
    if let Ok(parsed) = wire::parse(body) {
        let _ = parsed.user_id();
        let _ = parsed.intent(&["ourco.com".to_owned()]);
    }
});
