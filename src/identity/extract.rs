//! Finding customer email addresses in free text: ticket bodies, Slack
//! messages, forwarded emails.
//!
//! Why it exists: agents do not type the customer's address into a form;
//! it is buried in a Zendesk ticket (HTML, entities, quoted replies), a
//! Slack message (`<mailto:jane@acme.com|jane@acme.com>`) or a Discord post
//! (markdown). This module turns any of those into the list of addresses to
//! look up.
//!
//! Contract of [`extract_emails`]:
//! * every result is a valid [`CustomerEmail`] (it was built by `parse`);
//! * results are de-duplicated case-insensitively, in order of first
//!   appearance;
//! * addresses at an excluded domain, or a subdomain of one, are left out;
//! * it never panics and runs in time linear in the input (the `regex` crate
//!   has no backtracking; every other step is a single pass); patterns are
//!   compiled once per process;
//! * it prefers missing an address to inventing one: a match that is only a
//!   piece of a larger token (`jöhn@acme.com`, `jane..doe@acme.com`,
//!   `jane@acme.com2`) is dropped rather than cut down to something that
//!   looks valid but belongs to someone else.
//!
//! How: the text is first read as a reader sees it ([`super::normalize_text`]:
//! HTML entities and tags, percent-escapes until stable, quoted-printable
//! `=40`, NFKC, invisible characters dropped, an address in a URL's user
//! part set apart), then `mailto:` targets lose their `?subject=...` query,
//! then one regex finds `local@domain` (or `local%40domain`), then the
//! characters on either side are checked, then [`CustomerEmail::parse`] has
//! the last word. Things that are deliberately *not* addresses:
//! `user@localhost`, `@handle`, `foo@bar`, `a@b.c`, version strings
//! (`react@18.2.0`), Slack mentions (`<@U123ABC>`, `<#C123|general>`),
//! `https://medium.com/@user/post`, and `logo@2x.png` (file extensions
//! that are not real TLDs are refused by `CustomerEmail::parse`).

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::LazyLock;

use regex::{Captures, Regex};

use super::email::{domain_is_within, normalize_domain};
use super::{CustomerEmail, Identity};

/// An address in decoded text. The local part starts with a letter or digit
/// (so `_jane@acme.com_` in markdown italics yields `jane@acme.com`), may
/// contain `._+'-` between runs of `[A-Za-z0-9_+-]`, and is followed by `@`
/// or its URL encoding `%40`. The domain is dot-separated labels ending in a
/// top-level domain of letters (or `xn--` punycode).
const EMAIL_PATTERN: &str = concat!(
    r"(?P<local>[A-Za-z0-9][A-Za-z0-9_+-]*(?:[.'][A-Za-z0-9_+-]+)*)",
    r"(?:@|%40)",
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+",
    r"(?:xn--[A-Za-z0-9-]*[A-Za-z0-9]|[A-Za-z]{2,63}))",
);

/// HTML character references worth decoding: numeric ones and a few names.
const ENTITY_PATTERN: &str = r"&(?:#[0-9]{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z]{2,8});";

/// A `mailto:` target, up to the first character that cannot be part of it.
const MAILTO_PATTERN: &str = r#"(?i)mailto:[^\s<>"'|()\[\]{}`]*"#;

static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| compile(EMAIL_PATTERN));
static ENTITY_RE: LazyLock<Regex> = LazyLock::new(|| compile(ENTITY_PATTERN));
static MAILTO_RE: LazyLock<Regex> = LazyLock::new(|| compile(MAILTO_PATTERN));

/// Compiles one of this module's constant patterns.
///
/// The patterns are literals exercised by every test, so failure here is a
/// programming error caught before release, not a runtime condition.
pub(super) fn compile(pattern: &str) -> Regex {
    match Regex::new(pattern) {
        Ok(re) => re,
        Err(err) => panic!("built-in pattern {pattern:?} does not compile: {err}"),
    }
}

