//! The property behind "within every limit by construction": random lookup results (1–20 identities,
//! 0–20 sessions each, summaries up to ~10,000 characters of hostile text, replay URLs up to 4,000
//! characters) rendered on every platform, every answer kind and the plain fallbacks, checked against
//! every documented limit, and for what escaping must leave behind (no live mention or link, no
//! broken entity). It sits with the adapters because it draws with each of their renderers; adding a
//! platform adds its line here.

#![allow(clippy::unwrap_used)]

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::{discord, intercom, slack, zendesk};
use crate::{
    answer::{Answer, ReplyTo, SummaryJob},
    fullstory::SessionId,
    identity::{CustomerEmail, Identity, Uid},
    lookup::{
        Digest, FoundSession, IdentityResult, LookupResult, Moment, SummaryOutcome, WhatWentWrong,
    },
    privacy::Requester,
    render::limits::len,
};

/// What customers and FullStory may write.
const HOSTILE: &[&str] = &[
    "<!channel>",
    "<!here|here>",
    "<https://evil.example|Click to reset your password>",
    "<@U123>",
    "&",
    "&amp;",
    "&lt;",
    "*_~|",
    "@everyone",
    "`",
    "```",
    "[link](https://evil.example)",
    "<script>alert(1)</script>",
    "\"quoted\"",
    "'",
    "\\",
    "😀",
    "👩‍👩‍👧",
    "é",
    "\n",
    "# heading",
    "> quote",
    "word",
    "another",
    "supercalifragilisticexpialidocious",
];

fn hostile_text(max_tokens: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(HOSTILE), 0..max_tokens).prop_map(|t| t.join(" "))
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => (0usize..40).prop_map(|n| format!("https://app.fullstory.com/ui/o-1/session/5:{n}?a=1&b=2")),
        1 => (400usize..4000).prop_map(|n| format!("https://app.fullstory.com/ui/o-1/session/5:1?x={}", "y".repeat(n))),
        1 => Just("javascript:alert(1)".to_owned()),
    ]
}

fn summary() -> impl Strategy<Value = Option<SummaryOutcome>> {
    prop_oneof![
        2 => Just(None),
        3 => hostile_text(2_000).prop_map(|t| Some(SummaryOutcome::Ready(t))),
        1 => hostile_text(20).prop_map(|t| Some(SummaryOutcome::Unavailable(t))),
    ]
}

/// A full "what went wrong" list (three of each, at the longest a text may be) of hostile text.
fn hostile_went_wrong() -> WhatWentWrong {
    let text: String = "<!channel> @everyone <https://evil.example|x> &amp; *_~`|> "
        .chars()
        .cycle()
        .take(crate::lookup::went_wrong::MAX_TEXT)
        .collect();
    let three = || {
        (0..3)
            .map(|i| Moment {
                offset_secs: Some(i * 61),
                text: text.clone(),
            })
            .collect::<Vec<_>>()
    };
    WhatWentWrong {
        console_errors: three(),
        failed_requests: three(),
        frustrated_pages: three(),
    }
}

fn group(n: usize) -> impl Strategy<Value = IdentityResult> {
    (
        prop::collection::vec(url(), 0..=20),
        any::<bool>(),
        summary(),
        any::<bool>(),
    )
        .prop_map(move |(urls, uid, summary, digest)| {
            let identity = if uid {
                Identity::Uid(Uid::parse(&format!("<!channel>&{n}*_<@U123>")).unwrap())
            } else {
                Identity::Email(CustomerEmail::parse(&format!("jane-{n}@acme.com")).unwrap())
            };
            let sessions: Vec<FoundSession> = urls
                .into_iter()
                .enumerate()
                .map(|(i, url)| FoundSession {
                    id: SessionId::new(format!("5191865402245120:{n}{i:014}")).unwrap(),
                    url,
                    created: Utc
                        .timestamp_opt(1_764_000_000 - i64::try_from(i).unwrap() * 600, 0)
                        .unwrap(),
                    likely: i == 0,
                })
                .collect();
            // An erased customer (an email whose sessions were not looked up) renders too.
            let forgotten = !uid && sessions.is_empty() && digest;
            IdentityResult {
                identity,
                forgotten,
                digest: (digest && !sessions.is_empty()).then(|| Digest {
                    pages: 6,
                    errors: 2,
                    rage_clicks: 3,
                    duration_secs: Some(420),
                    went_wrong: hostile_went_wrong(),
                    ..Digest::default()
                }),
                // Past the Activation budget: the longest skipped line there is.
                digest_skipped: (!digest && !sessions.is_empty() && uid).then(|| {
                    "Digest skipped: FullStory Activation budget for this cycle used: 4,294,967,295 \
                     of 4,294,967,295 (the other 4,294,967,295 are kept for agents' requests); \
                     resets 2027-01-01"
                        .to_owned()
                }),
                summary: if sessions.is_empty() { None } else { summary },
                sessions,
            }
        })
}

