//! `replaydesk jobs …`: the operator's view of the queue.
//!
//! # Contract
//! * `jobs list [--state STATE] [--limit N]` prints id, kind, state,
//!   attempts, times and the last error — never payloads, and with e-mail
//!   addresses in errors masked (`j***@example.com`): this output ends up in
//!   chat threads and tickets.
//! * Every value `jobs list` and `jobs show` read from the store goes through
//!   [`printable`]: an upstream's error or a platform's id with an escape
//!   sequence or a line break in it is shown escaped, never played in the
//!   operator's terminal.
//! * `jobs show ID` prints one job in full, payload and effect ledger
//!   included: it is meant for an operator's terminal.
//! * A job waiting for a down upstream is `queued` with a last error that
//!   says so (`waiting: fullstory unavailable: …`); `jobs show` adds
//!   `waiting on`. A job whose answer's deadline passed during an outage is
//!   `expired` (not `dead`: nothing was wrong with it).
//! * `jobs cancel ID` ends a queued job (one waiting with no deadline of its
//!   own: an erasure, a thread answer) on the operator's word: its requester
//!   is told through the job's replier, and it ends `cancelled`
//!   ([`Queue::cancel`]; run by the command line with the whole service, whose
//!   repliers it needs: [`cancel`]).
//! * `jobs retry ID` / `jobs retry --all-dead` queue dead jobs again, due now,
//!   attempts reset; `jobs retry ID` takes an expired or cancelled job back too.
//!   Retrying a job that is neither is an error. `--all-dead`
//!   works in batches of 500 and prints `done/total` progress to stderr.
//! * `jobs purge --done-older-than 7d` runs retention by hand with that
//!   period (see [`SqlStore::purge_done`]).
//!
//! [`run`] prints to stdout; [`render`] returns the text (used by tests).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::config::{format_duration, parse_duration};
use crate::console::{printable, progress::Progress};
use crate::queue::Queue;
use crate::store::{JobState, Ledgering, SqlStore, StoredJob};

/// Dead jobs queued again per transaction by `jobs retry --all-dead`.
const RETRY_BATCH: u32 = 500;

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Widest last error shown by `jobs list`.
const LIST_ERROR_WIDTH: usize = 100;

/// `replaydesk jobs` subcommands.
#[derive(Debug, Clone, PartialEq, clap::Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first (no payloads).
    List {
        /// Only jobs in this state: queued, running, done, dead, expired or cancelled.
        #[arg(long, value_parser = parse_state)]
        state: Option<JobState>,
        /// At most this many jobs.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one job in full: payload, last error and effect ledger.
    Show {
        /// Job id.
        id: i64,
    },
    /// End a queued job (one waiting: an erasure, a thread answer): its requester is told, and it is
    /// marked cancelled.
    Cancel {
        /// Job id.
        id: i64,
    },
    /// Queue a dead, expired or cancelled job again, due now, with its attempts reset.
    Retry {
        /// Job id.
        #[arg(required_unless_present = "all_dead", conflicts_with = "all_dead")]
        id: Option<i64>,
        /// Every dead job.
        #[arg(long)]
        all_dead: bool,
    },
    /// Scrub the payloads of done jobs finished longer ago than DURATION.
    Purge {
        /// E.g. 7d, 12h, 30m.
        #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
        done_older_than: Duration,
    },
}

fn parse_state(text: &str) -> Result<JobState, String> {
    text.parse().map_err(|e: anyhow::Error| e.to_string())
}

/// Runs `cmd` against `store` and prints the result to stdout.
pub async fn run(cmd: JobsCommand, store: Arc<SqlStore>) -> anyhow::Result<()> {
    let text = render(cmd, store.as_ref(), Utc::now()).await?;
    print!("{text}");
    Ok(())
}

