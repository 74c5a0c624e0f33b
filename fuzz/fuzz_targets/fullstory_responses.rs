//! FullStory's answers (sessions, events, summaries) as arbitrary bytes: a typed error or a value, never
//! a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::fullstory::model::{parse_events, parse_session_list, parse_summary};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = parse_session_list(data) {
        for session in &list.sessions {
            let _ = session.id.path_segment();
        }
    }
    let _ = parse_events(data);
    let _ = parse_summary(data);
});
