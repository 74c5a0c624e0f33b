//! What a reader sees: [`normalize_text`] turns text as it arrives (a ticket's HTML, a Slack message, a
//! stored payload, a URL) into the text a person reading it sees, before addresses are looked for in it
//! ([`super::extract`]). Lookups and erasure both read through it, so an address hidden from the
//! matcher but plain to a reader is still found, looked up, and erased.
//!
//! Why: `forget jane@acme.com` used to miss `ja\u{200B}ne@acme.com` (a zero-width space), `jane＠acme.com`
//! (a fullwidth at sign), `jane%40acme%2ecom`, `<b>jane</b>@acme.com`, `https://jane%40acme.com@host/`
//! and `jane=40acme.com` (quoted-printable), each of which a reader sees as her address (issue 22, row 7).
//!
//! The steps, in this order, each one pass over the text:
//! 1. HTML character references are decoded (`&#64;`, `&lt;`, `&commat;`; [`super::extract`]);
//! 2. HTML tags are removed where they stand: an inline tag (`<b>`, `<span>`, `<a>`) joins what is on
//!    either side (`<b>jane</b>@acme.com` reads `jane@acme.com`), a block tag (`<p>`, `<br>`, `<div>`) is
//!    a line break, any other a space. What a tag holds (its attributes: `href="mailto:…"`) and what an
//!    HTML comment holds is kept after the text, on lines of its own, so an address only in a link
//!    still counts. Only what looks like a tag is a tag: `<jane@acme.com>`, `<mailto:…|…>` and Slack's
//!    `<@U123>` are left alone;
//! 3. percent-escapes are decoded until the text no longer changes (`jane%2540acme.com` → `jane@acme.com`),
//!    in one pass: a `%` that decoding produces joins the escape after it. Control characters and
//!    invalid UTF-8 that decoding produces become spaces (separators);
//! 4. quoted-printable escapes of the characters an address is made of are decoded: `=40` (`@`), `=2E`
//!    (`.`), `=2B` (`+`), `=2D` (`-`), `=5F` (`_`), `=27` (`'`), either case;
//! 5. NFKC (compatibility composition): `＠` and `﹫` become `@`, fullwidth letters and digits ASCII;
//! 6. format characters nobody sees are dropped: U+200B–U+200D (zero-width space, non-joiner, joiner),
//!    U+2060 (word joiner), U+FEFF (zero-width no-break space) and U+00AD (soft hyphen);
//! 7. a URL whose user part is itself an address (`https://jane@acme.com@host/`, once decoded) has it
//!    set apart from the host (`https:// jane@acme.com @host/`), so the address reads whole.
//!
//! Contract: any text is accepted, nothing panics, and the time is linear in the text (the `regex`
//! crate does not backtrack; the decoders are single passes); text that is ASCII without `@`, `%`, `&`,
//! `=` or `<` is returned borrowed, untouched. It may find an address where a strict reader would not
//! (`a<b and c>d` loses its `<b …>`): for erasure, finding more is the safe side, and an address found
//! is still only one [`super::CustomerEmail::parse`] accepts.

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use unicode_normalization::UnicodeNormalization;

use super::extract::{compile, decode_html_entities};

/// An HTML comment, or a tag: `<`, an optional `/`, a name starting with a letter, then either `>` or
/// whitespace or `/` and anything up to the next `>` (its attributes).
const TAG_PATTERN: &str =
    r"(?s)<!--(?P<comment>.*?)-->|</?(?P<name>[A-Za-z][A-Za-z0-9-]*)(?P<attributes>[\s/][^<>]*)?>";

/// A quoted-printable escape of a character an address is made of.
const QUOTED_PRINTABLE_PATTERN: &str = r"=(?:40|2[EeBbDd7]|5[Ff])";

/// A URL whose user part holds an `@` of its own: `scheme://` + user part + `@`.
const USERINFO_PATTERN: &str =
    r#"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^\s/?#<>"'@]+@[^\s/?#<>"'@]+)@"#;

