//! Block Kit for every answer replaydesk posts in Slack. Pure functions, snapshot-tested.
//!
//! The words come from [`crate::render`]; this file only arranges them: per identity a header (or the
//! polite "no sessions" line), one section per session with its start as Slack's
//! `<!date^UNIX^{date_short_pretty} {time}|fallback>` (every reader sees their own time zone) and a link
//! button, the likely session marked with its digest line under it and a **Summarize** button, and at the
//! end a **Share in channel** button on private answers. Button values carry what the click needs
//! (≤ 2000 characters, Slack's limit; a button whose value would not fit is left out).
//!
//! Within Slack's limits by construction (50 blocks, section and context text 3,000, header 150, button
//! text 75, button URL 3,000, value 2,000, message `text` 4,000: Slack's advice, under its 40,000
//! truncation): every customer- or FullStory-controlled string goes through the one [`escape`]
//! (`&`, `<`, `>`: so `<!channel>` and `<https://evil|Reset your password>` show as typed), in the
//! blocks and in the notification `text` alike, and is cut afterwards with [`crate::render::limits`].
//! A replay URL longer than a button may carry shows the session id instead.
//!
//! The Share button carries no customer identity: only the lookup job's id (`{"j": 42}`), which the
//! click handler resolves from the store, for the same workspace and user only (see `handle.rs`).

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use slack_morphism::{SlackActionId, blocks::*, md, pt};

use crate::{
    answer::{Answer, SummaryJob},
    fullstory::SessionId,
    identity::{CustomerEmail, Identity},
    lookup::{Digest, FoundSession, IdentityResult, LookupResult, SummaryOutcome},
    privacy::ErasureReceipt,
    render::{
        self,
        limits::{Lines, cut, len},
    },
};

/// Action ids of the buttons replaydesk handles.
pub const SUMMARIZE: &str = "summarize";
pub const SHARE: &str = "share";
/// The Escalate button (handled in `escalate.rs`).
pub const ESCALATE: &str = "escalate";
/// The erasure confirmation's buttons (`/replays forget`).
pub const ERASE_CONFIRM: &str = "erase_confirm";
pub const ERASE_CANCEL: &str = "erase_cancel";
/// The link buttons' action id (Slack reports their clicks too; they need no handling).
pub const OPEN: &str = "open_replay";

/// Slack's limits.
const MAX_BLOCKS: usize = 50;
const MAX_VALUE: usize = 2000;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_HEADER_TEXT: usize = 150;
const MAX_URL: usize = 3000;
/// The notification `text`: Slack advises 4,000 (and truncates past 40,000).
const MAX_TEXT: usize = 4000;

/// A message: the notification `text` and its blocks (none for a plain fallback).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Message {
    pub text: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<SlackBlock>,
}

/// What an Escalate button carries: the lookup job whose answer it is on, and the session. Beside the
/// other buttons' values, so the renderer never imports the escalation it starts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EscalateValue {
    pub job: i64,
    #[serde(default)]
    pub session: Option<SessionId>,
}

/// What a Summarize button carries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummarizeValue {
    #[serde(rename = "s")]
    pub session: SessionId,
    /// "Around", Unix seconds.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub around: Option<i64>,
    #[serde(rename = "u", default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// What a Share in channel button carries: the id of the lookup job it answers (`{"j": 42}`), which the
/// click handler reads back to run the same lookup again (its answers are cached). No email: a button's
/// value travels through Slack and every `response_url` post.
///
/// Buttons posted before carried the identities themselves (`{"i": [...], "a": …, "m": …}`): they are
/// still read, so those old buttons keep working.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShareValue {
    #[serde(rename = "j", default, skip_serializing_if = "Option::is_none")]
    pub job: Option<i64>,
    #[serde(rename = "i", default, skip_serializing_if = "Vec::is_empty")]
    pub identities: Vec<Identity>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub around: Option<i64>,
    #[serde(rename = "m", default, skip_serializing_if = "std::ops::Not::not")]
    pub summary: bool,
}

/// What the **Confirm erasure** button carries: whom to erase, and the `/replays forget` request it
/// confirms (that command's `trigger_id`), so every click on one confirmation is the same erasure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ForgetValue {
    #[serde(rename = "e")]
    pub email: CustomerEmail,
    #[serde(rename = "r")]
    pub request: String,
}

