//! `replaydesk zendesk setup`, `replaydesk zendesk backfill` and `replaydesk zendesk app`.
//!
//! - `app --url https://host --out replaydesk.zip`: writes the ticket sidebar app's ZAF v2 package
//!   ([`super::app::package`]) for Admin Center's "Upload private app"; with `zendesk.app_id` and an
//!   API credential it also fetches the uploaded app's public key and prints the
//!   `zendesk.app_public_key` line to set.
//! - `setup --url https://host`: prints the webhook and the two triggers (ticket created; requester
//!   replied publicly), plus the erasure trigger (the ticket has `privacy.zendesk_erasure_tag`) when
//!   that key is set, as the JSON the Zendesk API takes, with the recommended body template. With
//!   `--apply` it creates them (`POST /api/v2/webhooks`, then `POST /api/v2/triggers` for each, pointing at
//!   the new webhook), reads the webhook's signing secret (`GET /api/v2/webhooks/{id}/signing_secret`)
//!   and prints it for `zendesk.webhook_secret`. Needs an admin's API credential.
//! - `backfill --since DATE`: lists the tickets created since DATE (Zendesk's cursor-based incremental
//!   export, requesters sideloaded or read by id), and sends a "Support Ticket Created" event per ticket
//!   to FullStory through batch imports of at most 50,000 events, polling each import until it is
//!   finished, with a progress line per step (and `done/total` on stderr while it checks which
//!   tickets were sent before). Tickets whose event was already sent (live or by an earlier
//!   backfill: the ticket's `fullstory-event` claim) are skipped.
//!
//!   **A batch is never sent twice.** As soon as FullStory accepts a batch, before any polling, the
//!   store records its import job id (the claim `job:<id>` in scope [`BATCHES`]) and every ticket in it
//!   as sent (its `fullstory-event` claim, owner `backfill:<id>`): both backends, one record each. A
//!   run interrupted while polling (Ctrl-C, a crash, FullStory unreachable) leaves the job recorded
//!   but not finished (no `done:<id>`); the next run first resumes polling every such job, then sends
//!   only tickets no batch holds. The batch request carries an `Idempotency-Key` made from its body, so
//!   even a crash between FullStory's answer and our record makes no second import. Status reads are
//!   lenient: `GET /v2/events/batch/{id}` is in FullStory's docs but not in the seed OpenAPI, and a
//!   404 there means "accepted; status not available here", reported and not a failure. An import
//!   FullStory marks FAILED is reported with its job id (exit 1) and is not re-sent automatically: its
//!   failures may be partial, and re-sending would duplicate the events it did import.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{
    api::{ExportFrom, Ticket, TicketWithUsers, User, ZdError, ZendeskApi},
    job::{EVENT_ITEM, fullstory_uid, ticket_event},
    payload::{ERASURE_TEMPLATE, RECOMMENDED_TEMPLATE},
    reply::ticket_scope,
};
use crate::{
    app::App,
    clock::Clock,
    config::{Config, parse_duration},
    console::{Failure, progress::Progress},
    fullstory::server_api::{BatchKind, BatchProgress, BatchStatus, MAX_BATCH},
    metrics::UpstreamMetrics,
};

#[derive(Debug, Subcommand)]
pub enum ZendeskCommand {
    /// Print the webhook and triggers that send tickets to replaydesk; --apply creates them.
    Setup(SetupArgs),
    /// Send "Support Ticket Created" events to FullStory for past tickets (batch imports).
    Backfill(BackfillArgs),
    /// Write the ticket sidebar app (a ZAF v2 zip to upload as a private app); with zendesk.app_id,
    /// print its public key for zendesk.app_public_key.
    App(AppArgs),
}

#[derive(Debug, Args)]
pub struct AppArgs {
    /// replaydesk's public base URL, e.g. https://replaydesk.example.com (default: server.public_url).
    #[arg(long)]
    pub url: Option<String>,
    /// Where to write the zip.
    #[arg(long, default_value = "replaydesk.zip")]
    pub out: std::path::PathBuf,
    /// The manifest's author name.
    #[arg(long, default_value = "replaydesk")]
    pub author_name: String,
    /// The manifest's author email (default: zendesk.email, else replaydesk@ the --url host).
    #[arg(long)]
    pub author_email: Option<String>,
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// replaydesk's public base URL, e.g. https://replaydesk.example.com (default: server.public_url).
    #[arg(long)]
    pub url: Option<String>,
    /// Create the webhook and the triggers through the Zendesk API and print the signing secret.
    #[arg(long)]
    pub apply: bool,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Tickets created on or after this day (2026-01-31, UTC) or moment (RFC 3339).
    #[arg(long, value_parser = parse_since)]
    pub since: DateTime<Utc>,
    /// Events per batch import (at most 50,000).
    #[arg(long, default_value_t = 50_000, value_parser = clap::value_parser!(u32).range(1..=50_000))]
    pub batch_size: u32,
    /// How often a running batch import's status is read.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub poll_interval: Duration,
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(day) = NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("`{text}` is not a date like 2026-01-31 or 2026-01-31T09:00:00Z"))
}