/// Runs `cmd` against `store` at time `now` and returns what [`run`] prints.
pub async fn render(
    cmd: JobsCommand,
    store: &SqlStore,
    now: DateTime<Utc>,
) -> anyhow::Result<String> {
    let mut out = String::new();
    match cmd {
        JobsCommand::List { state, limit } => {
            let jobs = store.list_jobs(state, limit).await?;
            if jobs.is_empty() {
                out.push_str("no jobs\n");
            } else {
                list(&mut out, &jobs)?;
            }
        }
        JobsCommand::Show { id } => {
            let job = store
                .get_job(id)
                .await?
                .with_context(|| format!("no job {id}"))?;
            let effects = store.effects_for_job(id).await?;
            show(&mut out, &job)?;
            if effects.is_empty() {
                writeln!(out, "effects:       none")?;
            } else {
                writeln!(out, "effects:")?;
                for e in effects {
                    writeln!(
                        out,
                        "  {:<16} {:<7} marker {}  external id {}  at {}",
                        printable(&e.name),
                        e.state.as_str(),
                        printable(&e.marker),
                        printable(e.external_id.as_deref().unwrap_or("-")),
                        time(e.updated_at)
                    )?;
                }
            }
        }
        JobsCommand::Retry {
            id: Some(id),
            all_dead: false,
        } => {
            if store.retry_dead(id, now).await? {
                writeln!(out, "job {id} queued again")?;
            } else {
                match store.get_job(id).await? {
                    None => bail!("no job {id}"),
                    Some(job) if job.payload_purged_at.is_some() => bail!(
                        "job {id} can no longer be retried: its payload was scrubbed (retention or an \
                         erasure), so there is nothing left to run"
                    ),
                    Some(job) => bail!(
                        "job {id} is {}, not dead, expired or cancelled; only those can be retried",
                        job.state
                    ),
                }
            }
        }
        JobsCommand::Retry { all_dead: true, .. } => {
            let dead = store
                .count_by_state()
                .await?
                .iter()
                .find(|(state, _)| *state == JobState::Dead)
                .map_or(0, |(_, n)| *n);
            let mut progress = Progress::new("dead jobs queued again", to_usize(dead));
            let mut n = 0;
            // Batches, so a large dead letter queue shows progress and no transaction grows huge.
            // Bounded: jobs that die again meanwhile are not chased forever.
            while n < dead {
                let step = store.retry_dead_batch(RETRY_BATCH, now).await?;
                if step == 0 {
                    break;
                }
                n += step;
                progress.set(to_usize(n));
            }
            writeln!(out, "{n} dead job{} queued again", plural(n))?;
        }
        JobsCommand::Retry {
            id: None,
            all_dead: false,
        } => bail!("give a job id or --all-dead"),
        JobsCommand::Cancel { id } => bail!(
            "cancelling job {id} needs the whole service (its requester is told): run `replaydesk \
             jobs cancel {id}`"
        ),
        JobsCommand::Purge { done_older_than } => {
            let cutoff = now - chrono::Duration::from_std(done_older_than)?;
            let n = store.purge_done(cutoff, now).await?;
            writeln!(
                out,
                "scrubbed the payloads of {n} done job{} finished more than {} ago (before {})",
                plural(n),
                format_duration(done_older_than),
                time(cutoff)
            )?;
        }
    }
    Ok(out)
}

/// `jobs cancel ID` against `queue` (the whole service's, so that the job's replier can tell its
/// requester); `operator` is named in the job's last error. What it prints.
///
/// # Errors
/// What [`Queue::cancel`] refuses, said for the operator.
pub async fn cancel(queue: &Queue, id: i64, operator: &str) -> anyhow::Result<String> {
    queue.cancel(id, operator).await?;
    let job = queue.store().get_job(id).await?;
    let kind = job.map(|j| j.kind).unwrap_or_default();
    Ok(format!(
        "job {id} ({}) cancelled; whoever asked for it was told where it answers\n",
        printable(&kind)
    ))
}

fn list(out: &mut String, jobs: &[StoredJob]) -> anyhow::Result<()> {
    let kind_width = jobs
        .iter()
        .map(|j| printable(&j.kind).chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:>8}  {:<kind_width$}  {:<7}  {:>8}  {:<20}  {:<20}  LAST ERROR",
        "ID", "KIND", "STATE", "ATTEMPTS", "ENQUEUED", "UPDATED"
    )?;
    for job in jobs {
        let error = job
            .last_error
            .as_deref()
            .map(|e| one_line(&mask_emails(&printable(e)), LIST_ERROR_WIDTH))
            .unwrap_or_default();
        writeln!(
            out,
            "{:>8}  {:<kind_width$}  {:<7}  {:>8}  {:<20}  {:<20}  {}",
            job.id,
            printable(&job.kind),
            job.state.as_str(),
            job.attempts,
            time(job.enqueued_at),
            time(job.updated_at),
            error
        )?;
    }
    Ok(())
}