/// Customer email addresses found in `text`, de-duplicated, in order of
/// first appearance, leaving out any at a domain in `exclude_domains` or a
/// subdomain of one (case-insensitive; `ourco.com` also excludes
/// `support.ourco.com`). See the module docs for what is recognised.
#[must_use]
pub fn extract_emails(text: &str, exclude_domains: &[String]) -> Vec<CustomerEmail> {
    let excluded: Vec<String> = exclude_domains
        .iter()
        .map(|d| normalize_domain(d))
        .filter(|d| !d.is_empty())
        .collect();
    let mut seen = HashSet::new();
    let mut found = Vec::new();
    for_each_email(text, |email| {
        if !is_excluded(&email, &excluded) && seen.insert(email.clone()) {
            found.push(email);
        }
    });
    found
}

/// [`extract_emails`], each wrapped as [`Identity::Email`].
#[must_use]
pub fn extract_identities(text: &str, exclude_domains: &[String]) -> Vec<Identity> {
    extract_emails(text, exclude_domains)
        .into_iter()
        .map(Identity::Email)
        .collect()
}

/// Whether `text` mentions `email` in any form extraction reads (plain, `mailto:` with `%40`, HTML
/// entities such as `&#64;`, and every form [`super::normalize_text`] reads: tags, percent-escapes,
/// quoted-printable, fullwidth, invisible characters, a URL's user part), compared exactly after
/// normalisation: `alice.bob@x.example` does not
/// mention `bob@x.example`, and `_` or `%` are ordinary characters. Text that is JSON (a stored job
/// payload) is also read string by string, so JSON escapes (`\u0040`) hide nothing. Erasure scrubs
/// what this finds ([`crate::store::SqlStore::scrub_payloads_mentioning`]).
#[must_use]
pub fn mentions(text: &str, email: &CustomerEmail) -> bool {
    let mut found = false;
    for_each_email(text, |e| found |= &e == email);
    if found || !text.contains('\\') {
        return found;
    }
    if let Ok(value) = serde_json::from_str::<serde_json::Value>(text) {
        visit_strings(&value, &mut |s| {
            if !found {
                for_each_email(s, |e| found |= &e == email);
            }
        });
    }
    found
}

fn visit_strings(value: &serde_json::Value, f: &mut impl FnMut(&str)) {
    match value {
        serde_json::Value::String(s) => f(s),
        serde_json::Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        serde_json::Value::Object(map) => map.iter().for_each(|(k, v)| {
            f(k);
            visit_strings(v, f);
        }),
        _ => {}
    }
}

/// Whether `email` is at one of the (normalised) `excluded` domains.
pub(super) fn is_excluded(email: &CustomerEmail, excluded: &[String]) -> bool {
    excluded.iter().any(|d| domain_is_within(email.domain(), d))
}

/// Calls `f` with every address found in `text`, in order, duplicates included.
pub(super) fn for_each_email(text: &str, mut f: impl FnMut(CustomerEmail)) {
    // An `@` can only come from `@`, `%40`, `=40`, an entity such as `&#64;`, or a character NFKC
    // makes one of (`＠`).
    if text.is_ascii() && !text.bytes().any(|b| matches!(b, b'@' | b'%' | b'&' | b'=')) {
        return;
    }
    let decoded = super::normalize_text(text);
    let decoded = drop_mailto_queries(&decoded);
    let text = decoded.as_ref();
    for caps in EMAIL_RE.captures_iter(text) {
        let (Some(whole), Some(local), Some(domain)) =
            (caps.get(0), caps.name("local"), caps.name("domain"))
        else {
            continue;
        };
        let before = text.get(..whole.start()).unwrap_or("");
        let after = text.get(whole.end()..).unwrap_or("");
        if !starts_cleanly(before) || !ends_cleanly(after) {
            continue;
        }
        let candidate = format!("{}@{}", local.as_str(), domain.as_str());
        if let Ok(email) = CustomerEmail::parse(&candidate) {
            f(email);
        }
    }
}

/// Letters and digits of alphabetic scripts glue onto an address; CJK
/// characters do not, because those languages write no space before one
/// (`请联系jane@acme.com`).
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() && !is_ideographic(c)
}

fn is_ideographic(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{9FFF}'   // CJK radicals, kana, CJK ideographs, punctuation
        | '\u{AC00}'..='\u{D7AF}' // Hangul syllables
        | '\u{F900}'..='\u{FAFF}' // CJK compatibility ideographs
        | '\u{FF00}'..='\u{FFEF}' // full-width forms
        | '\u{20000}'..='\u{3FFFF}')
}

