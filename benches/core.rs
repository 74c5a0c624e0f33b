//! Core hot paths, each beside a baseline measured in the same run (these machines are noisy: compare
//! ratios, not absolute times).
//!
//! - `extract/10kb_ticket`: customer emails from a 10 KB ticket body (quoted replies, HTML, signatures),
//!   against `baseline/scan_10kb` (one pass over the same bytes counting `@`: the least any extractor does).
//! - `parse/100_sessions`: a 100-session list-sessions answer in the official shape, against
//!   `baseline/serde_value_100_sessions` (serde_json into a `Value`, which our reader starts from).
//! - `redact/log_line`: redacting one log line with an email, against `baseline/log_line_copy`.
//!
//! Run: `cargo bench --bench core` (add `-- --quick` for a short run).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use replaydesk::{fullstory::model::parse_session_list, identity};

fn ticket_body() -> String {
    let mut body = String::new();
    let paragraph = "Hi team, when I press Pay on the checkout page nothing happens &amp; the spinner keeps \
        going. I tried Chrome and Safari. My account is <a href=\"mailto:Jane.Doe+billing@Acme.com\">\
        Jane.Doe+billing@Acme.com</a>, and my colleague bob@acme.io saw it too.\n\
        On Mon, 3 Jun 2024 at 10:00, Support <help@ourco.com> wrote:\n> Could you tell us which \
        browser you use? [our docs](https://docs.ourco.com/pay) may help.\n> Thanks, the team\n\n";
    while body.len() < 10 * 1024 {
        body.push_str(paragraph);
    }
    body.truncate(10 * 1024);
    body
}

fn sessions_body(n: usize) -> Vec<u8> {
    let sessions: Vec<_> = (0..n)
        .map(|i| {
            serde_json::json!({
                "userId": "5191865402245120",
                "sessionId": format!("{}", 4_000_000_000_000_000u64 + i as u64),
                "createdTime": format!("{}", 1_700_000_000 + i * 3600),
                "fsUrl": format!("https://app.fullstory.com/ui/ORG/session/5191865402245120:{}", 4_000_000_000_000_000u64 + i as u64),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({ "sessions": sessions })).unwrap_or_default()
}

fn benches(c: &mut Criterion) {
    let body = ticket_body();
    let exclude = vec!["ourco.com".to_owned()];
    c.bench_function("baseline/scan_10kb", |b| {
        b.iter(|| {
            black_box(body.as_bytes())
                .iter()
                .filter(|&&c| c == b'@')
                .count()
        })
    });
    c.bench_function("extract/10kb_ticket", |b| {
        b.iter(|| identity::extract_emails(black_box(&body), &exclude))
    });

    let sessions = sessions_body(100);
    c.bench_function("baseline/serde_value_100_sessions", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&sessions)).map(drop))
    });
    c.bench_function("parse/100_sessions", |b| {
        b.iter(|| parse_session_list(black_box(&sessions)).map(|l| l.sessions.len()))
    });

    let line = "2026-11-25T05:00:00Z INFO request{request_id=3f1c route=/slack/commands}: lookup for jane.doe@acme.com took 120ms sessions=3\n";
    c.bench_function("baseline/log_line_copy", |b| {
        b.iter(|| black_box(line).to_owned())
    });
    c.bench_function("redact/log_line", |b| {
        b.iter(|| identity::redact_emails(black_box(line)).into_owned())
    });
}

criterion_group!(core, benches);
criterion_main!(core);