pub async fn run(command: ZendeskCommand, config: Config) -> Result<(), Failure> {
    match command {
        ZendeskCommand::Setup(args) => setup(config, args).await,
        ZendeskCommand::Backfill(args) => backfill(config, args).await,
        ZendeskCommand::App(args) => app(config, args).await,
    }
}

/// The webhook the triggers call.
pub fn webhook_json(endpoint: &str) -> Value {
    json!({
        "webhook": {
            "name": "replaydesk",
            "description": "Session replays for new tickets and requester replies (replaydesk)",
            "status": "active",
            "endpoint": endpoint,
            "http_method": "POST",
            "request_format": "json",
            "subscriptions": ["conditional_ticket_events"],
        }
    })
}

/// The triggers: a ticket is created; the requester adds a public comment; and, when
/// `privacy.zendesk_erasure_tag` is set, a ticket is updated with that tag ([`erasure_trigger_json`]).
pub fn triggers_json(webhook_id: &str, erasure_tag: Option<&str>) -> Vec<Value> {
    let mut triggers = lookup_triggers_json(webhook_id);
    triggers.extend(erasure_tag.map(|tag| erasure_trigger_json(webhook_id, tag)));
    triggers
}

/// The erasure trigger: an update leaves the ticket with the erasure tag (an agent added it) → the
/// webhook, with the ticket's tags in the body ([`ERASURE_TEMPLATE`]). It fires again on later updates
/// of a tagged ticket; replaydesk erases once per ticket, so those deliveries change nothing.
pub fn erasure_trigger_json(webhook_id: &str, tag: &str) -> Value {
    json!({
        "trigger": {
            "title": "replaydesk: erase the requester",
            "description": "Erases the requester from FullStory, Heap and replaydesk; the receipt comes as an internal note.",
            "active": true,
            "conditions": {
                "all": [
                    { "field": "update_type", "operator": "is", "value": "Change" },
                    { "field": "current_tags", "operator": "includes", "value": tag },
                ],
                "any": [],
            },
            "actions": [{
                "field": "notification_webhook",
                "value": [webhook_id, ERASURE_TEMPLATE],
            }],
        }
    })
}

/// The two lookup triggers: a ticket is created; the requester adds a public comment.
fn lookup_triggers_json(webhook_id: &str) -> Vec<Value> {
    let action = json!([{
        "field": "notification_webhook",
        "value": [webhook_id, RECOMMENDED_TEMPLATE],
    }]);
    vec![
        json!({
            "trigger": {
                "title": "replaydesk: ticket created",
                "description": "Adds an internal note with the requester's session replays.",
                "active": true,
                "conditions": {
                    "all": [{ "field": "update_type", "operator": "is", "value": "Create" }],
                    "any": [],
                },
                "actions": action,
            }
        }),
        json!({
            "trigger": {
                "title": "replaydesk: requester replied",
                "description": "Adds the requester's new session replays (never one already on the ticket).",
                "active": true,
                "conditions": {
                    "all": [
                        { "field": "update_type", "operator": "is", "value": "Change" },
                        { "field": "role", "operator": "is", "value": "end_user" },
                        { "field": "comment_is_public", "operator": "is", "value": "true" },
                    ],
                    "any": [],
                },
                "actions": action,
            }
        }),
    ]
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn api(config: &Config, metrics: UpstreamMetrics) -> Result<ZendeskApi, Failure> {
    ZendeskApi::from_config(&config.zendesk, metrics).map_err(|e| Failure::usage(e.to_string()))
}

fn zendesk_failure(step: &str) -> impl Fn(ZdError) -> Failure + '_ {
    move |error| Failure::failed(format!("{step}: {error}"))
}