/// The match is not the tail of a longer token: walking back over the
/// punctuation an address may contain, we must not meet a letter or digit
/// (`jöhn@`, `x..jane@`), an `@` (`a@jane@`) or a `%` (`%2Bjane%40`).
fn starts_cleanly(before: &str) -> bool {
    for c in before.chars().rev() {
        match c {
            '.' | '_' | '+' | '-' | '\'' => {}
            '@' | '%' => return false,
            c => return !is_word_char(c),
        }
    }
    true
}

/// The match is not the head of a longer token: it must not be followed by
/// a letter or digit (`acme.com2`, `acme.comé`), an `@`, or hyphens and
/// underscores that lead to one (`acme.com-foo`). Trailing punctuation,
/// including a lone `_` closing markdown italics, is fine.
fn ends_cleanly(after: &str) -> bool {
    for c in after.chars() {
        match c {
            '-' | '_' => {}
            '@' => return false,
            c => return !is_word_char(c),
        }
    }
    true
}

/// Decodes HTML character references (`&#64;`, `&#x40;`, `&amp;`, `&lt;`,
/// `&gt;`, `&quot;`, `&apos;`, `&nbsp;`, `&commat;`), leaving unknown or
/// invalid ones as they are. Borrows when there is nothing to decode.
pub(super) fn decode_html_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    ENTITY_RE.replace_all(text, |caps: &Captures<'_>| {
        let entity = caps.get(0).map_or("", |m| m.as_str());
        match decode_entity(entity) {
            Some(c) => c.to_string(),
            None => entity.to_owned(),
        }
    })
}

fn decode_entity(entity: &str) -> Option<char> {
    let body = entity.strip_prefix('&')?.strip_suffix(';')?;
    if let Some(number) = body.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        return char::from_u32(code).filter(|&c| c != '\0');
    }
    let name = body.to_ascii_lowercase();
    Some(match name.as_str() {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => ' ',
        "commat" => '@',
        _ => return None,
    })
}

