//! The Zendesk body reader that refuses repeated keys (`payload::strict_json`), on arbitrary bytes:
//! never a panic; whatever it accepts, `serde_json` accepts too and reads the same value (so a
//! repeated key is the only thing it refuses beyond plain JSON errors); a refusal for a repeated key
//! only ever happens to text `serde_json` reads as JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::zendesk::payload::{StrictError, strict_json};

fuzz_target!(|data: &[u8]| {
    let plain = serde_json::from_slice::<serde_json::Value>(data);
    match strict_json(data) {
        Ok(value) => assert_eq!(plain.ok(), Some(value)),
        Err(StrictError::Duplicate(_)) => assert!(plain.is_ok()),
        Err(StrictError::Json(_)) => assert!(plain.is_err()),
    }
});
