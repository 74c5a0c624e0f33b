//! A Zendesk trigger's webhook body as arbitrary bytes: a reason naming the field or a delivery, never a
//! panic; a delivery always has a positive ticket id, and a recovered (broken) body never yields the
//! optional fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::zendesk::wire;

fuzz_target!(|data: &[u8]| {
    if let Ok(delivery) = wire::parse(data) {
        assert!(delivery.ticket_id > 0);
        assert_eq!(delivery.content_hash.len(), 64);
        if delivery.recovered {
            assert!(delivery.requester_email.is_none());
            assert!(delivery.latest_comment.is_none());
        }
    }
});