/// `--url`, else `server.public_url`, as an http(s) URL.
fn public_url(config: &Config, url: Option<String>) -> Result<reqwest::Url, Failure> {
    let url = url
        .or_else(|| config.server.public_url.clone())
        .ok_or_else(|| {
            Failure::usage("give --url https://your-replaydesk-host (or set server.public_url)")
        })?;
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(u),
        _ => Err(Failure::usage(format!(
            "--url `{url}` is not an http(s) URL"
        ))),
    }
}

async fn app(config: Config, args: AppArgs) -> Result<(), Failure> {
    let url = public_url(&config, args.url)?;
    let base = url.as_str().trim_end_matches('/').to_owned();
    let email = args
        .author_email
        .or_else(|| config.zendesk.email.clone())
        .unwrap_or_else(|| format!("replaydesk@{}", url.host_str().unwrap_or("localhost")));
    let zip = super::app::package::zip(&base, &args.author_name, &email);
    std::fs::write(&args.out, &zip)
        .map_err(|e| Failure::failed(format!("could not write {}: {e}", args.out.display())))?;
    println!(
        "wrote {} ({} bytes): the ticket sidebar app, loading {base}/zendesk/app",
        args.out.display(),
        zip.len()
    );
    println!(
        "Upload it in Admin Center: Apps and integrations > Apps > Zendesk Support apps > Upload private app."
    );
    let credentials = config.zendesk.api_token.is_set() || config.zendesk.oauth_token.is_set();
    match (&config.zendesk.app_id, credentials) {
        (Some(app_id), true) => {
            let pem = api(&config, UpstreamMetrics::default())?
                .app_public_key(app_id)
                .await
                .map_err(zendesk_failure("reading the app's public key"))?;
            println!();
            println!("Put the app's public key in the configuration, then restart replaydesk:");
            println!("[zendesk]");
            println!("app_public_key = \"\"\"\n{pem}\"\"\"");
        }
        _ => {
            println!(
                "Then set zendesk.app_id to the uploaded app's id and run this again to print its public key \
                 for zendesk.app_public_key (or: curl https://SUBDOMAIN.zendesk.com/api/v2/apps/APP_ID/public_key.pem)."
            );
        }
    }
    Ok(())
}

async fn setup(config: Config, args: SetupArgs) -> Result<(), Failure> {
    let url = public_url(&config, args.url)?
        .as_str()
        .trim_end_matches('/')
        .to_owned();
    let endpoint = format!("{}/zendesk/webhook", url.trim_end_matches('/'));
    let webhook = webhook_json(&endpoint);
    let erasure_tag = config
        .privacy
        .zendesk_erasure_tag
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if !args.apply {
        println!(
            "# 1. The webhook (POST /api/v2/webhooks, or Admin Center > Apps and integrations > Webhooks):"
        );
        println!("{}", pretty(&webhook));
        println!();
        println!(
            "# 2. The triggers (POST /api/v2/triggers), with WEBHOOK_ID replaced by the webhook's id:"
        );
        for trigger in triggers_json("WEBHOOK_ID", erasure_tag) {
            println!("{}", pretty(&trigger));
        }
        println!();
        println!(
            "# The body the lookup triggers send (in Admin Center: the action \"Notify by > Active webhook\"):"
        );
        println!("{RECOMMENDED_TEMPLATE}");
        if let Some(tag) = erasure_tag {
            println!();
            println!("# The body the erasure trigger sends (tags include {tag}):");
            println!("{ERASURE_TEMPLATE}");
        }
        println!();
        println!("# 3. Put the webhook's signing secret in zendesk.webhook_secret");
        println!("#    (Admin Center > Webhooks > replaydesk > Reveal secret).");
        println!("# Or run again with --apply to create all of this and print the secret.");
        println!(
            "# The ticket sidebar app: `replaydesk zendesk app --url {url}` writes it (upload it as a private app)."
        );
        return Ok(());
    }
    let api = api(&config, UpstreamMetrics::default())?;
    let webhook_id = api
        .create_webhook(&webhook)
        .await
        .map_err(zendesk_failure("creating the webhook"))?;
    println!("created webhook {webhook_id} -> {endpoint}");
    for trigger in triggers_json(&webhook_id, erasure_tag) {
        let title = trigger["trigger"]["title"].as_str().unwrap_or("trigger");
        let id = api.create_trigger(&trigger).await.map_err(|e| {
            Failure::failed(format!(
                "creating the trigger \"{title}\": {e} (webhook {webhook_id} exists already)"
            ))
        })?;
        println!("created trigger {id}: {title}");
    }
    let secret = api
        .webhook_signing_secret(&webhook_id)
        .await
        .map_err(zendesk_failure("reading the webhook's signing secret"))?;
    println!();
    println!("Put this signing secret in the configuration, then restart replaydesk:");
    println!("[zendesk]");
    println!("webhook_secret = \"{secret}\"");
    println!("(or REPLAYDESK_ZENDESK__WEBHOOK_SECRET={secret})");
    println!();
    println!(
        "The ticket sidebar app: `replaydesk zendesk app --url {url}` writes it (upload it as a private app)."
    );
    Ok(())
}

