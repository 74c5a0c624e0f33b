//! [`redact_emails`]: masks email addresses in text that is about to be
//! logged or shown to someone who should not see them.
//!
//! Why it exists: log lines carry ticket text, URLs and error messages that
//! may contain a customer's address; [`CustomerEmail`](super::CustomerEmail)
//! redacts itself, but raw strings need this.
//!
//! Contract:
//! * every email-looking substring becomes `j•••@domain`: the part before
//!   the separator is replaced by its first character and `•••`; the
//!   separator and the domain are kept as they were. `@`, its URL encoding
//!   `%40`, its HTML encodings (`&#64;`, `&#x40;`, `&commat;`) and the
//!   fullwidth and small at signs (`＠`, `﹫`, which a reader sees as `@`) are
//!   all separators, so `email=jane%40acme.com` becomes `email=j•••%40acme.com`;
//! * it errs towards masking: each separator is judged on its own (a
//!   domain can be the next address's local part, as in
//!   `jane@acme.comjoe@acme.com`), the part before it may contain `%`
//!   escapes, and the domain need only look like `label.label`; so nothing
//!   [`extract_emails`](super::extract_emails) finds in a string appears in
//!   its redacted form, and redacting twice changes nothing;
//! * text with no `@`, `%`, `&`, `＠` or `﹫` is returned borrowed after a
//!   scan, without running any regex, because this runs on every log line;
//!   text where nothing matched is also returned borrowed;
//! * one pass over the text: linear time, no panics.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

use super::email::MASK;
use super::extract::compile;

/// The ways an `@` is written in logs, URLs and HTML.
const SEPARATOR_PATTERN: &str = r"@|%40|&#0*64;|&#[xX]0*40;|(?i:&commat;)|\x{FF20}|\x{FE6B}";

static SEPARATOR_RE: LazyLock<Regex> = LazyLock::new(|| compile(SEPARATOR_PATTERN));

/// Replaces every email-looking substring of `s` with its redacted form
/// (`jane@acme.com` → `j•••@acme.com`). Borrows when nothing matched.
#[must_use]
pub fn redact_emails(s: &str) -> Cow<'_, str> {
    if !s.contains(['@', '%', '&', '\u{FF20}', '\u{FE6B}']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::new();
    let mut copied = 0; // s[..copied] is already in `out`
    let mut previous_end = 0; // a local part never reaches back past a separator
    for sep in SEPARATOR_RE.find_iter(s) {
        let before = s.get(previous_end..sep.start()).unwrap_or("");
        previous_end = sep.end();
        let local_start = local_part_start(before) + (sep.start() - before.len());
        let after = s.get(sep.end()..).unwrap_or("");
        if local_start == sep.start() || !starts_with_domain(after) {
            continue;
        }
        // Keep the first character of the local part (ASCII, so one byte).
        let keep_end = local_start + 1;
        out.push_str(s.get(copied..keep_end).unwrap_or(""));
        out.push_str(MASK);
        copied = sep.start();
    }
    if copied == 0 {
        return Cow::Borrowed(s);
    }
    out.push_str(s.get(copied..).unwrap_or(""));
    Cow::Owned(out)
}

/// Byte offset in `before` where the local part ending at its end starts:
/// the trailing run of `[A-Za-z0-9._%+'-]`, without leading `.` or `'`
/// (so `'jane` keeps its quote). `before.len()` when there is none.
fn local_part_start(before: &str) -> usize {
    let bytes = before.as_bytes();
    let mut start = bytes.len();
    while start > 0
        && bytes.get(start - 1).is_some_and(|&b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'\'' | b'-')
        })
    {
        start -= 1;
    }
    while bytes.get(start).is_some_and(|&b| matches!(b, b'.' | b'\'')) {
        start += 1;
    }
    start
}

