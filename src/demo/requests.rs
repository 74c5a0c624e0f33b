//! The requests the demo plays: a Slack slash command, a Zendesk trigger's webhook, a Discord
//! interaction and an Intercom notification (and, for curl, an Intercom inbox app's canvas request), each signed exactly as the platform signs it, with the adapters' own `sign` functions
//! (the ones their verifiers are tested against), so what reaches the server is indistinguishable from the
//! real thing. [`Signed::send`] posts one through the real HTTP stack; [`Signed::curl`] prints it as a
//! `curl` command to paste.
//!
//! Every request carries fresh delivery ids (Slack `trigger_id`, Zendesk invocation id, Discord
//! interaction id and token), because the server answers a repeated delivery without running it again.

use std::net::SocketAddr;

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::adapters::{discord, intercom, slack, zendesk};

/// The demo's signing secrets. Fixed, so the printed curl lines can be checked by anyone who reads this.
pub const SLACK_SIGNING_SECRET: &str = "replaydesk-demo-slack-signing-secret";
pub const ZENDESK_WEBHOOK_SECRET: &str = "replaydesk-demo-zendesk-webhook-secret";
/// The Discord application key's secret seed; its public key is `discord.public_key`.
pub const DISCORD_SEED: [u8; 32] = *b"replaydesk-demo-ed25519-seed-32b";
pub const DISCORD_APPLICATION_ID: &str = "1300000000000000042";
pub const DISCORD_GUILD_ID: &str = "1300000000000000001";
pub const ZENDESK_ACCOUNT_ID: &str = "9000001";
/// The Intercom app's client secret and the demo's workspace.
pub const INTERCOM_CLIENT_SECRET: &str = "replaydesk-demo-intercom-client-secret";
pub const INTERCOM_WORKSPACE: &str = "demo-workspace";
/// `MODERATE_MEMBERS`, the permission `/replays` needs by default.
const MODERATE_MEMBERS: &str = "1099511627776";
/// Discord's epoch (2015-01-01) in Unix milliseconds, for snowflake ids.
const DISCORD_EPOCH_MS: i64 = 1_420_070_400_000;

/// One signed request, ready to send or print.
#[derive(Clone, Debug)]
pub struct Signed {
    /// What it stands for, in a few words ("/replays jane@acme.com --summary").
    pub label: String,
    pub route: &'static str,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Signed {
    /// Posts it to the server at `server` and returns the status and body of the answer.
    pub async fn send(
        &self,
        http: &reqwest::Client,
        server: SocketAddr,
    ) -> anyhow::Result<(u16, String)> {
        let mut request = http
            .post(format!("http://{server}{}", self.route))
            .header(reqwest::header::CONTENT_TYPE, self.content_type)
            .body(self.body.clone());
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("could not send {} to the demo server", self.route))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await.unwrap_or_default()))
    }

    /// A `curl` command line for it, with every part single-quoted for a POSIX shell.
    pub fn curl(&self, server: SocketAddr) -> String {
        let mut lines = vec![format!(
            "curl -sS -X POST {}",
            quote(&format!("http://{server}{}", self.route))
        )];
        lines.push(format!(
            "  -H {}",
            quote(&format!("content-type: {}", self.content_type))
        ));
        for (name, value) in &self.headers {
            lines.push(format!("  -H {}", quote(&format!("{name}: {value}"))));
        }
        lines.push(format!("  --data-binary {}", quote(&self.body)));
        lines.join(" \\\n")
    }
}

/// `'text'`, with each `'` written as `'\''`.
fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A random lowercase hex string of `len` characters.
fn random_hex(len: usize) -> String {
    (0..len)
        .map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0'))
        .collect()
}

/// A Discord snowflake for `at`.
fn snowflake(at: DateTime<Utc>) -> String {
    let millis = u64::try_from(at.timestamp_millis() - DISCORD_EPOCH_MS).unwrap_or(0);
    ((millis << 22) | fastrand::u64(..1 << 22)).to_string()
}

/// `/replays {text}` typed in `#support`, answered at `response_url`.
pub fn slack_command(text: &str, response_url: &str, now: DateTime<Utc>) -> Signed {
    let trigger_id = format!("{}.4700000000.{}", now.timestamp_millis(), random_hex(32));
    let body = serde_urlencoded::to_string([
        ("token", "demo-verification-token"),
        ("team_id", "T0DEMO"),
        ("team_domain", "replaydesk-demo"),
        ("channel_id", "C0SUPPORT"),
        ("channel_name", "support"),
        ("user_id", "U0AGENT"),
        ("user_name", "riley"),
        ("command", slack::handle::COMMAND),
        ("text", text),
        ("api_app_id", "A0DEMO"),
        ("is_enterprise_install", "false"),
        ("response_url", response_url),
        ("trigger_id", &trigger_id),
    ])
    .unwrap_or_default();
    let (timestamp, signature) =
        slack::verify::sign(SLACK_SIGNING_SECRET, now.timestamp(), body.as_bytes());
    Signed {
        label: format!("Slack: {} {text}", slack::handle::COMMAND),
        route: "/slack/commands",
        content_type: "application/x-www-form-urlencoded",
        headers: vec![
            (slack::verify::TIMESTAMP, timestamp),
            (slack::verify::SIGNATURE, signature),
        ],
        body,
    }
}

