//! Cutting and budgeting text to a platform's limits, written once for every renderer.
//!
//! Every platform limits its message parts in "characters" (Slack: section text 3,000; Discord: an
//! embed's description 4,096 and 6,000 for a whole message; a Zendesk comment ~65,000). Which character
//! is not always said, and the platforms' own validators disagree (`slack_sdk` counts code points,
//! `@discordjs/builders` counts JavaScript's UTF-16 units), so [`len`] counts **UTF-16 code units**,
//! the larger of the two for any text: a part within our count is within both. Zendesk's limit is a
//! size in its store, so its renderer budgets UTF-8 bytes instead (`str::len`, never smaller).
//!
//! [`cut`] is applied **after** escaping (escaping makes text longer, so cutting first could overflow
//! again) and never leaves half of what escaping made: it does not end inside an entity (`&amp;`), a
//! tag or Slack link (`<…>`), or after a lone backslash (Discord's escape, which would swallow the `…`).
//! It prefers a word boundary, unless the last one is far back (a long word or URL is cut hard).

/// The mark put where text was cut.
pub const ELLIPSIS: char = '…';

/// How far back (in characters) a cut looks for a word boundary before cutting inside a word.
const WORD_LOOKBACK: usize = 80;

/// The length platforms count: UTF-16 code units (see the module docs).
pub fn len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// `text` in at most `max` units ([`len`]), ending in `…` when it was cut; see the module docs for
/// where it cuts. A `max` of 0 gives an empty string.
pub fn cut(text: &str, max: usize) -> String {
    cut_with(text, max, len)
}

/// [`cut`] measuring UTF-8 bytes (Zendesk's comment size).
pub fn cut_bytes(text: &str, max: usize) -> String {
    cut_with(text, max, str::len)
}

fn cut_with(text: &str, max: usize, measure: fn(&str) -> usize) -> String {
    if measure(text) <= max {
        return text.to_owned();
    }
    let room = max.saturating_sub(measure("…"));
    if room == 0 {
        return String::new();
    }
    // The longest prefix that fits.
    let mut end = 0;
    let mut used = 0;
    for (at, c) in text.char_indices() {
        let mut buf = [0u8; 4];
        let width = measure(c.encode_utf8(&mut buf));
        if used + width > room {
            break;
        }
        used += width;
        end = at + c.len_utf8();
    }
    let mut kept = &text[..end];
    // A word boundary, unless it is far back.
    if let Some(space) = kept.rfind(char::is_whitespace)
        && kept[space..].chars().count() <= WORD_LOOKBACK
    {
        kept = &kept[..space];
    }
    // Never inside a tag or Slack link, nor inside an entity.
    if let Some(open) = kept.rfind('<')
        && !kept[open..].contains('>')
    {
        kept = &kept[..open];
    }
    if let Some(amp) = kept.rfind('&')
        && !kept[amp..].contains(';')
    {
        kept = &kept[..amp];
    }
    kept = kept.trim_end();
    // A lone trailing backslash would escape the ellipsis.
    let backslashes = kept.len() - kept.trim_end_matches('\\').len();
    if backslashes % 2 == 1 {
        kept = kept[..kept.len() - 1].trim_end();
    }
    let mut out = kept.to_owned();
    out.push(ELLIPSIS);
    out
}

/// Lines added while they fit in a budget, with room kept for a last "… and N more" line: how every
/// renderer lists sessions without overflowing.
#[derive(Debug)]
pub struct Lines {
    max: usize,
    reserve: usize,
    measure: fn(&str) -> usize,
    separator: &'static str,
    used: usize,
    kept: Vec<String>,
    left_out: usize,
}

impl Lines {
    /// Lines joined by `separator` in at most `max` units ([`len`]), keeping `reserve` units for the
    /// "more" line.
    pub fn new(max: usize, reserve: usize, separator: &'static str) -> Self {
        Self::measured(max, reserve, separator, len)
    }

    /// [`Lines::new`] measuring UTF-8 bytes.
    pub fn bytes(max: usize, reserve: usize, separator: &'static str) -> Self {
        Self::measured(max, reserve, separator, str::len)
    }

    fn measured(
        max: usize,
        reserve: usize,
        separator: &'static str,
        measure: fn(&str) -> usize,
    ) -> Self {
        Self {
            max,
            reserve,
            measure,
            separator,
            used: 0,
            kept: Vec::new(),
            left_out: 0,
        }
    }

    /// Adds `line` if it fits (and nothing was left out before it, so the order stays); whether it did.
    pub fn push(&mut self, line: String) -> bool {
        let width = (self.measure)(&line)
            + if self.kept.is_empty() {
                0
            } else {
                (self.measure)(self.separator)
            };
        if self.left_out == 0 && self.used + width + self.reserve <= self.max {
            self.used += width;
            self.kept.push(line);
            true
        } else {
            self.left_out += 1;
            false
        }
    }

    /// Lines left out so far.
    pub fn left_out(&self) -> usize {
        self.left_out
    }

    /// Units used so far (without the "more" line).
    pub fn used(&self) -> usize {
        self.used
    }

    /// The lines, joined, with `more(n)` (cut to the reserve) when `n` lines were left out.
    pub fn finish(mut self, more: impl FnOnce(usize) -> String) -> String {
        if self.left_out > 0 {
            let room = self
                .reserve
                .saturating_sub(if self.kept.is_empty() {
                    0
                } else {
                    (self.measure)(self.separator)
                })
                .min(self.max.saturating_sub(self.used));
            let line = cut_with(&more(self.left_out), room, self.measure);
            if !line.is_empty() {
                self.kept.push(line);
            }
        }
        self.kept.join(self.separator)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn short_text_is_kept_and_long_text_is_cut_at_a_word() {
        assert_eq!(cut("hello world", 11), "hello world");
        assert_eq!(cut("hello wonderful world", 12), "hello…");
        assert_eq!(len("hello…"), 6);
    }

    #[test]
    fn a_cut_never_ends_inside_an_entity_a_link_or_an_escape() {
        assert_eq!(cut("Tom&amp;Jerry", 7), "Tom…");
        assert_eq!(cut("see <https://x.example|here> now", 12), "see…");
        assert_eq!(cut(r"a\*b\*c\*d", 6), r"a\*b…");
        assert_eq!(cut(r"abcd\\efgh", 7), r"abcd\\…");
    }

    #[test]
    fn emoji_count_as_two_units_like_javascript() {
        assert_eq!(len("😀"), 2);
        assert_eq!(cut("😀😀😀", 5), "😀😀…");
        assert_eq!(cut_bytes("ééé", 5), "é…");
    }

    #[test]
    fn lines_stop_when_full_and_say_how_many_more() {
        let mut lines = Lines::new(21, 8, "\n");
        for line in ["one", "two", "three", "four", "five"] {
            lines.push(line.to_owned());
        }
        assert_eq!(lines.left_out(), 2);
        assert_eq!(
            lines.finish(|n| format!("+{n} more")),
            "one\ntwo\nthree\n+2 more"
        );
    }

    proptest! {
        #[test]
        fn a_cut_always_fits(text in ".{0,400}", max in 0usize..300) {
            prop_assert!(len(&cut(&text, max)) <= max);
            prop_assert!(cut_bytes(&text, max).len() <= max);
        }
    }
}
