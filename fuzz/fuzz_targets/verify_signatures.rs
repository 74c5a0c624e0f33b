//! The Slack and Zendesk verifiers with arbitrary headers and bodies: never a panic, never accepted
//! without the secret's signature.
#![no_main]

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::{slack, zendesk};

fn headers(ts_name: &'static str, ts: &[u8], sig_name: &'static str, sig: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let (Ok(t), Ok(s)) = (HeaderValue::from_bytes(ts), HeaderValue::from_bytes(sig)) {
        headers.insert(HeaderName::from_static(ts_name), t);
        headers.insert(HeaderName::from_static(sig_name), s);
    }
    headers
}

fuzz_target!(|data: &[u8]| {
    // Layout: timestamp \0 signature \0 body
    let mut parts = data.splitn(3, |b| *b == 0);
    let (Some(ts), Some(sig), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return;
    };
    let now = chrono::Utc::now();
    let secrets = ["fuzz-secret"];
    // A random signature matching the secret's HMAC would be a 2^-256 event: acceptance is a bug.
    let slack_headers = headers(slack::verify::TIMESTAMP, ts, slack::verify::SIGNATURE, sig);
    assert!(slack::verify::verify(&slack_headers, body, secrets.into_iter(), now).is_err());
    let zendesk_headers = headers(
        zendesk::verify::TIMESTAMP,
        ts,
        zendesk::verify::SIGNATURE,
        sig,
    );
    assert!(zendesk::verify::verify(&zendesk_headers, body, secrets.into_iter(), now).is_err());
});
