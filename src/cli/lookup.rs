//! `replaydesk lookup EMAIL… [--uid UID]… [--around RFC3339] [--limit N] [--digest] [--summary] [--json]`
//!
//! The core lookup from a terminal: a readable table, or JSON with `--json`. The digest and the summary
//! each cost metered FullStory calls, so they are off unless asked for. The operator typed the emails,
//! so the table shows them in full; logs still redact them.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use clap::Args;

use crate::console::Failure;
use crate::{
    app::App,
    config::Config,
    identity::{CustomerEmail, Identity, Uid},
    lookup::{LookupResult, SummaryOutcome},
};

#[derive(Debug, Args)]
pub struct LookupArgs {
    /// Customer email addresses.
    pub emails: Vec<String>,
    /// Your app's user id for the customer (FS.identify uid); may be repeated.
    #[arg(long = "uid", value_name = "UID")]
    pub uids: Vec<String>,
    /// The moment in question (RFC 3339, e.g. 2026-11-20T11:30:00Z): the session live then is marked.
    #[arg(long)]
    pub around: Option<String>,
    /// Sessions per identity (default: fullstory.limit).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Add a digest of the likely session (one more FullStory call).
    #[arg(long)]
    pub digest: bool,
    /// Add FullStory's AI summary of the likely session (needs fullstory.summary_profile).
    #[arg(long)]
    pub summary: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn parse_identities(args: &LookupArgs) -> Result<Vec<Identity>, Failure> {
    let mut identities = Vec::new();
    for email in &args.emails {
        let email = CustomerEmail::parse(email)
            .map_err(|e| Failure::usage(format!("`{email}` is not an email address: {e}")))?;
        identities.push(Identity::Email(email));
    }
    for uid in &args.uids {
        let uid = Uid::parse(uid).map_err(|e| Failure::usage(format!("--uid `{uid}`: {e}")))?;
        identities.push(Identity::Uid(uid));
    }
    identities.dedup();
    if identities.is_empty() {
        return Err(Failure::usage(
            "give at least one customer email or --uid (e.g. replaydesk lookup jane@acme.com)",
        ));
    }
    Ok(identities)
}

pub async fn run(config: Config, args: LookupArgs) -> Result<(), Failure> {
    let identities = parse_identities(&args)?;
    let around = args
        .around
        .as_deref()
        .map(|t| {
            DateTime::parse_from_rfc3339(t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Failure::usage(format!(
                        "--around `{t}` is not an RFC 3339 time like 2026-11-20T11:30:00Z"
                    ))
                })
        })
        .transpose()?;
    if let Some(limit) = args.limit
        && !(1..=100).contains(&limit)
    {
        return Err(Failure::usage("--limit must be between 1 and 100"));
    }
    if !config.fullstory.api_key.is_set() {
        return Err(Failure::usage(
            "no FullStory API key is configured: set fullstory.api_key (or REPLAYDESK_FULLSTORY__API_KEY)",
        ));
    }
    let app = App::build(config, crate::clock::Clock::system()).await?;
    let mut request = app.lookup_request(identities);
    request.around = around;
    request.digest = args.digest;
    request.summary = args.summary;
    // The operator asked for them, now: spent from the Activations kept for requests.
    request.asked = crate::lookup::Asked {
        digest: args.digest,
        summary: args.summary,
    };
    if let Some(limit) = args.limit {
        request.limit = limit;
    }
    let result = app
        .lookup
        .run(&request)
        .await
        .map_err(|e| Failure::failed(e.to_string()))?;
    app.auditor
        .record(
            app.clock.now(),
            "lookup",
            &super::privacy::cli_requester(),
            &request.identities,
            result.session_count(),
            None,
        )
        .await;
    let output = if args.json {
        serde_json::to_string_pretty(&result).map_err(|e| Failure::failed(e.to_string()))? + "\n"
    } else {
        table(&result)
    };
    print!("{output}");
    Ok(())
}

/// The human-readable answer.
pub fn table(result: &LookupResult) -> String {
    let mut out = String::new();
    for group in &result.identities {
        let who = match &group.identity {
            Identity::Email(email) => email.as_str().to_owned(),
            Identity::Uid(uid) => format!("uid:{}", uid.as_str()),
        };
        if group.forgotten {
            let _ = writeln!(
                out,
                "{who} asked to be forgotten (erased; privacy.tombstone_days): nothing was looked up."
            );
            continue;
        }
        if group.sessions.is_empty() {
            let _ = writeln!(
                out,
                "No sessions found for {who} in the last {} days.",
                result.lookback_days
            );
            continue;
        }
        let _ = writeln!(out, "Sessions for {who} (newest first):");
        for session in &group.sessions {
            let mark = if session.likely { "*" } else { " " };
            let _ = writeln!(
                out,
                "  {mark} {}  {}{}",
                session.created.format("%Y-%m-%d %H:%M UTC"),
                session.url,
                if session.likely { "  <- likely" } else { "" }
            );
            if session.likely
                && let Some(digest) = &group.digest
            {
                let _ = writeln!(out, "      {}", digest.line());
            }
        }
        match &group.summary {
            Some(SummaryOutcome::Ready(text)) => {
                let _ = writeln!(out, "  Summary:");
                for line in text.lines() {
                    let _ = writeln!(out, "    {line}");
                }
            }
            Some(SummaryOutcome::Unavailable(why)) => {
                let _ = writeln!(out, "  No summary: {why}");
            }
            None => {}
        }
    }
    out
}
