//! What each platform would have shown, as terminal text: Block Kit blocks, a Zendesk note's HTML and a
//! Discord embed read the way their apps draw them (links as `label <url>`, Slack's `<!date^…|fallback>`
//! and Discord's `<t:…>` as UTC times, buttons as `[label]`). Only the demo prints these; they read
//! whatever JSON or HTML arrives without failing on it.

use std::fmt::Write as _;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::upstream::Reply;

/// A reply as the lines a person would have seen, under a heading naming where it went.
pub fn reply(reply: &Reply) -> String {
    match reply {
        Reply::Slack { via, body } => {
            let visibility = match body["response_type"].as_str() {
                Some("in_channel") => "visible to the channel",
                _ if via == "chat.postMessage" => "in the thread",
                _ => "only the agent sees it",
            };
            section(
                &format!("Slack ({via}, {visibility})"),
                &slack_message(body),
            )
        }
        Reply::ZendeskNote { ticket, html } => section(
            &format!("Zendesk (internal note on ticket #{ticket})"),
            &html_text(html),
        ),
        Reply::ZendeskTags { ticket, tags } => {
            format!("── Zendesk: ticket #{ticket} tagged {}\n", tags.join(", "))
        }
        Reply::Discord { body } => section(
            "Discord (the deferred ephemeral answer, edited)",
            &discord_message(body),
        ),
        Reply::IntercomNote { conversation, html } => section(
            &format!("Intercom (internal note on conversation {conversation})"),
            &html_text(html),
        ),
        Reply::LinearIssue { key, url, title } => section(
            "Linear (the issue an escalation made)",
            &format!("Escalated to Linear: {key} {title}\n{url}"),
        ),
    }
}

fn section(title: &str, body: &str) -> String {
    let mut out = format!("── {title} ──\n");
    for line in body.lines() {
        let _ = writeln!(out, "  {line}");
    }
    out
}

/// Block Kit (`blocks`) or, without blocks, the message's `text`.
pub fn slack_message(body: &Value) -> String {
    let Some(blocks) = body["blocks"].as_array().filter(|b| !b.is_empty()) else {
        return slack_text(body["text"].as_str().unwrap_or_default());
    };
    let mut lines = Vec::new();
    for block in blocks {
        match block["type"].as_str() {
            Some("header") => lines.push(slack_text(block["text"]["text"].as_str().unwrap_or(""))),
            Some("section") => {
                let mut line = slack_text(block["text"]["text"].as_str().unwrap_or_default());
                if let Some(button) = button(&block["accessory"]) {
                    line.push_str("  ");
                    line.push_str(&button);
                }
                lines.push(line);
            }
            Some("context") => {
                let text: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|e| e["text"].as_str())
                    .map(slack_text)
                    .collect();
                lines.push(format!("    {}", text.join(" ")));
            }
            Some("actions") => {
                let buttons: Vec<String> = block["elements"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(button)
                    .collect();
                lines.push(buttons.join(" "));
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// `[Label]`, with its link when it opens one.
fn button(element: &Value) -> Option<String> {
    let label = element["text"]["text"]
        .as_str()
        .or_else(|| element["label"].as_str())?;
    Some(match element["url"].as_str() {
        Some(url) => format!("[{label}] <{url}>"),
        None => format!("[{label}]"),
    })
}

/// Slack mrkdwn as plain text: `<!date^…|fallback>` → fallback, `<url|label>` → `label <url>`, entities
/// decoded, `*bold*` and `_italic_` marks dropped.
pub fn slack_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        out.push_str(&drop_emphasis(&rest[..start]));
        let Some(end) = rest[start..].find('>') else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let inner = &rest[start + 1..start + end];
        let (target, label) = inner.split_once('|').unwrap_or((inner, ""));
        if target.starts_with("!date") {
            out.push_str(label);
        } else if label.is_empty() {
            out.push_str(target);
        } else {
            let _ = write!(out, "{label} <{target}>");
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(&drop_emphasis(rest));
    decode_entities(&out)
}

/// Removes `*` and word-edge `_` (mrkdwn emphasis) from plain text.
fn drop_emphasis(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            let before = i.checked_sub(1).and_then(|j| chars.get(j));
            let after = chars.get(i + 1);
            let edge = |c: Option<&char>| c.is_none_or(|c| !c.is_alphanumeric());
            !(c == '*' || (c == '_' && (edge(before) || edge(after))))
        })
        .map(|(_, c)| c)
        .collect()
}

fn decode_entities(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// HTML as text: paragraphs and list items on lines of their own, links as `text <href>`.
pub fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut href: Option<String> = None;
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start].replace('\n', ""));
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[start + 1..start + end];
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let closing = tag.starts_with('/');
        match (name.as_str(), closing) {
            ("p" | "ul", true) | ("li", true) => out.push('\n'),
            ("li", false) => out.push_str("• "),
            ("br", _) => out.push_str("\n    "),
            ("a", false) => href = attribute(tag, "href"),
            ("a", true) => {
                if let Some(href) = href.take() {
                    let _ = write!(out, " <{href}>");
                }
            }
            _ => {}
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    decode_entities(&out)
        .lines()
        .map(str::trim_end)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of `name="…"` in a tag, entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!("{name}=\""))? + name.len() + 2;
    let end = tag[start..].find('"')? + start;
    Some(decode_entities(&tag[start..end]))
}

