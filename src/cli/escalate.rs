//! `replaydesk escalate EMAIL --to linear|jira [--title T] [--source URL] [--issue KEY] [--note N]
//! [--around RFC3339] [--json]`: escalates the customer's likely session to a tracker from a terminal
//! ([`crate::escalate`]), like the Escalate buttons do.
//!
//! The escalation is a queued job like theirs (a step that fails is retried by the queue, here or by a
//! running `serve`); this command works the queue until it is finished or waits for a tracker, then
//! prints the issue: "Escalated to Linear: LIN-123 <link>", or "Already escalated: LIN-123 <link>" when
//! the same source and session had been escalated before. `--source URL` names where it came from (the
//! ticket's or message's link): the same URL and session give one issue. Without it, the source is the
//! command line and the customer. `--issue KEY` links an existing issue instead of making one (only the
//! link to the session is added). Exit 0 when escalated, 1 when not (the tracker's refusal or wait is
//! said), 2 for a usage error.

use clap::Args;

use crate::console::{Failure, printable};
use crate::{
    clock::Clock,
    config::Config,
    escalate::{EscalateJob, Outcome, Source, Tracker, job::OUTCOME},
    identity::{Identity, parse_address},
    store::{EffectState, JobState},
};

#[derive(Debug, Args)]
pub struct EscalateArgs {
    /// The customer's email address.
    pub email: String,
    /// The tracker: linear or jira.
    #[arg(long = "to", value_name = "TRACKER")]
    pub to: String,
    /// The issue's title (default: the first thing that went wrong, with the customer masked).
    #[arg(long)]
    pub title: Option<String>,
    /// Where the question came from (the ticket's or message's link): the same source and session
    /// give one issue.
    #[arg(long, value_name = "URL")]
    pub source: Option<String>,
    /// Link this existing issue (LIN-123, SUP-42) instead of making one.
    #[arg(long, value_name = "KEY")]
    pub issue: Option<String>,
    /// A note added to the issue's description.
    #[arg(long)]
    pub note: Option<String>,
    /// The moment in question (RFC 3339): the session live then is the one escalated.
    #[arg(long)]
    pub around: Option<String>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: Config, args: EscalateArgs) -> Result<(), Failure> {
    let customer = parse_address(&args.email).map_err(|why| {
        Failure::usage(format!("`{}` is not an email address: {why}", args.email))
    })?;
    let tracker = Tracker::parse(&args.to)
        .ok_or_else(|| Failure::usage(format!("--to {}: use linear or jira", args.to)))?;
    if !tracker.enabled(&config) {
        return Err(Failure::usage(format!(
            "{tracker} is not configured: set [{}] in the configuration (see config.example.toml)",
            tracker.as_str()
        )));
    }
    let around = args
        .around
        .as_deref()
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| t.to_utc())
                .map_err(|e| Failure::usage(format!("--around {text}: {e}")))
        })
        .transpose()?;
    let source_url = args
        .source
        .as_deref()
        .map(|url| {
            crate::outbound::web_link(url)
                .map(|u| u.to_string())
                .ok_or_else(|| Failure::usage(format!("--source {url}: not an https link")))
        })
        .transpose()?;
    let state = crate::wiring::Service::build(config, Clock::system()).await?;
    let source = match source_url {
        Some(url) => Source {
            key: format!("url:{url}"),
            label: url.clone(),
            url: Some(url),
        },
        None => Source {
            key: format!(
                "cli:{}",
                state.auditor.hash(&Identity::Email(customer.clone()))
            ),
            label: "replaydesk command line".into(),
            url: None,
        },
    };
    let requester = super::privacy::cli_requester();
    let mut job = EscalateJob::new(customer, tracker, source, None, requester.clone());
    job.around = around;
    job.title = args.title;
    job.note = args.note;
    job.existing = args.issue;
    job.requester_name = Some(requester.user);
    let key = format!("cli:escalate:{}", uuid::Uuid::new_v4());
    let id = state
        .queue
        .push(&key, &job)
        .await
        .map_err(Failure::from)?
        .job_id;
    eprintln!("escalating to {tracker} (job {id})…");
    let owner = format!("cli-escalate@{}", std::process::id());
    super::jobs::work_until(
        &state.queue,
        &state.store,
        &owner,
        &[id],
        // Running, or due without having failed or met an outage (a job waiting for another job's
        // escalation of the same session is put off without an attempt counted).
        |job| {
            job.state == JobState::Running
                || (job.state == JobState::Queued && job.waiting_on.is_none() && job.attempts == 0)
        },
        |_| {},
    )
    .await
    .map_err(Failure::from)?;
    let outcome = state
        .store
        .effect(id, OUTCOME)
        .await
        .map_err(Failure::from)?
        .filter(|e| e.state == EffectState::Done)
        .and_then(|e| e.external_id)
        .and_then(|json| serde_json::from_str::<Outcome>(&json).ok());
    if args.json {
        let stored = state.store.get_job(id).await.map_err(Failure::from)?;
        let json = serde_json::json!({
            "job": id,
            "state": stored.as_ref().map(|j| j.state.as_str()),
            "outcome": outcome,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    }
    match outcome {
        Some(Outcome::Escalated(escalated)) => {
            if !args.json {
                println!("{}", printable(&escalated.message()));
            }
            Ok(())
        }
        Some(Outcome::NotEscalated { message }) => Err(Failure::failed(format!(
            "not escalated: {}",
            printable(&message)
        ))),
        None => {
            let stored = state.store.get_job(id).await.map_err(Failure::from)?;
            let why = stored
                .and_then(|j| j.last_error)
                .unwrap_or_else(|| "it has not run yet".into());
            Err(Failure::failed(format!(
                "not escalated yet (job {id}; `replaydesk serve` or `replaydesk jobs` takes it from \
                 here): {}",
                printable(&why)
            )))
        }
    }
}
