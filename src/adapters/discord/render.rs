//! Discord's shape of an answer: pure functions from a lookup result (or a summary, a delay, a failure)
//! to the JSON of an interaction response or of an edit of `@original`, built with serenity's builders
//! and snapshot-tested. The words come from [`crate::render`]; only the layout is Discord's.
//!
//! Every message is within Discord's limits by construction (10 embeds, 6,000 characters across their
//! titles, descriptions, fields and footers, 4,096 per description, 1,024 per field, 5 rows of 5
//! buttons, 80-character labels, 100-character `custom_id`s, 512-character link URLs, 2,000 characters
//! of `content`), cut with [`crate::render::limits`] after [`escape`]; every message says
//! `allowed_mentions: {"parse": []}`. A session whose URL is too long for a link shows its id instead.
//!
//! A sessions answer is one embed per identity (Discord allows 10 per message, 6,000 characters in all):
//! its title says whose sessions they are, each session is a line with its start as `<t:UNIX:f>` (shown in
//! the reader's own time zone) and a link to the replay, the likely one marked with its digest line below.
//! Under the embeds, link buttons (style 5) open each replay (5 per row; up to 4 rows, or 5 when there is
//! no Summarize button), and a Summarize button (style 1) per likely session asks for FullStory's AI
//! summary. Its `custom_id` carries what the summary job needs: `rd:sum:<session id>:<unix time or ->`,
//! at most 100 characters (Discord's limit; a longer one leaves the button out).
//!
//! Every edited message carries the effect ledger's marker in its last embed's footer (`ref …`), so a
//! retried job can see that its edit already landed (see `reply.rs`).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use serenity::{
    builder::{
        CreateActionRow, CreateAllowedMentions, CreateButton, CreateEmbed, CreateEmbedFooter,
        CreateInteractionResponse, CreateInteractionResponseMessage, EditInteractionResponse,
    },
    model::application::ButtonStyle,
};

use crate::{
    answer::{Answer, SummaryJob},
    escalate::Tracker,
    fullstory::SessionId,
    lookup::{IdentityResult, LookupResult, SummaryOutcome},
    render::{
        self, LIKELY,
        limits::{Lines, cut, len},
    },
};

/// Discord's limits (discord.com/developers/docs/resources/message#embed-object-embed-limits).
const MAX_EMBEDS: usize = 10;
const MAX_TITLE: usize = 256;
const MAX_DESCRIPTION: usize = 4096;
const MAX_FIELD_VALUE: usize = 1024;
const MAX_FOOTER: usize = 2048;
/// Titles, descriptions, field names and values, footers and authors of all embeds together.
const MAX_TOTAL: usize = 6000;
/// A message's `content`.
const MAX_CONTENT: usize = 2000;
/// Room kept for the "… and N more" line.
const MORE_RESERVE: usize = 24;
const MAX_CUSTOM_ID: usize = 100;
const MAX_URL: usize = 512;
const BUTTONS_PER_ROW: usize = 5;
const MAX_ROWS: usize = 5;

const BLURPLE: u32 = 0x0058_65F2;
const AMBER: u32 = 0x00F0_B232;
const RED: u32 = 0x00DA_373C;

/// The prefix of our Summarize buttons' `custom_id`.
const SUMMARIZE_PREFIX: &str = "rd:sum:";

/// The title of an AI summary.
pub const SUMMARY_TITLE: &str = "FullStory AI summary";

/// How to use the commands (Discord's option syntax).
pub fn usage() -> String {
    "Usage: `/replays email:jane@acme.com` (several emails work too, or `uid:12345`; set `summary:True` \
     for FullStory's AI summary of the likely session, `digest:True` for its digest). Or right-click a message → Apps → \
     **Find replays**."
        .to_owned()
}

/// `PONG`: exactly `{"type":1}`.
pub fn pong() -> Value {
    json!({ "type": 1 })
}

/// `DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE`, ephemeral: "replaydesk is thinking…", seen only by the asker.
pub fn deferred() -> CreateInteractionResponse {
    CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(true))
}

/// `CHANNEL_MESSAGE_WITH_SOURCE`, ephemeral: an answer at once (a refusal, how to use the command).
pub fn ephemeral(text: &str) -> CreateInteractionResponse {
    CreateInteractionResponse::Message(
        CreateInteractionResponseMessage::new()
            .content(cut(text, MAX_CONTENT))
            .ephemeral(true)
            .allowed_mentions(CreateAllowedMentions::new()),
    )
}

