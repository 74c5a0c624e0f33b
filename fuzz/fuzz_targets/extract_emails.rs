//! Email extraction, query parsing, parsing and log redaction on arbitrary text: no panic, and every
//! extracted address re-parses to itself and never survives redaction.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::identity::{CustomerEmail, extract_emails, parse_query, redact_emails};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let exclude = vec!["ourco.com".to_owned()];
    let found = extract_emails(text, &exclude);
    let redacted = redact_emails(text);
    for email in &found {
        assert_eq!(
            CustomerEmail::parse(email.as_str()).ok().as_ref(),
            Some(email)
        );
        assert!(!redacted.to_lowercase().contains(email.as_str()));
    }
    let _ = parse_query(text, &exclude);
    let _ = CustomerEmail::parse(text);
});