async fn backfill(config: Config, args: BackfillArgs) -> Result<(), Failure> {
    if !config.fullstory.api_key.is_set() {
        return Err(Failure::usage(
            "fullstory.api_key is not set: the events go to FullStory",
        ));
    }
    let app = App::build(config, Clock::system()).await?;
    let api = api(&app.config, app.metrics.upstream.clone())?;
    let since = args.since;
    resume_imports(&app, args.poll_interval).await?;

    let mut tickets: Vec<Ticket> = Vec::new();
    let mut users: HashMap<u64, User> = HashMap::new();
    let mut from = ExportFrom::Start(since);
    loop {
        let page = api
            .export_tickets(&from)
            .await
            .map_err(zendesk_failure("listing tickets"))?;
        users.extend(page.users.into_iter().map(|u| (u.id, u)));
        for ticket in page.tickets {
            let wanted = ticket.status.as_deref() != Some("deleted")
                && ticket.created().is_some_and(|t| t >= since)
                && !tickets.iter().any(|t| t.id == ticket.id);
            if wanted {
                tickets.push(ticket);
            }
        }
        println!("listed {} tickets created since {since}", tickets.len());
        match page.after_cursor {
            Some(cursor) if !page.end_of_stream => from = ExportFrom::Cursor(cursor),
            _ => break,
        }
    }
    let mut already = 0usize;
    let mut unsent = Vec::with_capacity(tickets.len());
    let mut checked = Progress::new("tickets checked for an event already sent", tickets.len());
    for ticket in tickets {
        checked.advance(1);
        let claims = app.store.claimed_items(&ticket_scope(ticket.id)).await?;
        if claims.iter().any(|c| c.item == EVENT_ITEM) {
            already += 1;
        } else {
            unsent.push(ticket);
        }
    }
    let tickets = unsent;
    let mut missing: Vec<u64> = tickets
        .iter()
        .filter_map(|t| t.requester_id)
        .filter(|id| !users.contains_key(id))
        .collect();
    missing.sort_unstable();
    missing.dedup();
    if !missing.is_empty() {
        let read = api
            .users(&missing)
            .await
            .map_err(zendesk_failure("reading requesters"))?;
        users.extend(read.into_iter().map(|u| (u.id, u)));
    }

    let mut anonymous = 0usize;
    let mut pending: Vec<(u64, Value)> = Vec::new();
    for ticket in tickets {
        let requester = ticket.requester_id.and_then(|id| users.get(&id));
        let Some(uid) = requester.and_then(fullstory_uid) else {
            anonymous += 1;
            continue;
        };
        let id = ticket.id;
        let link = api.ticket_link(id);
        let with_users = TicketWithUsers {
            ticket,
            users: Vec::new(),
        };
        pending.push((id, ticket_event(&with_users, uid, &link).to_json()));
    }
    println!(
        "{} to send ({already} already sent, {anonymous} without a customer requester)",
        events(pending.len())
    );
    let size = usize::try_from(args.batch_size)
        .unwrap_or(MAX_BATCH)
        .clamp(1, MAX_BATCH);
    let batches = pending.len().div_ceil(size);
    let mut sent = 0;
    for (n, chunk) in pending.chunks(size).enumerate() {
        let label = format!("batch {}/{batches}", n + 1);
        let records: Vec<Value> = chunk.iter().map(|(_, event)| event.clone()).collect();
        let job = app
            .fullstory
            .batch_import(BatchKind::Events, records)
            .await
            .map_err(|e| Failure::failed(format!("{label}: {e}")))?;
        // Recorded before polling: a re-run resumes this job and never sends these tickets again.
        let owner = format!("backfill:{}", job.id);
        let now = app.clock.now();
        app.store
            .claim_items(BATCHES, "backfill", &[format!("job:{}", job.id)], None, now)
            .await?;
        for (ticket, _) in chunk {
            app.store
                .claim_items(
                    &ticket_scope(*ticket),
                    &owner,
                    &[EVENT_ITEM.to_owned()],
                    None,
                    now,
                )
                .await?;
        }
        sent += chunk.len();
        println!(
            "{label}: {} ({sent}/{} sent with it), import job {} {}",
            events(chunk.len()),
            pending.len(),
            job.id,
            status_word(job.status)
        );
        wait_for_import(&app, &label, &job.id, job.status, args.poll_interval).await?;
    }
    println!("done: {} sent to FullStory", events(sent));
    Ok(())
}