/// The prefix of our Escalate buttons' and modals' `custom_id`.
const ESCALATE_PREFIX: &str = "rd:esc:";

/// Where an Escalate button sits: the tracker, the lookup job whose answer it is on, the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalateOrigin {
    pub tracker: Tracker,
    pub job: i64,
    pub session: SessionId,
}

/// An Escalate button's (and its modal's) `custom_id`: `rd:esc:<tracker>:<job>:<session>`; `None` when
/// it would be longer than Discord allows.
pub fn escalate_id(origin: &EscalateOrigin) -> Option<String> {
    let id = format!(
        "{ESCALATE_PREFIX}{}:{}:{}",
        origin.tracker.as_str(),
        origin.job,
        origin.session
    );
    (id.len() <= MAX_CUSTOM_ID).then_some(id)
}

/// Reads [`escalate_id`] back.
pub fn parse_escalate_id(custom_id: &str) -> Option<EscalateOrigin> {
    let rest = custom_id.strip_prefix(ESCALATE_PREFIX)?;
    let (tracker, rest) = rest.split_once(':')?;
    let (job, session) = rest.split_once(':')?;
    Some(EscalateOrigin {
        tracker: Tracker::parse(tracker)?,
        job: job.parse().ok()?,
        session: SessionId::new(session)?,
    })
}

/// `MODAL` (type 9): the Escalate form (title, note, an existing issue's key), Discord's limits kept
/// (title 45, labels 45, a short input 4,000).
pub fn escalate_modal(origin: &EscalateOrigin, custom_id: &str) -> Value {
    let input = |id: &str, label: &str, style: u8, max: u16| {
        json!({"type": 1, "components": [{
            "type": 4, "custom_id": id, "label": label, "style": style,
            "required": false, "max_length": max,
        }]})
    };
    json!({"type": 9, "data": {
        "custom_id": custom_id,
        "title": format!("Escalate to {}", origin.tracker.title()),
        "components": [
            input("title", "Title", 1, 254),
            input("note", "Note", 2, 2000),
            input("issue", "Existing issue (links it instead)", 1, 50),
        ],
    }})
}

/// The Summarize button's `custom_id`; `None` when it would be longer than Discord allows.
pub fn summarize_id(session: &SessionId, around: Option<DateTime<Utc>>) -> Option<String> {
    let around = around.map_or_else(|| "-".to_owned(), |t| t.timestamp().to_string());
    let id = format!("{SUMMARIZE_PREFIX}{session}:{around}");
    (id.len() <= MAX_CUSTOM_ID).then_some(id)
}

/// Reads [`summarize_id`] back.
pub fn parse_summarize_id(custom_id: &str) -> Option<(SessionId, Option<DateTime<Utc>>)> {
    let rest = custom_id.strip_prefix(SUMMARIZE_PREFIX)?;
    let (session, around) = rest.rsplit_once(':')?;
    let around = match around {
        "-" => None,
        seconds => Some(Utc.timestamp_opt(seconds.parse().ok()?, 0).single()?),
    };
    Some((SessionId::new(session)?, around))
}