fn show(out: &mut String, job: &StoredJob) -> anyhow::Result<()> {
    writeln!(out, "job {}", job.id)?;
    writeln!(out, "kind:          {}", printable(&job.kind))?;
    writeln!(out, "state:         {}", job.state)?;
    writeln!(out, "attempts:      {}", job.attempts)?;
    writeln!(
        out,
        "delivery key:  {}",
        printable(job.delivery_key.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "enqueued at:   {}", time(job.enqueued_at))?;
    writeln!(out, "run after:     {}", time(job.run_after))?;
    writeln!(out, "updated at:    {}", time(job.updated_at))?;
    if let Some(at) = job.finished_at {
        writeln!(out, "finished at:   {}", time(at))?;
    }
    if let Some(upstream) = &job.waiting_on {
        writeln!(
            out,
            "waiting on:    {} (unavailable; waits are not attempts)",
            printable(upstream)
        )?;
    }
    if let Some(at) = job.retried_at {
        writeln!(out, "retried at:    {}", time(at))?;
    }
    if let Some(at) = job.handed_at {
        writeln!(
            out,
            "handed at:     {} (claimed in its delivery's commit, run by that replica)",
            time(at)
        )?;
    }
    let ledger = match job.ledgering {
        Ledgering::Unrun => "settled (no intents next unless the ledger has rows for it)",
        Ledgering::FirstRun => "first run (no intents; its effects are recorded with its outcome)",
        Ledgering::AfterFirstRun => {
            "intents; an unrecorded effect is looked for on the platform first"
        }
        Ledgering::Intents => "intents",
    };
    writeln!(out, "ledger:        {ledger}")?;
    if let (Some(owner), Some(until)) = (&job.lock_owner, job.locked_until) {
        writeln!(
            out,
            "lease:         {} until {}",
            printable(owner),
            time(until)
        )?;
    }
    writeln!(
        out,
        "last error:    {}",
        printable(job.last_error.as_deref().unwrap_or("-"))
    )?;
    match job.payload_purged_at {
        Some(at) => writeln!(out, "payload:       purged at {}", time(at))?,
        None => {
            let pretty = serde_json::to_string_pretty(&job.payload)?;
            writeln!(out, "payload:")?;
            for line in pretty.lines() {
                writeln!(out, "  {}", printable(line))?;
            }
        }
    }
    Ok(())
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// First line of `text`, at most `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    let mut cut: String = line.chars().take(width).collect();
    if cut.len() < line.len() || text.lines().nth(1).is_some() {
        cut.push('…');
    }
    cut
}

/// Masks the local part of anything shaped like an e-mail address:
/// `jane.doe@example.com` → `j***@example.com`.
pub fn mask_emails(text: &str) -> String {
    fn local(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"._%+-".contains(&b)
    }
    fn domain(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'@' {
            let mut start = i;
            while start > copied && local(bytes[start - 1]) {
                start -= 1;
            }
            let mut end = i + 1;
            while end < bytes.len() && domain(bytes[end]) {
                end += 1;
            }
            let host = text[i + 1..end].trim_matches('.');
            if start < i && host.contains('.') {
                out.push_str(&text[copied..start]);
                out.push(char::from(bytes[start]));
                out.push_str("***");
                copied = i;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// Works `queue` in this process (as `owner`) until none of `ids` is `open` any more (each is finished,
/// or waits for a retry or an upstream, as the command decides), telling `on_look` how many are still
/// open after each look: how `forget` and `escalate` see their own jobs through.
pub async fn work_until(
    queue: &Queue,
    store: &SqlStore,
    owner: &str,
    ids: &[i64],
    open: fn(&StoredJob) -> bool,
    mut on_look: impl FnMut(usize),
) -> anyhow::Result<()> {
    for _ in 0..10_000 {
        let mut still = 0;
        for id in ids {
            if store.get_job(*id).await?.as_ref().is_some_and(open) {
                still += 1;
            }
        }
        on_look(still);
        if still == 0 {
            break;
        }
        match queue.try_execute_one(owner).await? {
            crate::queue::ExecutionOutcome::EmptyQueue => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            outcome => tracing::debug!(?outcome, "step"),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn masks_email_local_parts_only() {
        assert_eq!(
            mask_emails("no FullStory user for jane.doe+vip@example.com (tried bob@x.io)"),
            "no FullStory user for j***@example.com (tried b***@x.io)"
        );
        assert_eq!(
            mask_emails("rate limited @ 10:00, user@localhost"),
            "rate limited @ 10:00, user@localhost"
        );
        assert_eq!(mask_emails("ünïcode é@x.com ok"), "ünïcode é@x.com ok");
        assert_eq!(mask_emails("@@a.b x@"), "@@a.b x@");
    }

    #[test]
    fn one_line_cuts_long_and_multi_line_errors() {
        assert_eq!(one_line("short", 10), "short");
        assert_eq!(one_line("abcdefghijkl", 5), "abcde…");
        assert_eq!(one_line("first\nsecond", 50), "first…");
    }

    #[test]
    fn the_cli_parses_its_documented_forms() {
        use clap::Parser;

        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            jobs: JobsCommand,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("jobs").chain(args.iter().copied())).map(|c| c.jobs)
        };
        assert_eq!(
            parse(&["list", "--state", "dead"]).ok(),
            Some(JobsCommand::List {
                state: Some(JobState::Dead),
                limit: 50
            })
        );
        assert_eq!(
            parse(&["show", "7"]).ok(),
            Some(JobsCommand::Show { id: 7 })
        );
        assert_eq!(
            parse(&["retry", "--all-dead"]).ok(),
            Some(JobsCommand::Retry {
                id: None,
                all_dead: true
            })
        );
        assert!(parse(&["retry"]).is_err());
        assert!(parse(&["retry", "3", "--all-dead"]).is_err());
        assert_eq!(
            parse(&["purge", "--done-older-than", "7d"]).ok(),
            Some(JobsCommand::Purge {
                done_older_than: Duration::from_secs(7 * 86_400)
            })
        );
        assert!(parse(&["purge", "--done-older-than", "soon"]).is_err());
        assert!(parse(&["list", "--state", "zombie"]).is_err());
    }
}
