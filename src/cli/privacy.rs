//! `replaydesk forget [--stdin] EMAIL…` and `replaydesk audit [--since DATE] [--identity EMAIL|uid:X]`.
//!
//! Each address is read as a reader sees it ([`crate::identity::parse_address`]: `jane＠acme.com` or
//! `jane%40acme.com` is jane@acme.com). `forget --stdin` reads the addresses from standard input, one a
//! line (blank lines and lines starting with `#` skipped), so they never show in `ps` or the shell's history; a line that is not an address
//! is named by its number, not repeated. `forget` enqueues one erasure job per email (so a step that fails is retried by the queue, here or by
//! a running `serve`) and works the queue until each is finished or waiting for a retry, printing
//! progress, then a receipt per email: what was deleted where (with upstream references) and what is
//! still pending. Exit 0 when everything is done, 1 when something is pending or failed.

use chrono::{DateTime, NaiveDate, Utc};
use clap::Args;

use crate::console::printable;
use crate::console::{Failure, progress::Progress};
use crate::{
    app::App,
    clock::Clock,
    config::Config,
    erasure::ErasureJob,
    identity::{CustomerEmail, Identity, parse_address, parse_query},
    privacy::ErasureReceipt,
    privacy::Requester,
    store::{AuditRecord, JobState},
};

#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Customer email addresses to erase everywhere.
    pub emails: Vec<String>,
    /// Also read addresses from standard input, one a line (they then never show in `ps` or the
    /// shell's history).
    #[arg(long)]
    pub stdin: bool,
    /// Print the receipts as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Only entries at or after this time (RFC 3339 or YYYY-MM-DD).
    #[arg(long)]
    pub since: Option<String>,
    /// Only entries about this customer (an email or uid:VALUE).
    #[arg(long)]
    pub identity: Option<String>,
    /// At most this many entries (newest first).
    #[arg(long, default_value_t = 200)]
    pub limit: u32,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Who runs a command, for the audit trail.
pub fn cli_requester() -> Requester {
    Requester {
        platform: "cli".into(),
        tenant: "local".into(),
        user: std::env::var("USER").unwrap_or_else(|_| "operator".into()),
        place: None,
    }
}

