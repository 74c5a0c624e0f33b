//! The Zendesk sidebar app without a Zendesk account: a stand-in for Zendesk's ticket frame, served by the
//! demo's fake Zendesk, for a newcomer's ordinary browser (and the browser test, which adds its own clicks).
//!
//! What Zendesk does for a real sidebar, done here: the signed first load (a form POST of an RS256 JWT in
//! the field `token` to replaydesk's `/zendesk/app`, with `origin` and `app_guid` in the query string; see
//! [`crate::adapters::zendesk::sidebar::jwt`]) and the ZAF SDK (a stub `ZAFClient` answering `ticket` and
//! `currentUser`, and `resize`, served at the page's `zendesk.app_sdk_url`).
//!
//! The JWT is signed with [`DEMO_KEY`], an RSA key made for the demo and **public** (it is in this
//! repository): the demo's configuration trusts it, and nothing else ever should.

use chrono::{DateTime, Utc};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};

use crate::adapters::zendesk::sidebar::jwt;

/// The demo's app key (PKCS#8): public, for the demo only.
pub const DEMO_KEY: &str = include_str!("sidebar-demo-key.pem");
/// Its public half, the demo's `zendesk.app_public_key`.
pub const DEMO_PUBLIC_KEY: &str = include_str!("sidebar-demo-key.pub.pem");
/// The app installation the demo's JWTs name.
pub const INSTALLATION: &str = "1";

/// A JWT of `header` and `claims` signed RS256 with the PKCS#8 PEM key `pem`, by jsonwebtoken (on
/// replaydesk's ring provider, [`jwt`]'s). `header` must say `"alg": "RS256"` (None otherwise: the
/// provider signs nothing else); tests make their tokens of other algorithms by hand.
pub fn rs256(pem: &str, header: &Value, claims: &Value) -> Option<String> {
    jwt::install_provider();
    let header: Header = serde_json::from_value(header.clone()).ok()?;
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).ok()?;
    jsonwebtoken::encode(&header, claims, &key).ok()
}

/// The claims Zendesk puts in a ticket sidebar's signed load, for the account at `base_url`
/// (`http(s)://host`), the agent `agent` (`sub`: the agent's user URL, as Zendesk writes it; see
/// PLATFORMS.md §1.4), issued at `now` for five minutes.
pub fn claims(base_url: &str, agent: u64, now: DateTime<Utc>) -> Value {
    let host = base_url
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    json!({
        "iss": host,
        "aud": format!("{base_url}/api/v2/apps/installations/{INSTALLATION}.json"),
        "iat": now.timestamp(),
        "exp": now.timestamp() + 300,
        "sub": format!("{base_url}/api/v2/users/{agent}.json"),
        "context": {"product": "support", "location": "ticket_sidebar"},
    })
}

/// Zendesk's frame for `ticket`: the signed POST of `jwt` to the sidebar at `sidebar_url`.
pub fn frame(sidebar_url: &str, jwt: &str, ticket: u64) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Zendesk stand-in</title></head><body>
<p>Loading the replaydesk sidebar as Zendesk does (a signed POST)…</p>
<form method="post" action="{sidebar_url}?origin=https%3A%2F%2Fdemo.zendesk.com&amp;app_guid=demo-guid&amp;ticket={ticket}">
<input type="hidden" name="token" value="{jwt}"></form>
<script>document.forms[0].submit();</script></body></html>"#
    )
}

/// The stub ZAF SDK: `ZAFClient.init()` (false without `origin` and `app_guid`, as the real one), whose
/// client answers `ticket` (the one named by the page's `ticket` query parameter among `tickets`, else
/// the first) and `currentUser` (`user`), and records `resize` on the page's root element.
pub fn zaf_stub(tickets: &[Value], user: &Value) -> String {
    format!(
        r#"window.ZAFClient = {{ init: function () {{
  var query = new URLSearchParams(location.search);
  if (!query.get("origin") || !query.get("app_guid")) {{ return false; }}
  var tickets = {tickets};
  var wanted = Number(query.get("ticket"));
  var ticket = tickets.filter(function (t) {{ return t.id === wanted; }})[0] || tickets[0];
  var data = {{ ticket: ticket, currentUser: {user} }};
  return {{
    get: function (path) {{ var out = {{ errors: {{}} }}; out[path] = data[path]; return Promise.resolve(out); }},
    invoke: function (name, size) {{
      document.documentElement.setAttribute("data-zaf-" + name, size && size.height);
      return Promise.resolve({{}});
    }}
  }};
}} }};
"#,
        tickets = Value::Array(tickets.to_vec()),
    )
}
