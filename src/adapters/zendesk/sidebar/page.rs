//! The sidebar's page: small, dependency-free HTML, CSS and JavaScript, embedded in the binary
//! (`assets/`). It loads Zendesk's ZAF SDK (`zendesk.app_sdk_url`, by default Zendesk's own address),
//! asks the ZAF client for the ticket and the current user, exchanges our load token for a ticket-bound
//! one and calls the JSON endpoints. Spacing and type follow Zendesk Garden (14/20 px body, 12/16 px
//! small text, a 4 px grid, Garden's blue and greys); every control is a real `<button>` or `<a>` with a
//! label, so the panel works from the keyboard and with a screen reader.
//!
//! Each page carries its own Content-Security-Policy ([`sidebar_policy`], [`refused_policy`]): nothing
//! loads or runs but what the page is made of. `default-src 'none'`; scripts only from the ZAF SDK's
//! origin and the page's own inline script, named by its SHA-256; its inline style by hash too;
//! `connect-src 'self'` (the JSON calls); no forms, no `<base>`; framed only by the account's Zendesk.
//! So a link or text that slipped past the escaping could still run nothing.

use std::sync::LazyLock;

use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

// Zendesk's ZAF v2 SDK address: the default of `zendesk.app_sdk_url` (kept in `config`, the leaf).
use crate::{adapters::zendesk::render::escape, config::ZAF_SDK};

const SIDEBAR: &str = include_str!("assets/sidebar.html");
const REFUSED: &str = include_str!("assets/refused.html");
const CSS: &str = include_str!("assets/sidebar.css");
const JS: &str = include_str!("assets/sidebar.js");

/// The page with our `token` (base64url and `.` only, so it needs no escaping in JSON or HTML) and
/// the ZAF SDK's address.
pub fn sidebar(token: &str, sdk_url: &str) -> String {
    let token: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    SIDEBAR
        .replace("{{CSS}}", CSS)
        .replace("{{JS}}", JS)
        .replace("{{TOKEN}}", &token)
        .replace(ZAF_SDK, &escape(sdk_url))
}

/// The 401/403 page: what went wrong and what to check.
pub fn refused(message: &str) -> String {
    REFUSED
        .replace("{{CSS}}", CSS)
        .replace("{{MESSAGE}}", &escape(message))
}

/// `'sha256-…'` of an inline script's or style's text, as CSP names it.
fn hash_source(text: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(text.as_bytes()))
    )
}

static SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| hash_source(JS));
static STYLE_HASH: LazyLock<String> = LazyLock::new(|| hash_source(CSS));

/// The origin (`scheme://host[:port]`) of the ZAF SDK's address, for `script-src`; `None` when it is not
/// an absolute URL.
fn origin_of(url: &str) -> Option<String> {
    let url = reqwest::Url::parse(url).ok()?;
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The sidebar page's policy: see the module docs. `framed_by` is the account's Zendesk origin, or
/// `'none'`.
pub fn sidebar_policy(sdk_url: &str, framed_by: &str) -> String {
    let sdk = origin_of(sdk_url).unwrap_or_else(|| "'none'".into());
    format!(
        "default-src 'none'; script-src {sdk} {script}; style-src {style}; connect-src 'self'; \
         img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors {framed_by}",
        script = *SCRIPT_HASH,
        style = *STYLE_HASH,
    )
}

/// The refusal page's policy: its style, nothing else.
pub fn refused_policy(framed_by: &str) -> String {
    format!(
        "default-src 'none'; style-src {style}; base-uri 'none'; form-action 'none'; \
         frame-ancestors {framed_by}",
        style = *STYLE_HASH,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_names_the_sdk_origin_and_the_pages_own_script_and_style_by_hash() {
        let policy = sidebar_policy(ZAF_SDK, "https://acme.zendesk.com");
        assert!(
            policy
                .starts_with("default-src 'none'; script-src https://static.zdassets.com 'sha256-")
        );
        assert!(policy.contains("connect-src 'self'"));
        assert!(policy.ends_with("frame-ancestors https://acme.zendesk.com"));
        assert!(!policy.contains("unsafe"));
        // The hashes are of exactly what the page inlines.
        let page = sidebar("t.k", ZAF_SDK);
        assert!(page.contains(&format!("<script>{JS}</script>")));
        assert!(page.contains(&format!("<style>{CSS}</style>")));
        assert_eq!(
            hash_source("alert(1)"),
            "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
        );
        assert!(sidebar_policy("not a url", "'none'").contains("script-src 'none' 'sha256-"));
        assert_eq!(
            origin_of("http://127.0.0.1:9000/zaf.js?x=1").as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }
}