fn result() -> impl Strategy<Value = LookupResult> {
    (1usize..=20, any::<bool>())
        .prop_flat_map(|(n, around)| {
            (
                (0..n).map(group).collect::<Vec<_>>(),
                Just(around.then(|| Utc.timestamp_opt(1_764_000_100, 0).unwrap())),
            )
        })
        .prop_map(|(identities, around)| LookupResult {
            around,
            lookback_days: 30,
            // A request cut by identity.max_per_request names how many were left out.
            not_looked_up: if identities.len() % 3 == 0 { 1_990 } else { 0 },
            identities,
        })
}

fn summary_job(url: &str) -> SummaryJob {
    SummaryJob {
        session: SessionId::new("5191865402245120:4000000000000003").unwrap(),
        url: Some(url.to_owned()),
        around: None,
        requester: Requester::default(),
        reply: ReplyTo::nowhere(),
    }
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key].as_str().unwrap_or_default()
}

/// Every `&` starts one of `entities`.
fn entities_whole(text: &str, entities: &[&str]) -> bool {
    text.match_indices('&')
        .all(|(at, _)| entities.iter().any(|e| text[at + 1..].starts_with(e)))
}

/// Slack: mrkdwn text escaped (no live `<!…>`, `<http…|…>` from outside, no broken entity) and within
/// its limit.
fn check_slack_mrkdwn(text: &str, max: usize) -> Result<(), TestCaseError> {
    prop_assert!(len(text) <= max, "{} > {max}", len(text));
    prop_assert!(
        !text.contains("<!channel>") && !text.contains("<!here"),
        "{text}"
    );
    prop_assert!(!text.contains("<https://evil"), "{text}");
    prop_assert!(!text.contains("<@U123>"), "{text}");
    prop_assert!(entities_whole(text, &["amp;", "lt;", "gt;"]), "{text}");
    Ok(())
}

fn check_slack_button(button: &Value) -> Result<(), TestCaseError> {
    prop_assert!(len(text(&button["text"], "text")) <= 75);
    prop_assert!(len(text(button, "url")) <= 3000);
    prop_assert!(len(text(button, "value")) <= 2000);
    prop_assert!(len(text(button, "action_id")) <= 255);
    prop_assert!(!text(button, "value").contains('@'), "no email in a value");
    Ok(())
}

fn check_slack(message: &slack::render::Message) -> Result<(), TestCaseError> {
    let value = serde_json::to_value(message).unwrap();
    check_slack_mrkdwn(text(&value, "text"), 4000)?;
    let blocks = value["blocks"].as_array().cloned().unwrap_or_default();
    prop_assert!(blocks.len() <= 50, "{} blocks", blocks.len());
    for block in &blocks {
        match text(block, "type") {
            "section" => {
                check_slack_mrkdwn(text(&block["text"], "text"), 3000)?;
                if !block["accessory"].is_null() {
                    check_slack_button(&block["accessory"])?;
                }
            }
            "header" => prop_assert!(len(text(&block["text"], "text")) <= 150),
            "context" => {
                let elements = block["elements"].as_array().unwrap();
                prop_assert!(elements.len() <= 10);
                for element in elements {
                    check_slack_mrkdwn(text(element, "text"), 3000)?;
                }
            }
            "actions" => {
                let elements = block["elements"].as_array().unwrap();
                prop_assert!(elements.len() <= 25);
                for button in elements {
                    check_slack_button(button)?;
                }
            }
            other => prop_assert!(false, "unexpected block {other}"),
        }
    }
    Ok(())
}

