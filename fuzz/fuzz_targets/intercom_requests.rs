//! Intercom's inbound readers on arbitrary bytes: a webhook notification and its conversation, a Canvas
//! Kit request and the `stored_data` it echoes, and both signature checks. Never a panic; a refusal of a
//! body names a field without quoting the body.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use replaydesk::adapters::intercom::{stored, verify, wire};

fuzz_target!(|data: &[u8]| {
    match wire::notification(data) {
        Ok(notification) => {
            let _ = wire::conversation(&notification.data.item)
                .map(|c| c.latest_customer_text().map(str::len));
        }
        Err(reason) => assert!(reason.len() < 400),
    }
    if let Ok(request) = wire::canvas_request(data) {
        let _ = stored::open(
            request.stored_data(),
            ["secret"].into_iter(),
            &request.workspace_id,
            request.conversation_id(),
        );
    }
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(&data[..data.len().min(80)]) {
        headers.insert(verify::HUB_SIGNATURE, value.clone());
        headers.insert(verify::BODY_SIGNATURE, value);
    }
    let _ = verify::verify_webhook(&headers, data, ["secret"].into_iter());
    let _ = verify::verify_canvas(&headers, data, ["secret"].into_iter());
});