/// Whether `s` starts with `label.` (one or more) followed by a letter,
/// where a label is `[A-Za-z0-9][A-Za-z0-9-]*`: the shape of a domain.
fn starts_with_domain(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut seen_label = false;
    loop {
        let Some(&first) = bytes.get(i) else {
            return false;
        };
        if seen_label && first.is_ascii_alphabetic() {
            return true;
        }
        if !first.is_ascii_alphanumeric() {
            return false;
        }
        i += 1;
        while bytes
            .get(i)
            .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'-')
        {
            i += 1;
        }
        if bytes.get(i) != Some(&b'.') {
            return false;
        }
        i += 1;
        seen_label = true;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::extract_emails;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_without_an_at_sign_is_borrowed_untouched() {
        assert!(matches!(
            redact_emails("GET /api/sessions 200 in 12ms"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(
            redact_emails("ping <@U123ABC> about lodash@4.17.21"),
            Cow::Borrowed(_)
        ));
        assert!(matches!(redact_emails(""), Cow::Borrowed(_)));
    }

    #[test]
    fn every_address_is_replaced_by_its_redacted_form() {
        let cases = [
            (
                "lookup for jane@acme.com failed",
                "lookup for j•••@acme.com failed",
            ),
            ("JANE.DOE@ACME.COM", "J•••@ACME.COM"),
            ("jane@acme.comjoe@acme.com", "j•••@a•••@acme.com"),
            (
                "jane@acme.com&amp;jane@acme.comjane@acme.com",
                "j•••@acme.com&amp;j•••@a•••@acme.com",
            ),
            ("j@acme.com", "j•••@acme.com"),
            (
                "<mailto:jane@acme.com|jane@acme.com>",
                "<mailto:j•••@acme.com|j•••@acme.com>",
            ),
            (
                "to: 'jane@acme.com', bob@b.io.",
                "to: 'j•••@acme.com', b•••@b.io.",
            ),
            (
                "a%40b%40c.com &commat; x&COMMAT;y.io",
                "a%40b•••%40c.com &commat; x•••&COMMAT;y.io",
            ),
            (
                "GET /users?email=jane%40acme.com&x=1",
                "GET /users?email=j•••%40acme.com&x=1",
            ),
            ("mailto:jane%2Btest%40acme.com", "mailto:j•••%40acme.com"),
            ("user: ..jane@acme.com", "user: ..j•••@acme.com"),
            (
                "jane&#64;acme.com jane&#x40;acme.com",
                "j•••&#64;acme.com j•••&#x40;acme.com",
            ),
            ("image@2x.png", "i•••@2x.png"),
            ("jane\u{FF20}acme.com", "j•••\u{FF20}acme.com"),
            ("jane\u{FE6B}acme.com", "j•••\u{FE6B}acme.com"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_emails(input), expected, "input {input:?}");
        }
    }

    #[test]
    fn text_with_an_at_sign_but_no_address_is_still_borrowed() {
        assert!(matches!(
            redact_emails("user@localhost @handle"),
            Cow::Borrowed(_)
        ));
    }

    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("jane@acme.com".to_owned()),
            Just("J@Acme.IO".to_owned()),
            Just("a.b+c@x-y.example.org".to_owned()),
            Just("mailto:".to_owned()),
            Just("%40".to_owned()),
            Just("%2B".to_owned()),
            Just("&#64;".to_owned()),
            Just("&commat;".to_owned()),
            Just("&amp;".to_owned()),
            "[<>|()'\"@.,;:_+%&#-]{1,3}",
            "[a-zA-Z0-9]{1,6}",
            "[ \nö请]",
            any::<String>().prop_map(|s| s.chars().take(4).collect()),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn redacted_text_contains_none_of_the_extracted_addresses(s in messy_text()) {
            let redacted = redact_emails(&s).to_lowercase();
            for email in extract_emails(&s, &[]) {
                prop_assert!(!redacted.contains(email.as_str()), "{} survived in {:?}", email.as_str(), redacted);
            }
        }

        #[test]
        fn redaction_never_panics_and_is_stable(s in any::<String>()) {
            let once = redact_emails(&s).into_owned();
            prop_assert_eq!(redact_emails(&once), once.as_str());
        }
    }
}
