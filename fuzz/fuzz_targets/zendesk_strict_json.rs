//! The Zendesk body reader that refuses repeated keys (`payload::strict_json`), on arbitrary bytes:
//! never a panic; whatever it accepts, `serde_json` accepts too and reads the same value; what it calls
//! broken JSON, `serde_json` refuses too. (A repeated key is refused as soon as it is read, so a body
//! that is broken further on is refused for the key: the first fuzz run found that, 2026-12-02; it is a
//! refusal either way, and `payload`'s tests keep the case.)
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::zendesk::wire::{StrictError, strict_json};

fuzz_target!(|data: &[u8]| {
    let plain = serde_json::from_slice::<serde_json::Value>(data);
    match strict_json(data) {
        Ok(value) => assert_eq!(plain.ok(), Some(value)),
        // Refused either way (see above): nothing to compare.
        Err(StrictError::Duplicate(_)) => {}
        Err(StrictError::Json(_)) => assert!(plain.is_err()),
    }
});
