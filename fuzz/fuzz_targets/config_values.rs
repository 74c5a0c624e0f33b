//! Durations and whole configuration documents from arbitrary text: an error naming the key, never a
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::config::{Config, format_duration, parse_duration};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(duration) = parse_duration(text) {
        assert_eq!(
            parse_duration(&format_duration(duration)).ok(),
            Some(duration)
        );
    }
    let _ = Config::from_toml(text);
});