/// The sessions answer. `summaries`: whether Summarize buttons may be offered (a profile is set).
///
/// Within Discord's 6,000 characters by construction: the footer and the titles are measured first,
/// and what is left is shared equally between the embeds; each embed gives at most half of its share to
/// a summary and the rest to its session lines, which stop with "… and N more" when full.
///
/// `escalate`: the lookup job whose answer this is and the trackers that are on: an Escalate button
/// per tracker on the first likely session (the command's invoker passed the permission gate, so
/// moderators see them).
pub fn sessions(
    result: &LookupResult,
    summaries: bool,
    escalate: Option<(i64, &[Tracker])>,
    marker: &str,
) -> EditInteractionResponse {
    let shown = &result.identities[..result.identities.len().min(MAX_EMBEDS)];
    let mut footer = String::new();
    if shown.iter().any(|group| group.likely().is_some()) {
        footer = format!("{LIKELY}: {}", render::likely_reason(result));
    }
    if result.identities.len() > shown.len() {
        if !footer.is_empty() {
            footer.push_str(" · ");
        }
        footer.push_str(&format!(
            "{} more not shown",
            result.identities.len() - shown.len()
        ));
    }
    if let Some(line) = render::not_looked_up(result) {
        if !footer.is_empty() {
            footer.push_str(" · ");
        }
        footer.push_str(&line);
    }
    let titles: Vec<String> = shown
        .iter()
        .map(|group| cut(&escape(&render::sessions_heading(group)), MAX_TITLE))
        .collect();
    let fixed = len(&footer_text(&footer, marker)) + titles.iter().map(|t| len(t)).sum::<usize>();
    let share = MAX_TOTAL.saturating_sub(fixed) / shown.len().max(1);
    let mut buttons = Buttons::default();
    if let Some((job, trackers)) = escalate
        && let Some(likely) = shown.iter().find_map(|group| group.likely())
    {
        buttons.escalate = trackers
            .iter()
            .filter_map(|tracker| {
                let origin = EscalateOrigin {
                    tracker: *tracker,
                    job,
                    session: likely.id.clone(),
                };
                escalate_id(&origin).map(|id| {
                    CreateButton::new(id)
                        .label(format!("Escalate to {}", tracker.title()))
                        .style(ButtonStyle::Secondary)
                })
            })
            .collect();
    }
    let embeds = shown
        .iter()
        .zip(titles)
        .map(|(group, title)| identity_embed(group, result, summaries, title, share, &mut buttons))
        .collect();
    EditInteractionResponse::new()
        .embeds(with_marker(embeds, &footer, marker))
        .components(buttons.into_rows())
        .allowed_mentions(CreateAllowedMentions::new())
}

/// The buttons of a sessions answer, numbered across identities like the embeds' lines.
#[derive(Default)]
struct Buttons {
    numbered: usize,
    links: Vec<CreateButton>,
    summarize: Vec<CreateButton>,
    escalate: Vec<CreateButton>,
}

impl Buttons {
    /// Link rows first (up to 5, or 4 when there is a Summarize row), then the Summarize row.
    fn into_rows(mut self) -> Vec<CreateActionRow> {
        self.summarize.truncate(BUTTONS_PER_ROW);
        self.escalate.truncate(BUTTONS_PER_ROW);
        let link_rows = MAX_ROWS
            - usize::from(!self.summarize.is_empty())
            - usize::from(!self.escalate.is_empty());
        self.links.truncate(link_rows * BUTTONS_PER_ROW);
        let mut rows: Vec<CreateActionRow> = self
            .links
            .chunks(BUTTONS_PER_ROW)
            .map(|row| CreateActionRow::Buttons(row.to_vec()))
            .collect();
        if !self.summarize.is_empty() {
            rows.push(CreateActionRow::Buttons(self.summarize));
        }
        if !self.escalate.is_empty() {
            rows.push(CreateActionRow::Buttons(self.escalate));
        }
        rows
    }
}

/// One identity's embed in `share` characters (description and summary field; the title is counted
/// by the caller): a line per session as long as they fit, adding its buttons.
fn identity_embed(
    group: &IdentityResult,
    result: &LookupResult,
    summaries: bool,
    title: String,
    share: usize,
    buttons: &mut Buttons,
) -> CreateEmbed {
    let summary = summary_field(group, (share / 2).saturating_sub(len(SUMMARY_TITLE)));
    let went_wrong = went_wrong_field(
        group,
        (share / 4).saturating_sub(len(render::WENT_WRONG_HEADING)),
    );
    let field_used = summary
        .as_ref()
        .map_or(0, |value| len(SUMMARY_TITLE) + len(value))
        + went_wrong
            .as_ref()
            .map_or(0, |value| len(render::WENT_WRONG_HEADING) + len(value));
    let room = share.saturating_sub(field_used).min(MAX_DESCRIPTION);
    let mut lines = Lines::new(room, MORE_RESERVE, "\n");
    for session in &group.sessions {
        buttons.numbered += 1;
        let number = buttons.numbered;
        let mut line = format!("**{number}.** <t:{}:f>", session.created.timestamp());
        if let Some(url) = safe_url(&session.url) {
            line.push_str(&format!(" · [replay]({url})"));
            let label = if session.likely {
                format!("Replay {number} ({LIKELY})")
            } else {
                format!("Replay {number}")
            };
            buttons.links.push(CreateButton::new_link(url).label(label));
        } else {
            // A URL Discord cannot carry: the session id keeps the replay reachable.
            line.push_str(&format!(" · session {}", escape(session.id.as_str())));
        }
        if session.likely {
            line.push_str(&format!(" · **{LIKELY}**"));
            if let Some(digest) = render::digest_line(group) {
                line.push_str(&format!("\n↳ {}", escape(&digest)));
            }
            if summaries
                && !matches!(group.summary, Some(SummaryOutcome::Ready(_)))
                && let Some(id) = summarize_id(&session.id, result.around)
            {
                buttons.summarize.push(
                    CreateButton::new(id)
                        .label(format!("Summarize replay {number}"))
                        .style(ButtonStyle::Primary),
                );
            }
        }
        lines.push(line);
    }
    let description = if group.sessions.is_empty() {
        cut(
            &escape(&render::no_sessions(group, result.lookback_days)),
            room,
        )
    } else {
        lines.finish(|n| format!("… and {n} more"))
    };
    let mut embed = CreateEmbed::new()
        .title(title)
        .description(description)
        .colour(BLURPLE);
    if let Some(value) = went_wrong {
        embed = embed.field(render::WENT_WRONG_HEADING, value, false);
    }
    if let Some(summary) = summary {
        embed = embed.field(SUMMARY_TITLE, summary, false);
    }
    embed
}

