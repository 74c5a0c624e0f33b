//! [`parse_query`]: reads the text an agent types after a command, such as
//! `/replays jane@acme.com uid:12345 --summary`.
//!
//! Why it exists: every chat platform delivers that text differently (Slack
//! escapes `&`, `<` and `>` and wraps addresses as `<mailto:…|…>`; phones
//! turn `--` into `—` and `"` into `“`), and the commands should not care.
//!
//! Contract:
//! * the text is split on whitespace; double quotes (straight or curly)
//!   group words, so `uid:"Jane Doe"` is one token;
//! * `--word` (or `—word`, `–word`) is a flag: lowercased, without the
//!   dashes, de-duplicated;
//! * `uid:VALUE` (prefix case-insensitive; `uid: VALUE` with a space works
//!   too) is an [`Identity::Uid`]; a Slack link around VALUE is unwrapped;
//! * any other token containing email addresses yields them as
//!   [`Identity::Email`]s, except those at excluded domains, which are
//!   dropped silently;
//! * every other token is kept, as typed, in `rest`;
//! * identities are de-duplicated, in the order they were typed.

use std::collections::HashSet;

use super::email::normalize_domain;
use super::extract::{decode_html_entities, for_each_email, is_excluded};
use super::{Identity, Uid};

/// The meaning of a command's text. See the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedQuery {
    /// Who to look up, in the order typed.
    pub identities: Vec<Identity>,
    /// Flags, lowercased, without their leading dashes (`--Summary` → `summary`).
    pub flags: Vec<String>,
    /// Every other word, as typed.
    pub rest: Vec<String>,
}

impl ParsedQuery {
    /// Whether `--name` was given (`name` without dashes, any case).
    #[must_use]
    pub fn has_flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f.eq_ignore_ascii_case(name))
    }
}

/// Parses an agent's command text. Emails at a domain in `exclude_domains`
/// (or a subdomain of one) are dropped. Never fails: anything it does not
/// understand ends up in [`ParsedQuery::rest`].
#[must_use]
pub fn parse_query(text: &str, exclude_domains: &[String]) -> ParsedQuery {
    let excluded: Vec<String> = exclude_domains
        .iter()
        .map(|d| normalize_domain(d))
        .filter(|d| !d.is_empty())
        .collect();
    let decoded = decode_html_entities(text);
    let tokens = tokenize(&decoded);

    let mut query = ParsedQuery::default();
    let mut seen_identities = HashSet::new();
    let mut push_identity = |query: &mut ParsedQuery, identity: Identity| {
        if seen_identities.insert(identity.clone()) {
            query.identities.push(identity);
        }
    };

    let mut tokens = tokens.into_iter().peekable();
    while let Some(token) = tokens.next() {
        if let Some(flag) = flag_name(&token) {
            let flag = flag.to_lowercase();
            if !query.flags.contains(&flag) {
                query.flags.push(flag);
            }
            continue;
        }
        if let Some(value) = strip_uid_prefix(&token) {
            let value = if value.trim().is_empty() {
                // `uid: 12345`: the value is the next word, unless that is a flag.
                tokens
                    .next_if(|next| flag_name(next).is_none())
                    .unwrap_or_default()
            } else {
                value.to_owned()
            };
            match Uid::parse(unwrap_slack_link(&value)) {
                Ok(uid) => push_identity(&mut query, Identity::Uid(uid)),
                Err(_) => query.rest.push(token),
            }
            continue;
        }
        let mut found_any = false;
        for_each_email(&token, |email| {
            found_any = true;
            if !is_excluded(&email, &excluded) {
                push_identity(&mut query, Identity::Email(email));
            }
        });
        if !found_any {
            query.rest.push(token);
        }
    }
    query
}

/// `--name`, `—name` or `–name` → `name`; `None` for anything else,
/// including a bare `--`.
fn flag_name(token: &str) -> Option<&str> {
    let name = token
        .strip_prefix("--")
        .or_else(|| token.strip_prefix('—'))
        .or_else(|| token.strip_prefix('–'))?;
    (!name.is_empty()).then_some(name)
}

/// The value after a case-insensitive `uid:` prefix.
fn strip_uid_prefix(token: &str) -> Option<&str> {
    let prefix = token.get(..4)?;
    prefix
        .eq_ignore_ascii_case("uid:")
        .then(|| token.get(4..).unwrap_or(""))
}