/// Rewrites every `mailto:TARGET?QUERY` as `mailto:TARGET` (the target is already percent-decoded:
/// [`super::normalize_text`]), so `mailto:jane@acme.com?subject=Hi` reads `mailto:jane@acme.com`.
/// Borrows when there is no `mailto:`.
fn drop_mailto_queries(text: &str) -> Cow<'_, str> {
    MAILTO_RE.replace_all(text, |caps: &Captures<'_>| {
        let whole = caps.get(0).map_or("", |m| m.as_str());
        let target = whole.get("mailto:".len()..).unwrap_or("");
        let address = target
            .split_once('?')
            .map_or(target, |(address, _)| address);
        format!("mailto:{address}")
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Instant;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn mentions_is_exact_and_reads_every_encoded_form() {
        let bob = CustomerEmail::parse("bob@x-corp.example").unwrap();
        let cases: &[(&str, bool)] = &[
            (r#"{"email":"bob@x-corp.example"}"#, true),
            (r#"{"email":"BOB@X-Corp.Example"}"#, true),
            (r#"{"text":"write to bob&#64;x-corp.example"}"#, true),
            (
                r#"{"text":"<a href=\"mailto:bob%40x-corp.example\">me</a>"}"#,
                true,
            ),
            (r#"{"text":"bob\u0040x-corp.example"}"#, true),
            ("last error: bob@x-corp.example refused", true),
            (r#"{"email":"alice.bob@x-corp.example"}"#, false),
            (r#"{"email":"failbob@x-corp.example"}"#, false),
            (r#"{"email":"bob@x-corp.example.org"}"#, false),
            (r#"{"email":"bob@y-corp.example"}"#, false),
            ("null", false),
        ];
        for (text, expected) in cases {
            assert_eq!(mentions(text, &bob), *expected, "{text}");
        }
        let underscore = CustomerEmail::parse("b_b@x-corp.example").unwrap();
        assert!(!mentions(r#"{"email":"bob@x-corp.example"}"#, &underscore));
        assert!(mentions(r#"{"email":"b_b@x-corp.example"}"#, &underscore));
    }

    /// Issue 22 row 7: forms a reader sees as jane@acme.com, each found and matched by `mentions`.
    const READER_FORMS: &[&str] = &[
        "ja\u{200B}ne@acme.com",
        "j\u{200C}a\u{200D}n\u{2060}e\u{FEFF}@acme.com",
        "jan\u{AD}e@acme.com",
        "jane\u{FF20}acme.com",
        "ｊａｎｅ＠ａｃｍｅ．ｃｏｍ",
        "%6A%61%6E%65%40%61%63%6D%65%2E%63%6F%6D",
        "jane%40acme%2ecom",
        "jane%2540acme.com",
        "<b>jane</b>@acme.com",
        "&lt;b&gt;jane&lt;/b&gt;@acme.com",
        "<i>j</i><b>ane</b><span>@</span>acme.com",
        "https://jane%40acme.com@host.example/",
        "https://jane@acme.com@host.example/",
        "mailto:jane%40acme.com",
        "jane=40acme.com",
        "jane=40acme=2Ecom",
        "jane&#x40;acme&#46;com",
    ];

    #[test]
    fn every_form_a_reader_sees_as_the_address_is_found_and_mentioned() {
        let jane = CustomerEmail::parse("jane@acme.com").unwrap();
        for form in READER_FORMS {
            for text in [
                (*form).to_owned(),
                format!("Hi, please look at {form}, thanks"),
                format!("<p>Customer: {form}</p>"),
                serde_json::json!({ "text": form }).to_string(),
            ] {
                assert_eq!(extracted(&text, &[]), ["jane@acme.com"], "{text:?}");
                assert!(mentions(&text, &jane), "{text:?}");
            }
        }
    }

    fn extracted(text: &str, exclude: &[&str]) -> Vec<String> {
        extract_emails(text, &strings(exclude))
            .into_iter()
            .map(CustomerEmail::into_inner)
            .collect()
    }

    struct Case {
        what: &'static str,
        text: &'static str,
        expected: &'static [&'static str],
    }

    const JANE: &[&str] = &["jane@acme.com"];
    const NONE: &[&str] = &[];

    #[rustfmt::skip]
    const CASES: &[Case] = &[
        Case { what: "a plain address", text: "Customer is jane@acme.com, can you look?", expected: JANE },
        Case { what: "two addresses in order", text: "bob@example.org then jane@acme.com", expected: &["bob@example.org", "jane@acme.com"] },
        Case { what: "a Slack mailto link with a label", text: "<mailto:jane@acme.com|jane@acme.com>", expected: JANE },
        Case { what: "a Slack mailto link without a label", text: "ping <mailto:jane@acme.com>", expected: JANE },
        Case { what: "a Slack link whose label differs", text: "<mailto:jane@acme.com|Jane Doe>", expected: JANE },
        Case { what: "an HTML mailto anchor", text: r#"<p>From <a href="mailto:jane@acme.com">Jane</a></p>"#, expected: JANE },
        Case { what: "a decimal entity for @", text: "jane&#64;acme.com", expected: JANE },
        Case { what: "a hex entity for @", text: "jane&#x40;acme.com and bob&#X40;acme.com", expected: &["jane@acme.com", "bob@acme.com"] },
        Case { what: "the named entity for @", text: "jane&commat;acme.com", expected: JANE },
        Case { what: "escaped angle brackets", text: "Jane Doe &lt;jane@acme.com&gt;", expected: JANE },
        Case { what: "an ampersand entity nearby", text: "Tom &amp; Jane: jane@acme.com", expected: JANE },
        Case { what: "quote entities", text: "&quot;jane@acme.com&quot;", expected: JANE },
        Case { what: "non-breaking spaces", text: "email:&nbsp;jane@acme.com&nbsp;thanks", expected: JANE },
        Case { what: "an HTML body with line breaks", text: "Email<br>jane@acme.com<br/>Phone", expected: JANE },
        Case { what: "a markdown mailto link", text: "[jane@acme.com](mailto:jane@acme.com)", expected: JANE },
        Case { what: "a name and angle brackets", text: "From: Jane Doe <jane@acme.com>", expected: JANE },
        Case { what: "a trailing full stop", text: "Please write to jane@acme.com.", expected: JANE },
        Case { what: "trailing commas, semicolons and colons", text: "jane@acme.com, bob@acme.com; carol@acme.com: done", expected: &["jane@acme.com", "bob@acme.com", "carol@acme.com"] },
        Case { what: "trailing ! and ?", text: "Is it jane@acme.com? Yes, bob@acme.com!", expected: &["jane@acme.com", "bob@acme.com"] },
        Case { what: "parentheses and brackets", text: "(jane@acme.com) [bob@acme.com]", expected: &["jane@acme.com", "bob@acme.com"] },
        Case { what: "single and double quotes", text: r#"'jane@acme.com' "bob@acme.com""#, expected: &["jane@acme.com", "bob@acme.com"] },
        Case { what: "a possessive after the address", text: "jane@acme.com's account", expected: JANE },
        Case { what: "plus tags, kept distinct", text: "jane@acme.com and jane+test@acme.com", expected: &["jane@acme.com", "jane+test@acme.com"] },
        Case { what: "upper case, normalised", text: "JANE@ACME.COM", expected: JANE },
        Case { what: "case-insensitive duplicates", text: "Jane@Acme.com wrote; reply to jane@acme.COM", expected: JANE },
        Case { what: "first appearance order with repeats", text: "bob@b.com, alice@a.com, bob@b.com", expected: &["bob@b.com", "alice@a.com"] },
        Case { what: "a mailto with a subject", text: "mailto:jane@acme.com?subject=Help%20me&body=hi", expected: JANE },
        Case { what: "a Slack mailto with a query", text: "<mailto:jane@acme.com?subject=Hi|write to Jane>", expected: JANE },
        Case { what: "%40 in a mailto link", text: r#"<a href="mailto:jane%40acme.com">Jane</a>"#, expected: JANE },
        Case { what: "%2B and %40 in a mailto link", text: "mailto:jane%2Btest%40acme.com", expected: &["jane+test@acme.com"] },
        Case { what: "%40 in a URL query", text: "https://app.example.com/users?email=jane%40acme.com&tab=1", expected: JANE },
        Case { what: "several mailto recipients", text: "mailto:jane@acme.com,bob@acme.com", expected: &["jane@acme.com", "bob@acme.com"] },
        Case { what: "a quoted reply header", text: "Still broken.\n\nOn Mon, 3 Jun 2024 at 10:00, Jane <jane@acme.com> wrote:\n> it crashes", expected: JANE },
        Case { what: "an address in a quoted line", text: "> From: jane@acme.com\n> Sent: Monday", expected: JANE },
        Case { what: "a multi-level domain", text: "jane@mail.acme.co.uk", expected: &["jane@mail.acme.co.uk"] },
        Case { what: "hyphens and underscores", text: "first_last-1@eu-west.acme-corp.io", expected: &["first_last-1@eu-west.acme-corp.io"] },
        Case { what: "an apostrophe inside the local part", text: "o'connor@acme.com", expected: &["o'connor@acme.com"] },
        Case { what: "a punycode domain", text: "jane@xn--mnchen-3ya.de", expected: &["jane@xn--mnchen-3ya.de"] },
        Case { what: "markdown italics with underscores", text: "_jane@acme.com_", expected: JANE },
        Case { what: "markdown bold and code", text: "**jane@acme.com** `bob@acme.com`", expected: &["jane@acme.com", "bob@acme.com"] },
        Case { what: "CJK text with no spaces", text: "请联系jane@acme.com谢谢", expected: JANE },
        Case { what: "an email in a URL path", text: "https://status.acme.com/u/jane@acme.com/edit", expected: JANE },
        // Negative cases: nothing here is a customer address.
        Case { what: "a machine-local address", text: "root@localhost and user@localhost.", expected: NONE },
        Case { what: "a social handle", text: "follow @handle and @acme.com", expected: NONE },
        Case { what: "a domain without a dot", text: "foo@bar", expected: NONE },
        Case { what: "a one-letter top-level domain", text: "a@b.c", expected: NONE },
        Case { what: "a retina image file name", text: r#"<img src="cid:image@2x.png"> logo@3x.jpg"#, expected: NONE },
        Case { what: "package version strings", text: "upgraded lodash@4.17.21, react@18.2.0 and node@v20.1", expected: NONE },
        Case { what: "a Slack user mention", text: "<@U123ABC> can you check?", expected: NONE },
        Case { what: "a Slack channel mention", text: "see <#C123|general>", expected: NONE },
        Case { what: "an @ in a URL path", text: "https://medium.com/@user/post and https://medium.com/@user.name/p", expected: NONE },
        Case { what: "a non-ASCII local part, not cut short", text: "jöhn@acme.com", expected: NONE },
        Case { what: "consecutive dots, not cut short", text: "jane..doe@acme.com", expected: NONE },
        Case { what: "letters glued after the domain", text: "jane@acme.com2 jane@acme.comé jane@acme.com-x", expected: NONE },
        Case { what: "two @ signs in one token", text: "a@jane@acme.com", expected: NONE },
        Case { what: "a local part over 64 characters", text: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@acme.com", expected: NONE },
        Case { what: "an empty string", text: "", expected: NONE },
    ];

    #[test]
    fn extracts_every_real_world_case_in_the_table() {
        assert!(CASES.len() >= 30);
        let mut failures = Vec::new();
        for case in CASES {
            let got = extracted(case.text, &[]);
            if got != case.expected {
                failures.push(format!(
                    "{}: {:?} gave {got:?}, expected {:?}",
                    case.what, case.text, case.expected
                ));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn excluded_domains_and_their_subdomains_are_left_out() {
        let text = "On Tue, Support <help@support.ourco.com> wrote:\n\
                    > Agent ops@OurCo.com asked; customer is jane@acme.com, cc boss@notourco.com";
        assert_eq!(
            extracted(text, &["ourco.com"]),
            ["jane@acme.com", "boss@notourco.com"]
        );
        assert_eq!(
            extracted(text, &["OURCO.COM", "@notourco.com"]),
            ["jane@acme.com"]
        );
        assert_eq!(
            extracted(text, &["support.ourco.com"]),
            ["ops@ourco.com", "jane@acme.com", "boss@notourco.com"]
        );
        assert_eq!(
            extracted(text, &[""]).len(),
            4,
            "an empty entry excludes nothing"
        );
    }

    #[test]
    fn extract_identities_wraps_the_emails_in_order() {
        let ids = extract_identities("bob@b.com jane@acme.com", &[]);
        assert_eq!(
            ids,
            [
                Identity::Email(CustomerEmail::parse("bob@b.com").unwrap()),
                Identity::Email(CustomerEmail::parse("jane@acme.com").unwrap()),
            ]
        );
    }

    #[test]
    fn decoding_entities_borrows_when_there_are_none_and_keeps_unknown_ones() {
        assert!(matches!(
            decode_html_entities("plain text"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            decode_html_entities("a &amp; b &bogus; &#0; &#x110000; &#65;"),
            "a & b &bogus; &#0; &#x110000; A"
        );
    }

    #[test]
    fn a_ten_kilobyte_ticket_is_handled_quickly() {
        let mut body = String::new();
        while body.len() < 10_000 {
            body.push_str("Hi team, the checkout page froze again &amp; the customer (see <a href=\"mailto:jane@acme.com\">Jane</a>) is upset. lodash@4.17.21 image@2x.png ");
        }
        let adversarial = [
            body,
            "a".repeat(10_000),
            "a@".repeat(5_000),
            "a.".repeat(5_000),
            "a@b.".repeat(2_500),
            "-.".repeat(5_000) + "@acme.com",
            "&#64;".repeat(2_000),
            "mailto:".repeat(1_500),
            "%40a".repeat(2_500),
        ];
        for text in &adversarial {
            let started = Instant::now();
            let _ = extract_emails(text, &[]);
            // Generous: debug build, shared machine. Catastrophic cases take seconds.
            assert!(
                started.elapsed().as_millis() < 500,
                "{} took {:?}",
                &text[..20],
                started.elapsed()
            );
        }
    }

    /// Text made of pieces that interact: addresses, separators, encodings.
    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("jane@acme.com".to_owned()),
            Just("Bob.Smith+tag@Mail.Example.CO.uk".to_owned()),
            Just("o'connor@acme.io".to_owned()),
            Just("x@y.zz".to_owned()),
            Just("image@2x.png".to_owned()),
            Just("mailto:".to_owned()),
            Just("%40".to_owned()),
            Just("%2B".to_owned()),
            Just("&#64;".to_owned()),
            Just("&#x40;".to_owned()),
            Just("&commat;".to_owned()),
            Just("&amp;".to_owned()),
            Just("&lt;".to_owned()),
            Just("?subject=".to_owned()),
            "[<>|()\\[\\]'\"@.,;:_+-]{1,3}",
            "[a-zA-Z0-9]{1,8}",
            "[ \n\t]",
            "[öé请ß]",
            any::<String>().prop_map(|s| s.chars().take(4).collect()),
        ];
        prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
    }

    /// `local@domain` written the way `how` says (0..=11), `at` picking where a hidden character
    /// goes: the encodings a reader still reads as the address.
    fn encoded(local: &str, domain: &str, how: u8, at: usize) -> String {
        let plain = format!("{local}@{domain}");
        let hide = |hidden: char| {
            let at = at % (plain.len() + 1);
            format!("{}{hidden}{}", &plain[..at], &plain[at..])
        };
        let percent = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        match how {
            0 => plain,
            1 => hide('\u{200B}'),
            2 => hide('\u{AD}'),
            3 => hide('\u{FEFF}'),
            4 => format!("{local}\u{FF20}{domain}"),
            5 => percent(&plain),
            6 => format!("{local}%40{}", domain.replace('.', "%2e")),
            7 => format!("<b>{local}</b>@{domain}"),
            8 => format!("https://{local}%40{domain}@host.example/x"),
            9 => format!("mailto:{local}%40{domain}?subject=hi"),
            10 => format!("{local}=40{domain}"),
            _ => format!("{local}&#64;{domain}"),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn every_encoding_of_an_address_is_found_and_mentioned(
            local in "[a-z][a-z0-9]{0,6}(\\.[a-z0-9]{1,4})?",
            domain in "[a-z][a-z0-9-]{0,6}[a-z0-9]\\.(com|io|org|co\\.uk)",
            how in 0u8..12,
            at in any::<usize>(),
            before in prop_oneof![Just(""), Just(" "), Just("Hi "), Just("<p>"), Just("\n> "), Just("(")],
            after in prop_oneof![Just(""), Just(" "), Just(", thanks"), Just("</p>"), Just("."), Just(")")],
        ) {
            let Ok(email) = CustomerEmail::parse(&format!("{local}@{domain}")) else {
                return Ok(());
            };
            let text = format!("{before}{}{after}", encoded(&local, &domain, how, at));
            prop_assert_eq!(extract_emails(&text, &[]), vec![email.clone()], "{:?}", text);
            prop_assert!(mentions(&text, &email), "{:?}", text);
        }

        #[test]
        fn extraction_never_panics_on_arbitrary_strings(s in any::<String>()) {
            let _ = extract_emails(&s, &strings(&["acme.com"]));
        }

        #[test]
        fn every_extracted_address_reparses_to_itself(s in messy_text()) {
            for email in extract_emails(&s, &[]) {
                prop_assert_eq!(CustomerEmail::parse(email.as_str()), Ok(email.clone()));
            }
        }

        #[test]
        fn extracting_from_the_joined_results_gives_the_same_list(s in messy_text()) {
            let exclude = strings(&["example.co.uk"]);
            let first = extract_emails(&s, &exclude);
            let joined = first.iter().map(CustomerEmail::as_str).collect::<Vec<_>>().join(" ");
            prop_assert_eq!(extract_emails(&joined, &exclude), first);
        }

        #[test]
        fn excluded_domains_never_appear_in_the_results(s in messy_text()) {
            for email in extract_emails(&s, &strings(&["acme.com", "uk"])) {
                prop_assert!(!email.is_within_domain("acme.com") && !email.is_within_domain("uk"));
            }
        }
    }
}