/// The likely session's "what went wrong" lines as a field value within `room` characters (and a
/// field's 1,024); `None` when there is nothing to show or no room for it.
fn went_wrong_field(group: &IdentityResult, room: usize) -> Option<String> {
    let lines = render::went_wrong_lines(group);
    let room = room.min(MAX_FIELD_VALUE);
    if lines.is_empty() || room < 40 {
        return None;
    }
    let escaped: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    Some(cut(&escaped.join("\n"), room))
}

/// The answer to a Summarize button.
pub fn summary(
    job: &SummaryJob,
    outcome: &SummaryOutcome,
    marker: &str,
) -> EditInteractionResponse {
    let description = match outcome {
        SummaryOutcome::Ready(text) => cut(&escape(text), MAX_DESCRIPTION),
        SummaryOutcome::Unavailable(reason) => {
            cut(&format!("No summary: {}.", escape(reason)), MAX_DESCRIPTION)
        }
    };
    let mut embed = CreateEmbed::new()
        .title(SUMMARY_TITLE)
        .description(description)
        .colour(BLURPLE);
    let url = job.url.as_deref().and_then(safe_url);
    if let Some(url) = url {
        embed = embed.url(url);
    }
    let moment = job
        .around
        .map_or_else(String::new, |t| format!("up to <t:{}:f>", t.timestamp()));
    if !moment.is_empty() {
        embed = embed.field("Covers", moment, false);
    }
    let rows = url.map_or_else(Vec::new, |url| {
        vec![CreateActionRow::Buttons(vec![
            CreateButton::new_link(url).label("Replay"),
        ])]
    });
    EditInteractionResponse::new()
        .embeds(with_marker(vec![embed], "", marker))
        .components(rows)
        .allowed_mentions(CreateAllowedMentions::new())
}

/// The answer is late; it follows.
pub fn delayed(message: &str, marker: &str) -> EditInteractionResponse {
    let embed = CreateEmbed::new()
        .description(cut(message, MAX_DESCRIPTION))
        .colour(AMBER);
    EditInteractionResponse::new()
        .embeds(with_marker(vec![embed], "", marker))
        .components(Vec::new())
        .allowed_mentions(CreateAllowedMentions::new())
}

/// No answer will come.
pub fn failed(message: &str, reference: &str, marker: &str) -> EditInteractionResponse {
    let embed = CreateEmbed::new()
        .description(cut(message, MAX_DESCRIPTION))
        .field("Reference", cut(reference, MAX_FIELD_VALUE), false)
        .colour(RED);
    EditInteractionResponse::new()
        .embeds(with_marker(vec![embed], "", marker))
        .components(Vec::new())
        .allowed_mentions(CreateAllowedMentions::new())
}