/// `<mailto:x|label>` → `label`, `<mailto:x>` → `x`, `<x>` → `x`; other text unchanged.
fn unwrap_slack_link(value: &str) -> &str {
    let Some(inner) = value.strip_prefix('<').and_then(|v| v.strip_suffix('>')) else {
        return value;
    };
    if let Some((_, label)) = inner.split_once('|') {
        return label;
    }
    inner
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("mailto:"))
        .and_then(|_| inner.get(7..))
        .unwrap_or(inner)
}

/// Splits on whitespace; `"…"` and `“…”` group words and are removed.
fn tokenize(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' | '“' | '”' => {
                in_quotes = !in_quotes;
                quoted = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if !current.is_empty() || quoted {
                    tokens.push(std::mem::take(&mut current));
                }
                quoted = false;
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() || quoted {
        tokens.push(current);
    }
    tokens.retain(|t| !t.is_empty());
    tokens
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::CustomerEmail;
    use super::*;
    use proptest::prelude::*;

    fn email(s: &str) -> Identity {
        Identity::Email(CustomerEmail::parse(s).unwrap())
    }

    fn uid(s: &str) -> Identity {
        Identity::Uid(Uid::parse(s).unwrap())
    }

    fn owned(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_typical_slash_command_is_split_into_identities_flags_and_words() {
        let q = parse_query("jane@acme.com uid:12345 --summary last week", &[]);
        assert_eq!(q.identities, [email("jane@acme.com"), uid("12345")]);
        assert_eq!(q.flags, ["summary"]);
        assert_eq!(q.rest, ["last", "week"]);
        assert!(q.has_flag("SUMMARY"));
        assert!(!q.has_flag("errors"));
    }

    #[test]
    fn slack_escaped_addresses_are_understood() {
        let q = parse_query(
            "<mailto:Jane@Acme.com|Jane@Acme.com> &lt;bob@b.io&gt; --Errors",
            &[],
        );
        assert_eq!(q.identities, [email("jane@acme.com"), email("bob@b.io")]);
        assert_eq!(q.flags, ["errors"]);
        assert!(q.rest.is_empty());
    }

    #[test]
    fn uid_prefixes_are_case_insensitive_and_accept_a_space_quotes_or_a_slack_link() {
        let q = parse_query(
            r#"UID:abc Uid: def uid:"Jane Doe" uid:<mailto:jane@acme.com|jane@acme.com> uid:“x y”"#,
            &[],
        );
        assert_eq!(
            q.identities,
            [
                uid("abc"),
                uid("def"),
                uid("Jane Doe"),
                uid("jane@acme.com"),
                uid("x y")
            ]
        );
        assert!(q.rest.is_empty());
    }

    #[test]
    fn an_empty_uid_stays_in_the_rest() {
        let q = parse_query("uid: --summary", &[]);
        assert!(q.identities.is_empty());
        assert_eq!(q.rest, ["uid:"]);
        assert_eq!(q.flags, ["summary"]);
    }

    #[test]
    fn identities_and_flags_are_deduplicated_in_typed_order() {
        let q = parse_query(
            "uid:1 JANE@acme.com jane@ACME.com uid:1 bob@b.io --x --X",
            &[],
        );
        assert_eq!(
            q.identities,
            [uid("1"), email("jane@acme.com"), email("bob@b.io")]
        );
        assert_eq!(q.flags, ["x"]);
    }

    #[test]
    fn excluded_addresses_are_dropped_and_not_left_in_the_rest() {
        let q = parse_query(
            "agent@support.ourco.com jane@acme.com",
            &owned(&["ourco.com"]),
        );
        assert_eq!(q.identities, [email("jane@acme.com")]);
        assert!(q.rest.is_empty());
    }

    #[test]
    fn phone_dashes_count_as_flags_and_a_bare_double_dash_does_not() {
        let q = parse_query("—summary –Errors -- -v", &[]);
        assert_eq!(q.flags, ["summary", "errors"]);
        assert_eq!(q.rest, ["--", "-v"]);
    }

    #[test]
    fn text_without_identities_is_all_rest() {
        let q = parse_query("  help   me  ", &[]);
        assert_eq!(
            q,
            ParsedQuery {
                rest: owned(&["help", "me"]),
                ..ParsedQuery::default()
            }
        );
        assert_eq!(parse_query("", &[]), ParsedQuery::default());
    }

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn parsing_any_query_never_panics(s in any::<String>()) {
            let q = parse_query(&s, &owned(&["acme.com"]));
            prop_assert!(q.rest.iter().all(|w| !w.is_empty()));
        }
    }
}