/// Which buttons a sessions answer gets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// A Share in channel button (private answers only), referring to this lookup job.
    pub share: Option<i64>,
    /// A Summarize button on the likely session (summaries configured, none in the answer yet).
    pub summarize: bool,
    /// An Escalate button on the likely session, referring to this lookup job (a tracker is on).
    pub escalate: Option<i64>,
}

/// The answer to a lookup.
pub fn sessions(result: &LookupResult, options: Options) -> Message {
    // Two blocks stay free for the "more not shown" line and the Share button (three with "not looked up").
    let not_looked_up = render::not_looked_up(result);
    let budget = MAX_BLOCKS - 2 - usize::from(not_looked_up.is_some());
    let mut blocks: Vec<SlackBlock> = Vec::new();
    let mut hidden = 0;
    for group in &result.identities {
        if group.sessions.is_empty() {
            if blocks.len() < budget {
                blocks.push(section(&escape(&render::no_sessions(
                    group,
                    result.lookback_days,
                ))));
            }
            continue;
        }
        if blocks.len() + 2 > budget {
            hidden += group.sessions.len();
            continue;
        }
        blocks.push(header(&render::sessions_heading(group)));
        let went_wrong = render::went_wrong_lines(group);
        for session in &group.sessions {
            // The likely session: its line, the digest, what went wrong, the Summarize button.
            let needed = if session.likely {
                3 + usize::from(!went_wrong.is_empty())
            } else {
                1
            };
            if blocks.len() + needed > budget {
                hidden += 1;
                continue;
            }
            blocks.push(session_section(session, result));
            if session.likely {
                if let Some(line) = render::digest_line(group) {
                    blocks.push(context(&escape(&line)));
                }
                blocks.extend(went_wrong_block(&went_wrong));
                let mut buttons = Vec::new();
                if options.summarize
                    && let Some(button) = summarize_button(session, result.around)
                {
                    buttons.push(button.into());
                }
                if let Some(job) = options.escalate
                    && let Some(button) = escalate_button(job, session)
                {
                    buttons.push(button.into());
                }
                if !buttons.is_empty() {
                    blocks.push(SlackActionsBlock::new(buttons).into());
                }
            }
        }
        if let Some(summary) = summary_section(group)
            && blocks.len() < budget
        {
            blocks.push(summary);
        }
    }
    if hidden > 0 {
        blocks.push(context(&format!(
            "{hidden} more session{} not shown.",
            if hidden == 1 { "" } else { "s" }
        )));
    }
    blocks.extend(not_looked_up.map(|line| context(&escape(&line))));
    if let Some(job) = options.share
        && let Some(button) = share_button(job)
    {
        blocks.push(SlackActionsBlock::new(vec![button.into()]).into());
    }
    blocks.truncate(MAX_BLOCKS);
    let mut text = Lines::new(MAX_TEXT, 40, "\n");
    for group in &result.identities {
        text.push(escape(&if group.sessions.is_empty() {
            render::no_sessions(group, result.lookback_days)
        } else {
            render::sessions_heading(group)
        }));
    }
    Message {
        text: text.finish(|n| format!("and {n} more")),
        blocks,
    }
}

/// The answer to a Summarize button.
pub fn summary(job: &SummaryJob, outcome: &SummaryOutcome) -> Message {
    let link = job
        .url
        .as_deref()
        .and_then(|url| named_link(url, "Watch replay"))
        .map(|link| format!(" · {link}"))
        .unwrap_or_default();
    let (text, body) = match outcome {
        SummaryOutcome::Ready(text) => (
            format!("Summary: {}", escape(text)),
            format!("*Summary*{link}\n{}", escape(text)),
        ),
        SummaryOutcome::Unavailable(why) => (
            format!("No summary: {}", escape(why)),
            format!("*No summary*{link}\n_{}_", escape(why)),
        ),
    };
    Message {
        text: cut(&text, MAX_SECTION_TEXT),
        blocks: vec![section(&body)],
    }
}

/// A short notice: "looking up", "delayed", "not allowed", the usage.
pub fn notice(text: &str) -> Message {
    Message {
        text: cut(&escape(text), MAX_TEXT),
        blocks: vec![section(&escape(text))],
    }
}