/// The plain answer posted when Discord refused the rich one: `content` only (links, each in `<…>` so
/// Discord adds no preview), no embeds, no buttons, the ledger marker on its last line.
pub fn plain(answer: &Answer<'_>, marker: &str) -> EditInteractionResponse {
    let last = format!("ref {marker}");
    let mut lines = Lines::new(
        MAX_CONTENT.saturating_sub(len(&last) + 1),
        MORE_RESERVE,
        "\n",
    );
    for line in render::fallback_lines(answer, escape, |url| {
        safe_url(url).map(|url| format!("<{url}>"))
    }) {
        lines.push(cut(&line, MAX_CONTENT / 2));
    }
    let content = format!("{}\n{last}", lines.finish(|n| format!("… and {n} more")));
    EditInteractionResponse::new()
        .content(content)
        .embeds(Vec::new())
        .components(Vec::new())
        .allowed_mentions(CreateAllowedMentions::new())
}

/// The summary shown inside a sessions answer, when one was asked for, in at most `max` characters
/// (none when even a few words would not fit).
fn summary_field(group: &IdentityResult, max: usize) -> Option<String> {
    let text = match group.summary.as_ref()? {
        SummaryOutcome::Ready(text) => escape(text),
        SummaryOutcome::Unavailable(reason) => format!("No summary: {}.", escape(reason)),
    };
    let text = cut(&text, max.min(MAX_FIELD_VALUE));
    (len(&text) > 1).then_some(text)
}

/// The footer text carrying `footer` and the ledger marker.
fn footer_text(footer: &str, marker: &str) -> String {
    let text = if footer.is_empty() {
        format!("ref {marker}")
    } else {
        format!("{footer} · ref {marker}")
    };
    cut(&text, MAX_FOOTER)
}

/// Puts `footer` and the ledger marker in the last embed's footer.
fn with_marker(mut embeds: Vec<CreateEmbed>, footer: &str, marker: &str) -> Vec<CreateEmbed> {
    let text = footer_text(footer, marker);
    if let Some(last) = embeds.pop() {
        embeds.push(last.footer(CreateEmbedFooter::new(text)));
    }
    embeds
}

/// A URL fit for a link button and a markdown link: http(s), short enough, nothing that ends a link.
fn safe_url(url: &str) -> Option<&str> {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= MAX_URL
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '(' | ')' | '<' | '>'));
    ok.then_some(url)
}