/// The addresses `forget` was given: its arguments, then (with `--stdin`) standard input's lines.
fn addresses(args: &ForgetArgs) -> Result<Vec<CustomerEmail>, Failure> {
    let mut emails = args
        .emails
        .iter()
        .map(|e| {
            parse_address(e)
                .map_err(|why| Failure::usage(format!("`{e}` is not an email address: {why}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if args.stdin {
        let mut input = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
            .map_err(|e| Failure::failed(format!("could not read standard input: {e}")))?;
        emails.extend(addresses_in(&input)?);
    }
    if emails.is_empty() {
        return Err(Failure::usage(
            "give at least one email: replaydesk forget jane@acme.com (or --stdin, one a line)",
        ));
    }
    let mut seen = std::collections::HashSet::new();
    emails.retain(|e| seen.insert(e.clone()));
    Ok(emails)
}

/// The addresses of `input`, one a line; blank lines and `#` comments are skipped. A line that is not
/// an address is named by its number (the input is not repeated).
fn addresses_in(input: &str) -> Result<Vec<CustomerEmail>, Failure> {
    let mut emails = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let email = parse_address(line).map_err(|why| {
            Failure::usage(format!(
                "line {} of standard input is not an email address: {why}",
                n + 1
            ))
        })?;
        emails.push(email);
    }
    Ok(emails)
}

pub async fn forget(config: Config, args: ForgetArgs) -> Result<(), Failure> {
    let emails = addresses(&args)?;
    let state = crate::wiring::Service::build(config, Clock::system()).await?;
    let mut jobs = Vec::new();
    for email in &emails {
        let job = ErasureJob {
            email: email.clone(),
            requester: cli_requester(),
            reply: None,
        };
        let key = format!("cli:erase:{}", uuid::Uuid::new_v4());
        let enqueued = state.queue.push(&key, &job).await.map_err(Failure::from)?;
        jobs.push((email.clone(), enqueued.job_id));
    }
    eprintln!("erasing {} customer(s)…", jobs.len());
    // Work the queue until each erasure is finished or waits for a retry.
    let owner = format!("cli-forget@{}", std::process::id());
    let mut progress = Progress::new("erasures finished or waiting for a retry", jobs.len());
    let ids: Vec<i64> = jobs.iter().map(|(_, id)| *id).collect();
    super::jobs::work_until(
        &state.queue,
        &state.store,
        &owner,
        &ids,
        |job| {
            matches!(job.state, JobState::Queued | JobState::Running)
                && !(job.state == JobState::Queued && job.attempts > 0)
        },
        |open| progress.set(ids.len() - open),
    )
    .await
    .map_err(Failure::from)?;
    let mut all_done = true;
    let mut receipts = Vec::new();
    for (email, id) in &jobs {
        let receipt = ErasureReceipt::of_job(&state.store, *id)
            .await
            .map_err(Failure::from)?;
        all_done &= receipt.status == "done";
        receipts.push((email.clone(), receipt));
    }
    if args.json {
        let json: Vec<_> = receipts
            .iter()
            .map(|(email, r)| serde_json::json!({ "email": email.as_str(), "receipt": r }))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json).unwrap_or_default()
        );
    } else {
        for (email, receipt) in &receipts {
            println!(
                "Erasure of {} (job {}): {}",
                email.as_str(),
                receipt.job_id,
                receipt.status
            );
            // What upstreams answered is theirs: printed escaped, like every table.
            for done in &receipt.done {
                println!("  done     {}", printable(done));
            }
            for pending in &receipt.pending {
                println!("  pending  {}", printable(pending));
            }
            for action in &receipt.needs_action {
                println!("  by hand  {}", printable(action));
            }
            if receipt.status != "done"
                && let Some(error) = &receipt.last_error
            {
                println!("  last error: {}", printable(error));
            }
        }
    }
    if all_done {
        Ok(())
    } else {
        Err(Failure::failed(
            "some erasures are not finished: what is pending a running `replaydesk serve` retries \
             (see `replaydesk jobs list`); what is marked \"by hand\" needs a person",
        ))
    }
}

fn parse_since(text: &str) -> Result<DateTime<Utc>, Failure> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| Failure::usage(format!("--since `{text}` is not a date like 2026-11-01")))
}

pub async fn audit(config: Config, args: AuditArgs) -> Result<(), Failure> {
    let since = args.since.as_deref().map(parse_since).transpose()?;
    let identity = match args.identity.as_deref() {
        None => None,
        Some(text) => {
            let parsed = parse_query(text, &[]);
            match parsed.identities.as_slice() {
                [one] => Some(one.clone()),
                _ => {
                    return Err(Failure::usage(format!(
                        "--identity `{text}` must be one email or uid:VALUE"
                    )));
                }
            }
        }
    };
    let app = App::build(config, Clock::system()).await?;
    let hash = identity.as_ref().map(|i: &Identity| app.auditor.hash(i));
    let entries = app
        .store
        .audit(since, hash.as_deref(), args.limit)
        .await
        .map_err(Failure::from)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&entries).unwrap_or_default()
        );
        return Ok(());
    }
    print!("{}", audit_table(&entries));
    Ok(())
}

/// `replaydesk audit`'s table, one line per entry. Every value read from the store goes through
/// [`printable`]: an actor or a place is whatever the platform's request said, and an escape sequence
/// or a line break in it must not play in the operator's terminal or forge a line of the table.
pub fn audit_table(entries: &[AuditRecord]) -> String {
    if entries.is_empty() {
        return "No audit entries.\n".into();
    }
    let mut out = String::from(
        "time                  action    platform  tenant       actor        place        sessions  identities\n",
    );
    for e in entries {
        let short: Vec<_> = e.identities.iter().map(|h| &h[..h.len().min(12)]).collect();
        out.push_str(&format!(
            "{:<21} {:<9} {:<9} {:<12} {:<12} {:<12} {:<9} {}{}\n",
            e.at.format("%Y-%m-%d %H:%M:%S"),
            printable(&e.action),
            printable(&e.platform),
            printable(&e.tenant),
            printable(&e.actor),
            printable(e.place.as_deref().unwrap_or("-")),
            e.sessions,
            printable(&short.join(",")),
            e.detail
                .as_deref()
                .map(|d| format!("  ({})", printable(d)))
                .unwrap_or_default()
        ));
    }
    out
}