/// The plain answer posted when Slack refused the rich one: `text` only (no blocks), the replay links
/// as `<url|replay>`, within Slack's advised 4,000 characters.
pub fn plain(answer: &Answer<'_>) -> Message {
    let mut text = Lines::new(MAX_TEXT, 40, "\n");
    for line in render::fallback_lines(answer, escape, link) {
        text.push(cut(&line, MAX_SECTION_TEXT));
    }
    Message {
        text: text.finish(|n| format!("… and {n} more")),
        blocks: Vec::new(),
    }
}

/// The answer when a job gave up or FullStory refused: what happened and the reference to replay it.
pub fn failure(message: &str, reference: &str) -> Message {
    Message {
        text: cut(&escape(message), MAX_TEXT),
        blocks: vec![
            section(&escape(message)),
            context(&format!("Reference: {}", escape(reference))),
        ],
    }
}

/// The private confirmation `/replays forget` answers with: what will be erased (the address redacted,
/// as everywhere), a **Confirm erasure** button (style danger) and **Cancel**.
pub fn erasure_confirmation(value: &ForgetValue) -> Message {
    let text = render::confirm_erasure(&value.email);
    let mut buttons = vec![];
    if let Some(json) = serde_json::to_string(value)
        .ok()
        .filter(|v| v.len() <= MAX_VALUE)
    {
        buttons.push(
            SlackBlockButtonElement::new(pt!("Confirm erasure"))
                .with_action_id(SlackActionId(ERASE_CONFIRM.into()))
                .with_value(json)
                .with_style(SlackBlockButtonStyle::Danger)
                .into(),
        );
    }
    buttons.push(
        SlackBlockButtonElement::new(pt!("Cancel"))
            .with_action_id(SlackActionId(ERASE_CANCEL.into()))
            .into(),
    );
    Message {
        text: cut(&escape(&text), MAX_TEXT),
        blocks: vec![
            section(&escape(&text)),
            SlackActionsBlock::new(buttons).into(),
        ],
    }
}

/// An erasure's receipt: its state, then what was deleted where (with the upstream references) and
/// what is still pending, one line each.
pub fn erasure_receipt(email: &CustomerEmail, receipt: &ErasureReceipt) -> Message {
    let heading = render::erasure_heading(email, receipt);
    let mut body = format!("*{}*", escape(&heading));
    for line in render::erasure_lines(receipt) {
        body.push('\n');
        body.push_str(&escape(&line));
    }
    Message {
        text: cut(&escape(&heading), MAX_TEXT),
        blocks: vec![section(&body)],
    }
}

/// Adds a line saying why the answer came privately instead of in the thread.
pub fn with_thread_hint(mut message: Message, code: &str) -> Message {
    message.blocks.push(context(&format!(
        "I could not post in the thread (`{}`); invite me to the channel with `/invite @replaydesk` so \
         others see answers there.",
        escape(code)
    )));
    message.blocks.truncate(MAX_BLOCKS);
    message
}

/// The immediate, ephemeral answer to a slash command (escaped: it may name a uid the asker typed).
pub fn ephemeral(text: &str) -> Value {
    json!({ "response_type": "ephemeral", "text": cut(&escape(text), MAX_TEXT) })
}

/// `<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>`: the reader's own time zone.
pub fn slack_date(time: DateTime<Utc>) -> String {
    format!(
        "<!date^{}^{{date_short_pretty}} {{time}}|{}>",
        time.timestamp(),
        render::utc(time)
    )
}

/// A Slack `ts` (`"1700000000.123456"`) as a time.
pub fn ts_time(ts: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, "0"));
    let seconds: i64 = seconds.parse().ok()?;
    let digits: String = fraction.chars().take(6).collect();
    let micros: u32 = format!("{digits:0<6}").parse().ok()?;
    Utc.timestamp_opt(seconds, micros.checked_mul(1000)?)
        .single()
}

/// Unix seconds back to a time.
pub fn from_unix(seconds: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(seconds, 0).single()
}