static TAG_RE: LazyLock<Regex> = LazyLock::new(|| compile(TAG_PATTERN));
static QUOTED_PRINTABLE_RE: LazyLock<Regex> = LazyLock::new(|| compile(QUOTED_PRINTABLE_PATTERN));
static USERINFO_RE: LazyLock<Regex> = LazyLock::new(|| compile(USERINFO_PATTERN));

/// Tags a browser shows inline: removing one joins the text on either side.
const INLINE_TAGS: &[&str] = &[
    "a", "abbr", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em", "font", "i",
    "img", "ins", "kbd", "label", "mark", "q", "s", "samp", "small", "span", "strike", "strong",
    "sub", "sup", "time", "tt", "u", "var", "wbr",
];

/// Tags that start a line.
const BLOCK_TAGS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "br",
    "dd",
    "div",
    "dl",
    "dt",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
];

/// The characters step 6 drops: invisible, so a reader does not see them between two letters.
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    )
}

/// `text` as a reader sees it. See the module docs for the steps.
#[must_use]
pub fn normalize_text(text: &str) -> Cow<'_, str> {
    if text.is_ascii()
        && !text
            .bytes()
            .any(|b| matches!(b, b'@' | b'%' | b'&' | b'=' | b'<'))
    {
        return Cow::Borrowed(text);
    }
    let text = decode_html_entities(text);
    let text = strip_tags(&text);
    let text = percent_decode_until_stable(&text);
    let text = decode_quoted_printable(&text);
    let text: Cow<'_, str> = if text.is_ascii() {
        text
    } else {
        Cow::Owned(
            text.nfkc()
                .filter(|&c| !is_invisible(c))
                .collect::<String>(),
        )
    };
    let text = set_userinfo_apart(&text);
    Cow::Owned(text.into_owned())
}

/// Step 2: tags removed where they stand; what tags and comments hold, after the text.
fn strip_tags(text: &str) -> Cow<'_, str> {
    if !text.contains('<') {
        return Cow::Borrowed(text);
    }
    let mut held = String::new();
    let mut stripped = TAG_RE.replace_all(text, |caps: &Captures<'_>| {
        let inside = caps
            .name("comment")
            .or_else(|| caps.name("attributes"))
            .map_or("", |m| m.as_str());
        if !inside
            .trim_matches(|c: char| c.is_whitespace() || c == '/')
            .is_empty()
        {
            held.push('\n');
            held.push_str(inside);
        }
        let name = caps
            .name("name")
            .map(|m| m.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        if caps.name("comment").is_some() || INLINE_TAGS.contains(&name.as_str()) {
            ""
        } else if BLOCK_TAGS.contains(&name.as_str()) {
            "\n"
        } else {
            " "
        }
    });
    if !held.is_empty() {
        stripped.to_mut().push_str(&held);
    }
    stripped
}