/// Discord embeds (title, description, fields, footer) and the buttons under them.
pub fn discord_message(body: &Value) -> String {
    let mut lines = Vec::new();
    if let Some(content) = body["content"].as_str().filter(|c| !c.is_empty()) {
        lines.push(discord_text(content));
    }
    for embed in body["embeds"].as_array().into_iter().flatten() {
        if let Some(title) = embed["title"].as_str() {
            lines.push(discord_text(title));
        }
        if let Some(description) = embed["description"].as_str() {
            lines.extend(
                description
                    .lines()
                    .map(|l| format!("  {}", discord_text(l))),
            );
        }
        for field in embed["fields"].as_array().into_iter().flatten() {
            let name = field["name"].as_str().unwrap_or_default();
            let value = discord_text(field["value"].as_str().unwrap_or_default());
            lines.push(format!("  {name}: {value}"));
        }
        if let Some(footer) = embed["footer"]["text"].as_str() {
            lines.push(format!("  ({})", discord_text(footer)));
        }
    }
    for row in body["components"].as_array().into_iter().flatten() {
        let buttons: Vec<String> = row["components"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(button)
            .collect();
        if !buttons.is_empty() {
            lines.push(buttons.join(" "));
        }
    }
    lines.join("\n")
}

/// Discord markdown as plain text: `<t:UNIX:f>` → UTC, `[label](url)` → `label <url>`, `**` dropped.
pub fn discord_text(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let stamp = rest.find("<t:");
        let link = rest.find("](").and_then(|close| {
            let open = rest[..close].rfind('[')?;
            let end = rest[close..].find(')')? + close;
            Some((open, close, end))
        });
        match (stamp, link) {
            (Some(s), l) if l.is_none_or(|(open, _, _)| s < open) => {
                out.push_str(&rest[..s]);
                let Some(end) = rest[s..].find('>') else {
                    out.push_str(&rest[s..]);
                    break;
                };
                let seconds = rest[s + 3..s + end].split(':').next().unwrap_or_default();
                match seconds
                    .parse()
                    .ok()
                    .and_then(|n| Utc.timestamp_opt(n, 0).single())
                {
                    Some(time) => out.push_str(&crate::render::utc(time)),
                    None => out.push_str(&rest[s..=s + end]),
                }
                rest = &rest[s + end + 1..];
            }
            (_, Some((open, close, end))) => {
                out.push_str(&rest[..open]);
                let _ = write!(
                    out,
                    "{} <{}>",
                    &rest[open + 1..close],
                    &rest[close + 2..end]
                );
                rest = &rest[end + 1..];
            }
            _ => {
                out.push_str(rest);
                break;
            }
        }
    }
    out.replace("**", "")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn slack_markup_reads_as_text() {
        assert_eq!(
            slack_text(
                "<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>  ·  *likely* _(the most recent)_"
            ),
            "2023-11-14 22:13 UTC  ·  likely (the most recent)"
        );
        assert_eq!(
            slack_text("*Summary* · <https://x.io/a_b|Watch replay>\nA &amp; B &lt;3"),
            "Summary · Watch replay <https://x.io/a_b>\nA & B <3"
        );
        assert_eq!(
            slack_text("snake_case stays; <unclosed"),
            "snake_case stays; <unclosed"
        );
    }

    #[test]
    fn block_kit_becomes_lines_with_buttons() {
        let body = json!({"blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "j•••@acme.com · 1 recent session"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"},
             "accessory": {"type": "button", "text": {"type": "plain_text", "text": "Watch replay"}, "url": "https://fs/1"}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "6 pages"}]},
            {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Share in channel"}}]},
        ]});
        assert_eq!(
            slack_message(&body),
            "j•••@acme.com · 1 recent session\nhi  [Watch replay] <https://fs/1>\n    6 pages\n[Share in channel]"
        );
        assert_eq!(slack_message(&json!({"text": "plain"})), "plain");
        assert_eq!(slack_message(&json!(null)), "");
    }

    #[test]
    fn a_note_reads_as_lines() {
        let html = "<p><strong>o•••@globex.io · 2 recent sessions</strong></p>\n<ul>\n<li><a href=\"https://fs/a?x=1&amp;y=2\">2026-11-20 14:02 UTC</a> · <strong>likely</strong> (why)<br>3 pages</li>\n<li>2026-11-19 09:00 UTC</li>\n</ul>\n<p><small>replaydesk · ref rd-1</small></p>";
        assert_eq!(
            html_text(html),
            "o•••@globex.io · 2 recent sessions\n• 2026-11-20 14:02 UTC <https://fs/a?x=1&y=2> · likely (why)\n    3 pages\n• 2026-11-19 09:00 UTC\nreplaydesk · ref rd-1"
        );
        assert_eq!(html_text("<p>broken <a href=\"x"), "broken");
    }

    #[test]
    fn an_embed_reads_as_lines() {
        let body = json!({
            "embeds": [{"title": "l•••@initech.com · 1 recent session",
                        "description": "**1.** <t:1700000000:f> · [replay](https://fs/1) · **likely**\n↳ 3 pages",
                        "fields": [{"name": "FullStory AI summary", "value": "It broke."}],
                        "footer": {"text": "likely: the most recent"}}],
            "components": [{"type": 1, "components": [{"type": 2, "style": 5, "label": "Replay 1", "url": "https://fs/1"}]}],
        });
        assert_eq!(
            discord_message(&body),
            "l•••@initech.com · 1 recent session\n  1. 2023-11-14 22:13 UTC · replay <https://fs/1> · likely\n  ↳ 3 pages\n  FullStory AI summary: It broke.\n  (likely: the most recent)\n[Replay 1] <https://fs/1>"
        );
        assert_eq!(discord_text("<t:nope:f> [x](y"), "<t:nope:f> [x](y");
    }
}