fn session_section(session: &FoundSession, result: &LookupResult) -> SlackBlock {
    let mut text = slack_date(session.created);
    if session.likely {
        text.push_str(&format!(
            "  ·  *{}* _({})_",
            render::LIKELY,
            render::likely_reason(result)
        ));
    }
    let url = reqwest::Url::parse(&session.url)
        .ok()
        .filter(|url| len(url.as_str()) <= MAX_URL);
    if url.is_none() {
        // A URL no button may carry: the session id keeps the replay reachable.
        text.push_str(&format!("  ·  session `{}`", escape(session.id.as_str())));
    }
    let mut block = SlackSectionBlock::new().with_text(md!(cut(&text, MAX_SECTION_TEXT)));
    if let Some(url) = url {
        block = block.with_accessory(
            SlackBlockButtonElement::new(pt!("Watch replay"))
                .with_action_id(SlackActionId(OPEN.into()))
                .with_url(url)
                .into(),
        );
    }
    block.into()
}

fn summary_section(group: &IdentityResult) -> Option<SlackBlock> {
    let text = match group.summary.as_ref()? {
        SummaryOutcome::Ready(text) => format!("*Summary*\n{}", escape(text)),
        SummaryOutcome::Unavailable(why) => format!("*No summary*\n_{}_", escape(why)),
    };
    Some(section(&text))
}

/// One preview, as the job worked it out.
pub struct Preview {
    pub url: String,
    pub session: SessionId,
    pub started: Option<DateTime<Utc>>,
    pub digest: Digest,
    /// Why there is no digest (the FullStory Activation budget is used), shown in its place.
    pub skipped: Option<String>,
    /// The customer, masked (`j•••@acme.com`), when FullStory's user record names them.
    pub customer: Option<String>,
}

/// The blocks of a FullStory link's preview (`chat.unfurl`): when it started and how long it lasted,
/// the customer (masked), the digest, what went wrong, and a Summarize button, within Slack's limits
/// like every other answer.
pub fn unfurl_blocks(preview: &Preview) -> Vec<SlackBlock> {
    let mut heading = "*FullStory session*".to_owned();
    if let Some(started) = preview.started {
        heading.push_str(&format!("  ·  {}", slack_date(started)));
    }
    if let Some(customer) = &preview.customer {
        heading.push_str(&format!("  ·  {}", escape(customer)));
    }
    let mut blocks = vec![section(&heading)];
    let digest = preview
        .skipped
        .clone()
        .unwrap_or_else(|| preview.digest.line());
    blocks.push(context(&escape(&digest)));
    blocks.extend(went_wrong_block(&render::went_wrong_list(
        &preview.digest.went_wrong,
    )));
    let session = FoundSession {
        id: preview.session.clone(),
        url: preview.url.clone(),
        created: preview.started.unwrap_or_default(),
        likely: true,
    };
    if let Some(button) = summarize_button(&session, None) {
        blocks.push(SlackActionsBlock::new(vec![button.into()]).into());
    }
    blocks
}

/// "What went wrong" as one context block (each line escaped), when there is anything.
fn went_wrong_block(lines: &[String]) -> Option<SlackBlock> {
    if lines.is_empty() {
        return None;
    }
    let lines: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    Some(context(&format!(
        "*{}*\n{}",
        render::WENT_WRONG_HEADING,
        lines.join("\n")
    )))
}

fn summarize_button(
    session: &FoundSession,
    around: Option<DateTime<Utc>>,
) -> Option<SlackBlockButtonElement> {
    let mut value = SummarizeValue {
        session: session.id.clone(),
        around: around.map(|t| t.timestamp()),
        url: Some(session.url.clone()),
    };
    let mut text = serde_json::to_string(&value).ok()?;
    if text.len() > MAX_VALUE {
        value.url = None;
        text = serde_json::to_string(&value).ok()?;
    }
    (text.len() <= MAX_VALUE).then(|| {
        SlackBlockButtonElement::new(pt!("Summarize"))
            .with_action_id(SlackActionId(SUMMARIZE.into()))
            .with_value(text)
            .with_style(SlackBlockButtonStyle::Primary)
    })
}

/// The Escalate button of lookup job `job`'s answer, on `session` ([`super::escalate`]).
fn escalate_button(job: i64, session: &FoundSession) -> Option<SlackBlockButtonElement> {
    let value = EscalateValue {
        job,
        session: Some(session.id.clone()),
    };
    let text = serde_json::to_string(&value).ok()?;
    (text.len() <= MAX_VALUE).then(|| {
        SlackBlockButtonElement::new(pt!("Escalate"))
            .with_action_id(SlackActionId(ESCALATE.into()))
            .with_value(text)
    })
}