/// The webhook of a "ticket created" trigger for `ticket`, with the recommended template's fields.
pub fn zendesk_ticket(
    ticket: u64,
    requester_email: &str,
    updated_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Signed {
    let body = json!({
        "ticket_id": ticket.to_string(),
        "updated_at": updated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        "requester_email": requester_email,
    })
    .to_string();
    let timestamp = now.to_rfc3339_opts(SecondsFormat::Secs, true);
    let signature = zendesk::verify::sign(ZENDESK_WEBHOOK_SECRET, &timestamp, body.as_bytes());
    Signed {
        label: format!("Zendesk: ticket #{ticket} created"),
        route: "/zendesk/webhook",
        content_type: "application/json",
        headers: vec![
            (zendesk::inbound::ACCOUNT, ZENDESK_ACCOUNT_ID.to_owned()),
            ("x-zendesk-webhook-id", "01DEMOWEBHOOK".to_owned()),
            (zendesk::inbound::INVOCATION, random_hex(24)),
            (zendesk::verify::TIMESTAMP, timestamp),
            (zendesk::verify::SIGNATURE, signature),
        ],
        body,
    }
}

/// Intercom's `conversation.user.created` webhook: a new conversation `conversation` started by the
/// contact `contact`, signed as Intercom signs it (`X-Hub-Signature`).
pub fn intercom_conversation(
    conversation: &str,
    contact: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Signed {
    let body = json!({
        "type": "notification_event", "app_id": INTERCOM_WORKSPACE,
        "topic": "conversation.user.created", "id": format!("notif_{}", random_hex(16)),
        "created_at": now.timestamp(),
        "data": {"type": "notification_event_data", "item": {
            "type": "conversation", "id": conversation, "created_at": now.timestamp(),
            "contacts": {"type": "contact.list", "contacts": [{"type": "contact", "id": contact}]},
            "source": {"type": "conversation", "body": format!("<p>{text}</p>"),
                       "author": {"type": "user", "id": contact}}}},
    })
    .to_string();
    let signature = intercom::verify::sign_webhook(INTERCOM_CLIENT_SECRET, body.as_bytes());
    Signed {
        label: format!("Intercom: conversation {conversation} started"),
        route: "/intercom/webhook",
        content_type: "application/json",
        headers: vec![(intercom::verify::HUB_SIGNATURE, signature)],
        body,
    }
}

/// The inbox app opening beside conversation `conversation` for the contact `contact` with `email`,
/// signed as Canvas Kit signs it (`X-Body-Signature`).
pub fn intercom_canvas(
    conversation: &str,
    contact: &str,
    email: &str,
    now: DateTime<Utc>,
) -> Signed {
    let body = json!({
        "workspace_id": INTERCOM_WORKSPACE, "workspace_region": "us",
        "admin": {"type": "admin", "id": "1"}, "card_creation_options": {},
        "context": {"conversation_id": conversation, "location": "conversation"},
        "conversation": {"type": "conversation", "id": conversation, "created_at": now.timestamp()},
        "contact": {"type": "user", "id": contact, "email": email},
    })
    .to_string();
    let signature = intercom::verify::sign_canvas(INTERCOM_CLIENT_SECRET, body.as_bytes());
    Signed {
        label: format!("Intercom: the inbox app beside conversation {conversation}"),
        route: "/intercom/canvas/initialize",
        content_type: "application/json",
        headers: vec![(intercom::verify::BODY_SIGNATURE, signature)],
        body,
    }
}

/// An interaction from a moderator of the demo guild carrying `data`.
fn discord_interaction(kind: u8, data: &Value, now: DateTime<Utc>) -> (String, String) {
    let id = snowflake(now);
    let token = format!("demo-{}", random_hex(40));
    let body = json!({
        "id": id,
        "application_id": DISCORD_APPLICATION_ID,
        "type": kind,
        "token": token,
        "version": 1,
        "guild_id": DISCORD_GUILD_ID,
        "channel_id": "1300000000000000002",
        "member": {
            "user": { "id": "1300000000000000003", "username": "riley" },
            "roles": [],
            "permissions": MODERATE_MEMBERS,
        },
        "locale": "en-US",
        "data": data,
    })
    .to_string();
    (body, token)
}

fn discord_signed(label: String, body: String, now: DateTime<Utc>) -> Signed {
    let timestamp = now.timestamp();
    let signature = discord::verify::sign(&DISCORD_SEED, timestamp, body.as_bytes());
    Signed {
        label,
        route: "/discord/interactions",
        content_type: "application/json",
        headers: vec![
            (discord::verify::TIMESTAMP, timestamp.to_string()),
            (discord::verify::SIGNATURE, signature),
        ],
        body,
    }
}

/// "Find replays" (right-click → Apps) on a message saying `content`, sent at `sent`.
pub fn discord_find_replays(content: &str, sent: DateTime<Utc>, now: DateTime<Utc>) -> Signed {
    let target = snowflake(sent);
    let message = json!({
        "id": target,
        "channel_id": "1300000000000000002",
        "content": content,
        "timestamp": sent.to_rfc3339_opts(SecondsFormat::Millis, true),
        "author": { "id": "1300000000000000004", "username": "customer" },
    });
    // `resolved.messages` is a map from the target's id to the message.
    let messages: serde_json::Map<String, Value> =
        [(target.clone(), message)].into_iter().collect();
    let data = json!({
        "id": "1300000000000000010",
        "name": discord::wire::MESSAGE_COMMAND,
        "type": 3,
        "target_id": target,
        "resolved": { "messages": messages },
    });
    let (body, _) = discord_interaction(2, &data, now);
    let label = format!("Discord: {} on a message", discord::wire::MESSAGE_COMMAND);
    discord_signed(label, body, now)
}

/// `/replays email:{email} summary:{summary}`.
pub fn discord_slash(email: &str, summary: bool, now: DateTime<Utc>) -> Signed {
    let data = json!({
        "id": "1300000000000000011",
        "name": discord::wire::COMMAND,
        "type": 1,
        "options": [
            { "name": "email", "type": 3, "value": email },
            { "name": "summary", "type": 5, "value": summary },
        ],
    });
    let (body, _) = discord_interaction(2, &data, now);
    let label = format!(
        "Discord: /{} email:{email} summary:{summary}",
        discord::wire::COMMAND
    );
    discord_signed(label, body, now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    use super::*;

    fn headers(signed: &Signed) -> HeaderMap {
        signed
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    HeaderName::from_static(name),
                    HeaderValue::from_str(value).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn each_request_verifies_with_its_platforms_verifier() {
        let now = Utc::now();
        let slack = slack_command("jane@acme.com", "http://127.0.0.1:9/commands/x", now);
        assert_eq!(
            slack::verify::verify(
                &headers(&slack),
                slack.body.as_bytes(),
                [SLACK_SIGNING_SECRET].into_iter(),
                now
            ),
            Ok(())
        );
        let zd = zendesk_ticket(35436, "omar@globex.io", now, now);
        assert_eq!(
            zendesk::verify::verify(
                &headers(&zd),
                zd.body.as_bytes(),
                [ZENDESK_WEBHOOK_SECRET].into_iter(),
                now
            ),
            Ok(())
        );
        let key: [u8; 32] = hex::decode(discord::verify::public_key(&DISCORD_SEED))
            .unwrap()
            .try_into()
            .unwrap();
        let verifier = serenity::interactions_endpoint::Verifier::try_new(key).unwrap();
        for signed in [
            discord_find_replays("I am lee@initech.com", now, now),
            discord_slash("omar@globex.io", true, now),
        ] {
            assert_eq!(
                discord::verify::verify(&verifier, &headers(&signed), signed.body.as_bytes(), now),
                Ok(())
            );
        }
    }

    #[test]
    fn curl_lines_quote_what_the_shell_would_split_or_expand() {
        assert_eq!(quote("it's $HOME"), r"'it'\''s $HOME'");
        let signed = zendesk_ticket(1, "o'brien@example.com", Utc::now(), Utc::now());
        let line = signed.curl("127.0.0.1:8080".parse().unwrap());
        assert!(line.starts_with("curl -sS -X POST 'http://127.0.0.1:8080/zendesk/webhook'"));
        assert!(line.contains(r"o'\''brien@example.com"));
    }

    #[test]
    fn delivery_ids_are_fresh_for_every_request() {
        let now = Utc::now();
        let a = slack_command("x@y.io", "http://h/", now);
        let b = slack_command("x@y.io", "http://h/", now);
        assert_ne!(a.body, b.body);
        let a = discord_slash("x@y.io", false, now);
        let b = discord_slash("x@y.io", false, now);
        assert_ne!(a.body, b.body);
    }
}