/// Discord's one escaping, for every text we do not write ourselves (summaries, reasons, a uid that
/// may hold `*` or `_`): a backslash before each character Discord's markdown gives meaning to, so
/// `**`, `` ` ``, `||`, `[masked](links)`, `<@mentions>`, `<t:…>`, `# headings`, `> quotes` and
/// `- lists` show as typed. Pings are prevented separately (`allowed_mentions`).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '*' | '_' | '~' | '`' | '|' | '\\' | '[' | ']' | '(' | ')' | '<' | '>' | '#' | '-'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use insta::assert_json_snapshot;

    use super::*;
    use crate::{
        answer::ReplyTo,
        privacy::Requester,
        render::sample::{sample_result as result, session},
    };

    const MARKER: &str = "rd-42-answer-9f3a01c2";

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn json(value: impl serde::Serialize) -> Value {
        serde_json::to_value(value).unwrap()
    }

    #[test]
    fn a_sessions_answer_is_an_embed_per_identity_with_link_and_summarize_buttons() {
        assert_json_snapshot!(json(sessions(&result(), true, None, MARKER)));
    }

    #[test]
    fn a_ready_summary_is_shown_and_not_offered_again() {
        let mut result = result();
        result.around = None;
        result.identities[0].summary = Some(SummaryOutcome::Ready(
            "Tried to pay twice; the Pay button did not respond.".into(),
        ));
        let rendered = json(sessions(&result, true, None, MARKER));
        // What went wrong first, then the summary.
        assert_eq!(
            rendered["embeds"][0]["fields"][0]["name"],
            "What went wrong"
        );
        assert_eq!(
            rendered["embeds"][0]["fields"][1]["value"],
            "Tried to pay twice; the Pay button did not respond."
        );
        let buttons = rendered["components"].as_array().unwrap();
        assert!(
            buttons
                .iter()
                .flat_map(|row| row["components"].as_array().unwrap())
                .all(|b| b["style"] == 5),
            "{rendered}"
        );
        assert_eq!(
            rendered["embeds"][2]["footer"]["text"],
            "likely: the most recent · ref rd-42-answer-9f3a01c2"
        );
    }

    #[test]
    fn many_sessions_stay_within_discords_limits() {
        let mut result = result();
        result.identities[0].sessions = (0..60)
            .map(|i| {
                session(
                    &format!("5191865402245120:{i:016}"),
                    "2026-11-20T09:11:00Z",
                    i == 0,
                )
            })
            .collect();
        let rendered = json(sessions(&result, true, None, MARKER));
        let rows = rendered["components"].as_array().unwrap();
        assert_eq!(rows.len(), 5);
        assert!(
            rows.iter()
                .all(|r| r["components"].as_array().unwrap().len() <= 5)
        );
        assert_eq!(rows[4]["components"][0]["style"], 1);
        let total: usize = rendered["embeds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["description"].as_str().unwrap().chars().count())
            .sum();
        assert!(total <= MAX_TOTAL, "{total}");
        assert!(
            rendered["embeds"][0]["description"]
                .as_str()
                .unwrap()
                .ends_with("more")
        );
    }

    #[test]
    fn the_summary_delay_and_failure_answers() {
        let job = SummaryJob {
            session: SessionId::new("5191865402245120:4000000000000003").unwrap(),
            url: Some(
                "https://app.fullstory.com/ui/o-1/session/5191865402245120:4000000000000003".into(),
            ),
            around: Some(at("2026-11-24T14:05:00Z")),
            requester: Requester::default(),
            reply: ReplyTo::nowhere(),
        };
        assert_json_snapshot!(
            "summary",
            json(summary(
                &job,
                &SummaryOutcome::Ready("Tried to pay twice, then gave up.".into()),
                MARKER
            ))
        );
        assert_json_snapshot!(
            "delayed",
            json(delayed(
                "FullStory is busy: it asked replaydesk to wait about 5 minutes before asking again. The answer will follow here after that.",
                MARKER
            ))
        );
        assert_json_snapshot!(
            "failed",
            json(failed(
                crate::answer::TOO_LATE,
                "job 42 (an admin can run `replaydesk jobs retry 42`)",
                MARKER
            ))
        );
    }

    #[test]
    fn the_plain_fallback_is_content_with_the_links_only() {
        let result = result();
        let job = render::test_job(&result);
        let rendered = json(plain(
            &Answer::Sessions {
                job: &job,
                result: &result,
            },
            MARKER,
        ));
        assert_eq!(rendered["embeds"], json!([]));
        assert_json_snapshot!(rendered);
    }

    #[test]
    fn an_answer_without_sessions_does_not_explain_a_likely_session() {
        let mut result = result();
        result.identities[0].sessions.clear();
        let rendered = json(sessions(&result, true, None, MARKER));
        assert_eq!(
            rendered["embeds"][2]["footer"]["text"],
            "ref rd-42-answer-9f3a01c2"
        );
        assert_eq!(
            rendered["embeds"][0]["description"],
            "No sessions found for j•••@acme.com in the last 30 days."
        );
    }

    #[test]
    fn immediate_answers_are_ephemeral() {
        assert_eq!(pong(), json!({"type": 1}));
        assert_eq!(json(deferred())["type"], 5);
        assert_eq!(json(deferred())["data"]["flags"], 64);
        let refusal = json(ephemeral(crate::render::NOT_ALLOWED));
        assert_eq!(refusal["type"], 4);
        assert_eq!(refusal["data"]["flags"], 64);
        assert_eq!(refusal["data"]["content"], crate::render::NOT_ALLOWED);
    }

    #[test]
    fn summarize_ids_round_trip_and_stay_short() {
        let session = SessionId::new("5191865402245120:4000000000000003").unwrap();
        let around = Some(at("2026-11-24T14:05:00Z"));
        let id = summarize_id(&session, around).unwrap();
        assert_eq!(id, "rd:sum:5191865402245120:4000000000000003:1795529100");
        assert_eq!(parse_summarize_id(&id), Some((session.clone(), around)));
        let id = summarize_id(&session, None).unwrap();
        assert_eq!(parse_summarize_id(&id), Some((session, None)));
        let long = SessionId::new("x".repeat(95)).unwrap();
        assert_eq!(summarize_id(&long, None), None);
        assert_eq!(parse_summarize_id("rd:sum:"), None);
        assert_eq!(parse_summarize_id("other:1:2"), None);
        assert_eq!(parse_summarize_id("rd:sum:a:b:yesterday"), None);
    }
}