/// Where the backfill records its batch imports: `job:<id>` once FullStory accepted one, `done:<id>`
/// once it finished (or its status cannot be read).
const BATCHES: &str = "fullstory-backfill";

/// Polls every import an earlier run submitted and did not see finish.
async fn resume_imports(app: &App, poll_interval: Duration) -> Result<(), Failure> {
    let claims = app.store.claimed_items(BATCHES).await?;
    let done: Vec<&str> = claims
        .iter()
        .filter_map(|c| c.item.strip_prefix("done:"))
        .collect();
    for id in claims.iter().filter_map(|c| c.item.strip_prefix("job:")) {
        if !done.contains(&id) {
            let label = format!("import job {id} (sent by an earlier run)");
            println!("{label}: resuming");
            wait_for_import(app, &label, id, BatchStatus::Pending, poll_interval).await?;
        }
    }
    Ok(())
}

/// Polls one import until it is finished (or its status cannot be read) and records it as done.
/// A FAILED import is an error naming it; its tickets stay recorded as sent (see the module doc).
async fn wait_for_import(
    app: &App,
    label: &str,
    id: &str,
    mut status: BatchStatus,
    poll_interval: Duration,
) -> Result<(), Failure> {
    while !status.is_finished() {
        tokio::time::sleep(poll_interval).await;
        let progress = app
            .fullstory
            .batch_status(BatchKind::Events, id)
            .await
            .map_err(|e| {
                Failure::failed(format!(
                    "{label}: reading the import's status: {e}; the import is recorded, run the \
                     same command again to resume it (nothing is sent twice)"
                ))
            })?;
        match progress {
            BatchProgress::Known(job) if job.status != status => {
                println!("{label}: {}", status_word(job.status));
                status = job.status;
            }
            BatchProgress::Known(_) => {}
            BatchProgress::Unreadable => {
                println!(
                    "{label}: accepted; its status is not available here (FullStory answered 404), \
                     check import job {id} in FullStory"
                );
                break;
            }
        }
    }
    app.store
        .claim_items(
            BATCHES,
            "backfill",
            &[format!("done:{id}")],
            None,
            app.clock.now(),
        )
        .await?;
    if status == BatchStatus::Failed {
        return Err(Failure::failed(format!(
            "{label}: import job {id} failed at FullStory; its events are not sent again \
             (a failed import may have imported some of them): see the job's errors in FullStory"
        )));
    }
    Ok(())
}

fn events(n: usize) -> String {
    format!("{n} event{}", if n == 1 { "" } else { "s" })
}

fn status_word(status: BatchStatus) -> &'static str {
    match status {
        BatchStatus::Pending => "pending",
        BatchStatus::Processing => "processing",
        BatchStatus::Completed => "completed",
        BatchStatus::Failed => "failed",
        BatchStatus::Unknown => "in an unknown state",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_day_or_a_moment() {
        assert_eq!(
            parse_since("2026-01-31").unwrap().to_rfc3339(),
            "2026-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_since("2026-01-31T09:30:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-01-31T08:30:00+00:00"
        );
        assert!(parse_since("last week").is_err());
    }

    #[test]
    fn the_setup_json_is_what_the_zendesk_api_takes() {
        insta::assert_snapshot!(pretty(&webhook_json(
            "https://rd.example.com/zendesk/webhook"
        )));
        let triggers: Vec<Value> = triggers_json("01HWEBHOOK", None);
        insta::assert_snapshot!(pretty(&Value::Array(triggers)));
    }

    #[test]
    fn with_an_erasure_tag_setup_adds_the_erasure_trigger() {
        let triggers = triggers_json("01HWEBHOOK", Some("gdpr_erase"));
        assert_eq!(triggers.len(), 3);
        assert_eq!(
            triggers[2],
            erasure_trigger_json("01HWEBHOOK", "gdpr_erase")
        );
        insta::assert_snapshot!(pretty(&triggers[2]));
    }
}
