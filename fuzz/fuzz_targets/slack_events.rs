//! Slack Events API bodies (the `url_verification` challenge, `event_callback` envelopes and the
//! `app_mention` inside) as arbitrary bytes: a typed refusal or a value, never a panic; a decoded mention
//! keeps its envelope's event id.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::slack::wire::{self, Event};

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let as_sent = value.clone();
    if let Ok(Event::Mention { callback, .. }) = wire::event(value) {
        assert_eq!(
            as_sent.get("event_id").and_then(|v| v.as_str()),
            Some(callback.event_id.as_str())
        );
    }
});