/// Discord: every limit of one message, and `allowed_mentions` suppressing every ping.
fn check_discord(message: &Value) -> Result<(), TestCaseError> {
    prop_assert_eq!(&message["allowed_mentions"]["parse"], &json!([]));
    prop_assert!(len(text(message, "content")) <= 2000);
    let embeds = message["embeds"].as_array().cloned().unwrap_or_default();
    prop_assert!(embeds.len() <= 10);
    let mut total = 0;
    for embed in &embeds {
        let title = len(text(embed, "title"));
        let description = len(text(embed, "description"));
        let footer = len(text(&embed["footer"], "text"));
        prop_assert!(title <= 256 && description <= 4096 && footer <= 2048);
        total += title + description + footer + len(text(&embed["author"], "name"));
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        prop_assert!(fields.len() <= 25);
        for field in &fields {
            let (name, value) = (text(field, "name"), text(field, "value"));
            prop_assert!(len(name) <= 256 && len(value) <= 1024);
            // What FullStory wrote cannot make a masked link or a mention.
            prop_assert!(
                !value.contains("[link](") && !value.contains("<@U123>"),
                "{value}"
            );
            total += len(name) + len(value);
        }
    }
    prop_assert!(total <= 6000, "{total} characters in the embeds");
    let rows = message["components"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    prop_assert!(rows.len() <= 5);
    for row in &rows {
        let buttons = row["components"].as_array().unwrap();
        prop_assert!(buttons.len() <= 5);
        for button in buttons {
            prop_assert!(len(text(button, "label")) <= 80);
            prop_assert!(len(text(button, "custom_id")) <= 100);
            prop_assert!(len(text(button, "url")) <= 512);
        }
    }
    Ok(())
}

/// Zendesk: the note's size, and HTML whose every entity is whole and no outside markup is live.
fn check_zendesk(html: &str, is_html: bool) -> Result<(), TestCaseError> {
    prop_assert!(
        html.len() <= zendesk::render::MAX_NOTE_BYTES,
        "{} bytes",
        html.len()
    );
    if is_html {
        prop_assert!(!html.contains("<script>") && !html.contains("<https://evil"));
        prop_assert!(
            entities_whole(html, &["amp;", "lt;", "gt;", "quot;", "#39;"]),
            "a broken entity"
        );
    }
    Ok(())
}

/// Intercom: a canvas's `content` and `stored_data` each within 64 KB, and no text from outside making
/// a Markdown link.
fn check_intercom(canvas: &Value) -> Result<(), TestCaseError> {
    let content = canvas["canvas"]["content"].to_string().len();
    prop_assert!(
        content <= intercom::render::MAX_CONTENT_BYTES,
        "{content} bytes"
    );
    let stored = canvas["canvas"]["stored_data"].to_string().len();
    prop_assert!(stored <= 64_000, "{stored} bytes of stored_data");
    for component in canvas["canvas"]["content"]["components"]
        .as_array()
        .unwrap()
    {
        let words = text(component, "text");
        prop_assert!(
            !words.contains("[link](") && !words.contains("<script>"),
            "{words}"
        );
    }
    Ok(())
}

/// The largest state a canvas stores: every id at its longest, a replay URL at the link limit.
fn largest_stored() -> Value {
    let id = "9".repeat(200);
    intercom::stored::seal(
        &intercom::stored::State {
            v: 1,
            workspace: id.clone(),
            conversation: Some(id.clone()),
            contact: Some(id.clone()),
            likely: Some(intercom::stored::Likely {
                id: id.clone(),
                url: Some("h".repeat(intercom::render::MAX_URL_BYTES)),
            }),
            around: Some(i64::MAX),
            drawn: i64::MAX,
        },
        "secret",
    )
}

const MARKER: &str = "rd-42-answer-9f3a01c2";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn every_answer_on_every_platform_is_within_its_limits_and_escaped(
        result in result(),
        outcome in summary(),
        summary_url in url(),
    ) {
        let job = crate::render::test_job(&result);
        let answer = Answer::Sessions { job: &job, result: &result };
        let asked = summary_job(&summary_url);
        let outcome = outcome.unwrap_or_else(|| SummaryOutcome::Ready("Tried to pay.".into()));
        let summary = Answer::Summary { job: &asked, outcome: &outcome };

        for options in [
            slack::render::Options { share: Some(42), summarize: true, escalate: Some(42) },
            slack::render::Options::default(),
        ] {
            check_slack(&slack::render::sessions(&result, options))?;
        }
        check_slack(&slack::render::summary(&asked, &outcome))?;
        check_slack(&slack::render::plain(&answer))?;
        check_slack(&slack::render::plain(&summary))?;

        let json = |v: serenity::builder::EditInteractionResponse| serde_json::to_value(v).unwrap();
        for summaries in [true, false] {
            check_discord(&json(discord::render::sessions(&result, summaries, Some((42, &crate::escalate::Tracker::ALL)), MARKER)))?;
        }
        check_discord(&json(discord::render::summary(&asked, &outcome, MARKER)))?;
        check_discord(&json(discord::render::plain(&answer, MARKER)))?;
        check_discord(&json(discord::render::plain(&summary, MARKER)))?;

        check_zendesk(&zendesk::render::sessions_note(&result, MARKER), true)?;
        check_zendesk(&zendesk::render::empty_note(&result, MARKER), true)?;
        check_zendesk(
            &zendesk::render::summary_note(Some(&summary_url), &outcome, MARKER),
            true,
        )?;
        let lines = zendesk::render::plain_lines(&answer);
        check_zendesk(&zendesk::render::plain_note(&lines, MARKER), false)?;

        use intercom::render::Button;
        let stored = largest_stored();
        // Every button a canvas can carry at once (both trackers on).
        let buttons = [
            Button::Summarize,
            Button::Digest,
            Button::Escalate(crate::escalate::Tracker::Linear),
            Button::Escalate(crate::escalate::Tracker::Jira),
            Button::AddNote,
            Button::Refresh,
        ];
        check_intercom(&intercom::render::sessions(&result, &buttons, &stored))?;
        check_intercom(&intercom::render::with_summary(&result, &outcome, &buttons, &stored))?;
        check_intercom(&intercom::render::message(&summary_url, "error", &buttons, &stored))?;
    }
}