fn share_button(job: i64) -> Option<SlackBlockButtonElement> {
    let value = ShareValue {
        job: Some(job),
        ..ShareValue::default()
    };
    let text = serde_json::to_string(&value).ok()?;
    (text.len() <= MAX_VALUE).then(|| {
        SlackBlockButtonElement::new(pt!("Share in channel"))
            .with_action_id(SlackActionId(SHARE.into()))
            .with_value(text)
    })
}

fn header(text: &str) -> SlackBlock {
    SlackHeaderBlock::new(pt!(cut(text, MAX_HEADER_TEXT))).into()
}

fn section(text: &str) -> SlackBlock {
    SlackSectionBlock::new()
        .with_text(md!(cut(text, MAX_SECTION_TEXT)))
        .into()
}

fn context(text: &str) -> SlackBlock {
    SlackContextBlock::new(vec![md!(cut(text, MAX_SECTION_TEXT))]).into()
}

/// Slack's one escaping, for every text we do not write ourselves: the three characters mrkdwn gives
/// meaning to (`&`, `<`, `>`), as Slack documents. Cut afterwards ([`cut`] never splits an entity).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A replay link in mrkdwn (`<url|replay>`), when the URL is a web URL Slack can carry.
fn link(url: &str) -> Option<String> {
    named_link(url, "replay")
}

