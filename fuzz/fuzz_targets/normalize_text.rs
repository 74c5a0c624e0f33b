//! What a reader sees ([`normalize_text`]) of arbitrary text: no panic; every address extracted from
//! the text is one `mentions` matches in it (so erasure scrubs what lookups read); and each such
//! address, written again in the forms a reader still reads as it (a zero-width space inside, a
//! fullwidth `＠`, fully percent-encoded, inside `<b>` tags, quoted-printable `=40`) and put back in the
//! text, is still found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use replaydesk::identity::{extract_emails, mentions, normalize_text, parse_address};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = normalize_text(text);
    let _ = parse_address(text);
    for email in extract_emails(text, &[]) {
        assert!(mentions(text, &email), "extracted but not mentioned");
        let (local, domain) = (email.local_part(), email.domain());
        let percent: String = email
            .as_str()
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect();
        for form in [
            format!("{local}\u{200B}@{domain}"),
            format!("{local}\u{FF20}{domain}"),
            percent,
            format!("<b>{local}</b>@{domain}"),
            format!("{local}=40{domain}"),
        ] {
            let again = format!("{text} {form} ");
            assert!(
                extract_emails(&again, &[]).contains(&email),
                "a form a reader sees as the address was missed"
            );
        }
    }
});