/// Past the FullStory Activation budget (issue 24), every platform's answer still carries the session
/// and says why its digest is missing, in the words `render::digest_line` gives them.
#[test]
fn past_the_activation_budget_every_platform_says_why_the_digest_is_missing() {
    let line = "Digest skipped: FullStory Activation budget for this cycle used: 1,000 of 1,000; \
                resets 2027-01-01";
    let mut result = crate::render::sample::sample_result();
    let group = &mut result.identities[0];
    assert!(
        group.likely().is_some(),
        "the sample's first customer has a likely session"
    );
    group.digest = None;
    group.digest_skipped = Some(line.to_owned());
    // Each platform escapes its own way (Discord: `2027\-01\-01`): the words up to the date.
    let line =
        "Digest skipped: FullStory Activation budget for this cycle used: 1,000 of 1,000; resets";

    let slack = serde_json::to_string(&slack::render::sessions(
        &result,
        slack::render::Options::default(),
    ))
    .unwrap();
    assert!(slack.contains(line), "{slack}");
    let discord =
        serde_json::to_string(&discord::render::sessions(&result, true, None, MARKER)).unwrap();
    assert!(discord.contains(line), "{discord}");
    let zendesk = zendesk::render::sessions_note(&result, MARKER);
    assert!(zendesk.contains(line), "{zendesk}");
}