/// Step 3: `%XX` escapes decoded until none is left that decoding could make, in one pass (each
/// decoded byte is checked against the two before it). Invalid escapes are kept; control characters
/// decode to spaces; invalid UTF-8 becomes U+FFFD.
fn percent_decode_until_stable(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    for &byte in text.as_bytes() {
        out.push(byte);
        // A decoded byte may close another escape with the two bytes before it (`%25` + `40`).
        while let Some(decoded) = escape_at_end(&out) {
            out.truncate(out.len() - 3);
            out.push(if decoded.is_ascii_control() {
                b' '
            } else {
                decoded
            });
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// The byte `out` ends with an escape of (`%` and two hex digits), if it does.
fn escape_at_end(out: &[u8]) -> Option<u8> {
    let [.., b'%', hi, lo] = out else {
        return None;
    };
    let hi = char::from(*hi).to_digit(16)?;
    let lo = char::from(*lo).to_digit(16)?;
    u8::try_from(hi * 16 + lo).ok()
}

/// Step 4: quoted-printable escapes of address characters.
fn decode_quoted_printable(text: &str) -> Cow<'_, str> {
    if !text.contains('=') {
        return Cow::Borrowed(text);
    }
    QUOTED_PRINTABLE_RE.replace_all(text, |caps: &Captures<'_>| {
        let hex = caps
            .get(0)
            .map_or("", |m| m.as_str())
            .get(1..)
            .unwrap_or("");
        u8::from_str_radix(hex, 16)
            .map(|b| char::from(b).to_string())
            .unwrap_or_default()
    })
}

/// Step 7: `scheme://user@domain@host` → `scheme:// user@domain @host`.
fn set_userinfo_apart(text: &str) -> Cow<'_, str> {
    if !text.contains("://") {
        return Cow::Borrowed(text);
    }
    USERINFO_RE.replace_all(text, "$scheme $user @")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn every_step_reads_what_a_reader_sees() {
        let table: &[(&str, &str)] = &[
            ("plain text, nothing to do", "plain text, nothing to do"),
            ("ja\u{200B}ne@acme.com", "jane@acme.com"),
            ("ja\u{AD}ne@ac\u{2060}me.com\u{FEFF}", "jane@acme.com"),
            ("jane\u{FF20}acme.com", "jane@acme.com"),
            ("ｊａｎｅ＠ａｃｍｅ．ｃｏｍ", "jane@acme.com"),
            ("jane\u{FE6B}acme.com", "jane@acme.com"),
            ("jane%40acme%2ecom", "jane@acme.com"),
            ("%6A%61%6E%65%40%61%63%6D%65%2E%63%6F%6D", "jane@acme.com"),
            ("jane%2540acme.com", "jane@acme.com"),
            ("jane%252540acme.com", "jane@acme.com"),
            ("%%34%30", "@"),
            ("100% sure, 50%off, %zz", "100% sure, 50%off, %zz"),
            ("a%0Ab%00c", "a b c"),
            ("<b>jane</b>@acme.com", "jane@acme.com"),
            (
                "jane<span class=\"x\">@</span>acme.com",
                "jane@acme.com\n class=\"x\"",
            ),
            ("Email<br>jane@acme.com<br/>x", "Email\njane@acme.com\nx"),
            (
                "<p>From <a href=\"mailto:jane@acme.com\">Jane</a></p>",
                "\nFrom Jane\n\n href=\"mailto:jane@acme.com\"",
            ),
            ("&lt;b&gt;jane&lt;/b&gt;@acme.com", "jane@acme.com"),
            ("x<!-- jane@acme.com -->y", "xy\n jane@acme.com "),
            ("Jane <jane@acme.com>", "Jane <jane@acme.com>"),
            ("<mailto:jane@acme.com|Jane>", "<mailto:jane@acme.com|Jane>"),
            ("<@U123> <#C1|general>", "<@U123> <#C1|general>"),
            ("jane=40acme=2Ecom", "jane@acme.com"),
            ("a=b, x=41", "a=b, x=41"),
            (
                "https://jane%40acme.com@host.example/path",
                "https:// jane@acme.com @host.example/path",
            ),
            (
                "https://jane@acme.com:pw@host.example/",
                "https:// jane@acme.com:pw @host.example/",
            ),
            ("https://user@host.example/", "https://user@host.example/"),
        ];
        for (raw, read) in table {
            assert_eq!(normalize_text(raw), *read, "{raw:?}");
        }
        assert!(matches!(
            normalize_text("no address here"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn deep_percent_nesting_is_decoded_in_linear_time() {
        let deep = format!("jane%{}40acme.com", "25".repeat(50_000));
        let started = std::time::Instant::now();
        assert_eq!(normalize_text(&deep), "jane@acme.com");
        // Generous (debug build, shared machine): a quadratic decoder takes seconds here.
        assert!(
            started.elapsed().as_millis() < 500,
            "{:?}",
            started.elapsed()
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn normalising_any_text_never_panics(s in any::<String>()) {
            let _ = normalize_text(&s);
        }

        #[test]
        fn text_without_markup_escapes_or_hidden_characters_is_left_as_it_is(
            s in "[a-zA-Z0-9 .,;:!?()\\[\\]{}'\"/_+#*-]{0,64}"
        ) {
            prop_assert_eq!(normalize_text(&s), s.as_str());
        }

        #[test]
        fn decoding_percent_escapes_reaches_a_fixed_point(s in "[%0-9A-Fa-f@a-z]{0,40}") {
            let once = percent_decode_until_stable(&s).into_owned();
            prop_assert_eq!(percent_decode_until_stable(&once), once.as_str());
        }
    }
}
