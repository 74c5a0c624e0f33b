//! What every command line shares, below everything that has a command: a command's [`Failure`] (its
//! message and exit code), [`progress`] on stderr, and [`printable`], through which every table the
//! command line prints passes what it did not write itself. A leaf module (it uses nothing of the
//! crate), so `queue`, `adapters` and `demo` give their commands these without importing `cli`, which
//! runs them all (no two top-level modules import each other: `tests/modules.rs`).

pub mod progress;

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` made safe to print in an operator's terminal: every control character (C0 and C1, DEL,
/// newlines and tabs included, so an escape sequence or a line break cannot move the cursor, recolour
/// the screen or forge a line of a table) and every bidirectional override or isolate (which reorder
/// what is shown) is written as `\u{…}`. Everything else, backslashes included, is kept as it is;
/// borrows when there is nothing to escape. `replaydesk audit`, `jobs list` and `jobs show` print
/// every value they read from the store through it: an agent id, a place, an upstream's error.
pub fn printable(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Control characters, and the Unicode formatting characters that reorder text on screen.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// A command's failure: what to print and which exit code to use.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    /// Exit 1: something failed at run time.
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }

    /// Exit 2: the command line or the configuration is wrong.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 2,
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self::failed(format!("{error:#}"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_and_reordering_marks_are_escaped_and_the_rest_kept() {
        let table: &[(&str, &str)] = &[
            ("U024ABC", "U024ABC"),
            ("ticket 42 (sidebar)", "ticket 42 (sidebar)"),
            ("j•••@acme.com, 请, C:\\path", "j•••@acme.com, 请, C:\\path"),
            ("\u{1b}[2J\u{1b}[31mroot", "\\u{1b}[2J\\u{1b}[31mroot"),
            (
                "agent\n2026-01-01 lookup forged",
                "agent\\u{a}2026-01-01 lookup forged",
            ),
            ("a\rb\tc\u{7f}d\u{9b}e", "a\\u{d}b\\u{9}c\\u{7f}d\\u{9b}e"),
            ("abc\u{202e}fed", "abc\\u{202e}fed"),
            ("\u{2066}x\u{2069}", "\\u{2066}x\\u{2069}"),
        ];
        for (raw, shown) in table {
            assert_eq!(printable(raw), *shown, "{raw:?}");
        }
        assert!(matches!(printable("plain"), Cow::Borrowed(_)));
        for raw in ["\u{1b}]0;title\u{7}", "x\u{0}y", "\u{85}"] {
            assert!(!printable(raw).chars().any(char::is_control), "{raw:?}");
        }
    }
}
