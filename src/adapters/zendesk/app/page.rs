//! The sidebar's page: small, dependency-free HTML, CSS and JavaScript, embedded in the binary
//! (`assets/`). It loads Zendesk's ZAF SDK (`zendesk.app_sdk_url`, by default Zendesk's own address),
//! asks the ZAF client for the ticket and the current user, exchanges our load token for a ticket-bound
//! one and calls the JSON endpoints. Spacing and type follow Zendesk Garden (14/20 px body, 12/16 px
//! small text, a 4 px grid, Garden's blue and greys); every control is a real `<button>` or `<a>` with a
//! label, so the panel works from the keyboard and with a screen reader.

use crate::adapters::zendesk::render::escape;

/// Zendesk's ZAF v2 SDK address: the default of `zendesk.app_sdk_url` (kept in `config`, the leaf).
pub use crate::config::ZAF_SDK;

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