/// `<url|name>`, when `url` is a web URL short enough to share a section with other words.
fn named_link(url: &str, name: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    (matches!(parsed.scheme(), "http" | "https") && len(url) <= MAX_SECTION_TEXT / 2)
        .then(|| format!("<{}|{name}>", escape(url)))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use insta::assert_json_snapshot;

    use super::*;
    use crate::{
        answer::ReplyTo,
        identity::Uid,
        lookup::Digest,
        privacy::Requester,
        render::sample::{self, sample_result},
    };

    fn at(seconds: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(seconds, 0).unwrap()
    }

    fn session(n: u32, created: i64, likely: bool) -> FoundSession {
        FoundSession {
            id: SessionId::new(format!("5191865402245120:400000000000000{n}")).unwrap(),
            url: format!(
                "https://app.fullstory.com/ui/o-1/session/5191865402245120:400000000000000{n}"
            ),
            created: at(created),
            likely,
        }
    }

    /// The shared sample ([`render::sample`]) asked about at `around`.
    fn result(around: Option<DateTime<Utc>>) -> LookupResult {
        LookupResult {
            around,
            ..sample_result()
        }
    }

    fn around() -> Option<DateTime<Utc>> {
        Some(sample::at(sample::AROUND))
    }

    #[test]
    fn a_fullstory_link_preview_has_when_who_digest_what_went_wrong_and_summarize() {
        let preview = Preview {
            url: "https://app.fullstory.com/ui/o-1/session/5191865402245120:4000000000000003"
                .into(),
            session: SessionId::new("5191865402245120:4000000000000003").unwrap(),
            started: Some(at(1_763_990_000)),
            digest: Digest {
                pages: 3,
                errors: 2,
                rage_clicks: 3,
                duration_secs: Some(420),
                went_wrong: crate::lookup::WhatWentWrong::sample(),
                ..Digest::default()
            },
            skipped: None,
            customer: Some("j•••@acme.com".into()),
        };
        // As a message ({"blocks": …}) so the contract script validates it with slack_sdk.
        assert_json_snapshot!(serde_json::json!({ "blocks": unfurl_blocks(&preview) }));
    }

    #[test]
    fn a_private_answer_has_dates_the_likely_digest_and_every_button() {
        let message = sessions(
            &result(around()),
            Options {
                share: Some(7),
                summarize: true,
                escalate: None,
            },
        );
        assert_json_snapshot!(message);
    }

    #[test]
    fn a_shared_answer_has_no_share_button_and_shows_a_requested_summary() {
        let mut result = result(None);
        result.identities[0].summary = Some(SummaryOutcome::Ready(
            "The customer clicked <Pay> twice & gave up.".into(),
        ));
        let message = sessions(
            &result,
            Options {
                share: None,
                summarize: false,
                escalate: None,
            },
        );
        assert_json_snapshot!(message);
    }

    #[test]
    fn summaries_notices_and_failures_render() {
        let summary_job = SummaryJob {
            session: SessionId::new("1:2").unwrap(),
            url: Some("https://app.fullstory.com/ui/o-1/session/1:2".into()),
            around: None,
            requester: Requester::default(),
            reply: ReplyTo::nowhere(),
        };
        assert_json_snapshot!(
            "summary_ready",
            summary(
                &summary_job,
                &SummaryOutcome::Ready("Tried to pay twice.".into())
            )
        );
        assert_json_snapshot!(
            "summary_unavailable",
            summary(
                &summary_job,
                &SummaryOutcome::Unavailable("summaries are off".into())
            )
        );
        assert_json_snapshot!(
            "failure",
            failure(
                "replaydesk could not get an answer from FullStory after several tries.",
                "job 7 (an admin can run `replaydesk jobs retry 7`)"
            )
        );
        assert_json_snapshot!("notice", notice(render::NOT_ALLOWED));
    }

    #[test]
    fn the_plain_fallback_is_text_with_the_links_only() {
        let result = result(around());
        let job = render::test_job(&result);
        let message = plain(&Answer::Sessions {
            job: &job,
            result: &result,
        });
        assert!(message.blocks.is_empty());
        assert_json_snapshot!(message);
    }

    #[test]
    fn many_sessions_stay_within_fifty_blocks() {
        let mut big = result(None);
        big.identities[0].sessions = (0..80)
            .map(|n| session(n % 10, 1_764_000_000 - i64::from(n) * 60, n == 0))
            .collect();
        let message = sessions(
            &big,
            Options {
                share: Some(7),
                summarize: true,
                escalate: None,
            },
        );
        assert!(message.blocks.len() <= 50, "{}", message.blocks.len());
        let json = serde_json::to_string(&message.blocks).unwrap();
        assert!(json.contains("more sessions not shown"), "{json}");
        assert!(json.contains("\"share\""), "the share button is kept");
    }

    #[test]
    fn button_values_round_trip_and_fit_slacks_limit() {
        let message = sessions(
            &result(around()),
            Options {
                share: Some(7),
                summarize: true,
                escalate: None,
            },
        );
        let blocks = serde_json::to_value(&message.blocks).unwrap();
        let values: Vec<&str> = blocks
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "actions")
            .filter_map(|b| b["elements"][0]["value"].as_str())
            .collect();
        assert_eq!(values.len(), 2);
        let summarize: SummarizeValue = serde_json::from_str(values[0]).unwrap();
        assert_eq!(summarize.session.as_str(), sample::LIKELY);
        assert_eq!(summarize.around, around().map(|t| t.timestamp()));
        assert_eq!(
            values[1], r#"{"j":7}"#,
            "the Share button carries the job, no email"
        );
        let share: ShareValue = serde_json::from_str(values[1]).unwrap();
        assert_eq!(share.job, Some(7));
        let old: ShareValue = serde_json::from_str(r#"{"i":[{"email":"jane@acme.com"}],"m":true}"#)
            .unwrap_or_default();
        assert!(old.job.is_none(), "buttons posted before are still read");
        assert!(values.iter().all(|v| v.len() <= MAX_VALUE));
    }

    #[test]
    fn slack_timestamps_read_as_times() {
        assert_eq!(
            ts_time("1700000000.000200"),
            Utc.timestamp_opt(1_700_000_000, 200_000).single()
        );
        assert_eq!(ts_time("1700000000"), Some(at(1_700_000_000)));
        assert_eq!(ts_time("soon"), None);
        assert_eq!(ts_time("1.x"), None);
        assert_eq!(
            slack_date(at(1_700_000_000)),
            "<!date^1700000000^{date_short_pretty} {time}|2023-11-14 22:13 UTC>"
        );
    }

    #[test]
    fn mrkdwn_control_characters_are_escaped() {
        assert_eq!(escape("a<b>&c"), "a&lt;b&gt;&amp;c");
        let uid = Identity::Uid(Uid::parse("<!channel>").unwrap());
        assert_eq!(
            ephemeral(&render::looking_up(&[uid], 10))["text"],
            "Looking up replays for uid:&lt;!channel&gt;…"
        );
    }
}
