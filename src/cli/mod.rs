//! The `replaydesk` command line: `demo`, `serve`, `lookup`, `check`, `forget`, `audit`, `escalate`,
//! `jobs …`, and
//! each platform's own commands (`slack manifest`, `zendesk setup|backfill|app`, `discord register`),
//! which the platforms declare themselves ([`crate::adapters::Platform::command`]) and this module adds
//! to the parser from [`crate::adapters::PLATFORMS`].
//!
//! Exit codes: 0 ok, 1 failure (one actionable line on stderr), 2 usage or configuration error.
//! Command output goes to stdout; logs go to stderr.

mod activations;
mod check;
mod escalate;
pub mod jobs;
mod lookup;
mod privacy;
pub mod serve;

// What every command shares (a failure's exit code, progress on stderr) lives in the leaf
// [`crate::console`], so the queue, the adapters and the demo can use it without importing the CLI.
use crate::console::Failure;

use std::{path::PathBuf, process::ExitCode};

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "replaydesk",
    version,
    about = "Customer session replays where support happens: Slack, Zendesk, Intercom, Discord."
)]
pub struct Cli {
    /// Configuration file (default: ./replaydesk.toml when present). REPLAYDESK_<SECTION>__<KEY> overrides.
    #[arg(long, global = true, env = "REPLAYDESK_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Try the whole pipeline with no account: sample FullStory, signed requests, the answers shown.
    Demo(crate::demo::DemoArgs),
    /// Run the HTTP server and the job workers.
    Serve,
    /// Print a customer's recent sessions, newest first, the likely one marked.
    Lookup(lookup::LookupArgs),
    /// Validate the configuration and test each configured integration.
    Check,
    /// Erase customers everywhere: FullStory, Heap, replaydesk's cache and store; prints a receipt.
    Forget(privacy::ForgetArgs),
    /// Who looked up whom: lookups and erasures, identities as keyed hashes.
    Audit(privacy::AuditArgs),
    /// Escalate a customer's likely session to Linear or Jira: one issue per source and session.
    Escalate(escalate::EscalateArgs),
    /// Inspect and replay queued, failed and dead jobs.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// This billing cycle's FullStory Activations, per day, kind and purpose.
    Activations(activations::ActivationsArgs),
}

/// What was asked for: one of [`Command`], or a platform's own command.
enum Parsed {
    Core(Cli),
    Platform {
        config: Option<PathBuf>,
        run: crate::adapters::RunCommand,
        matches: clap::ArgMatches,
    },
}

/// Parses the arguments with every platform's command added (exits with clap's message on a usage
/// error, like `Cli::parse`).
fn parse() -> Parsed {
    let mut platforms: Vec<_> = crate::adapters::PLATFORMS
        .iter()
        .filter_map(|platform| platform.command())
        .collect();
    let mut command = Cli::command();
    for platform in &platforms {
        command = command.subcommand(platform.command.clone());
    }
    let mut matches = command.get_matches();
    let config = matches.get_one::<PathBuf>("config").cloned();
    if let Some((name, sub)) = matches.subcommand()
        && let Some(at) = platforms
            .iter()
            .position(|platform| platform.command.get_name() == name)
    {
        return Parsed::Platform {
            config,
            run: platforms.swap_remove(at).run,
            matches: sub.clone(),
        };
    }
    match Cli::from_arg_matches_mut(&mut matches) {
        Ok(cli) => Parsed::Core(cli),
        Err(error) => error.exit(),
    }
}

/// How often (in tasks run) each of tokio's workers looks at the runtime's global queue: every 4th
/// task instead of tokio's own tuning (about every 200 µs of polling). A task woken from outside the
/// runtime waits there: every step of a durable write, woken by SQLite's connection thread when its
/// statement is done, each one waiting behind the HTTP requests on the local queues (a claim or a
/// completion is a chain of such steps; the group commit was too, before SQLite took a whole batch in
/// one step, `store/jobs.rs`). Under `benches/load.sh`'s load, a statement's round
/// trip took 150 to 250 µs, mostly that wait; with 4, SQLite ingest went from 29,400 and 30,600 to
/// 34,300 and 31,400 deliveries a second (with the held writer; no-op route unchanged: issue 27,
/// docs/performance.md).
const GLOBAL_QUEUE_INTERVAL: u32 = 4;

/// Parses the arguments, runs the command, and returns the process exit code.
pub fn main() -> ExitCode {
    let parsed = parse();
    let config_path = match &parsed {
        Parsed::Core(cli) => cli.config.clone(),
        Parsed::Platform { config, .. } => config.clone(),
    };
    let mut config = match Config::load(config_path.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("replaydesk: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    if let Parsed::Core(Cli {
        command: Command::Demo(_),
        ..
    }) = parsed
    {
        crate::demo::quiet(&mut config.log);
    }
    crate::telemetry::init(&config.log);
    crate::install_crypto_provider();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .global_queue_interval(GLOBAL_QUEUE_INTERVAL)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("replaydesk: could not start the runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        let command = match parsed {
            Parsed::Core(cli) => cli.command,
            Parsed::Platform { run, matches, .. } => return run(&matches, config).await,
        };
        match command {
            Command::Demo(args) => crate::demo::run(args, config.log).await,
            Command::Serve => serve::run(config).await,
            Command::Lookup(args) => lookup::run(config, args).await,
            Command::Check => check::run(config).await,
            Command::Activations(args) => activations::run(config, args).await,
            Command::Forget(args) => privacy::forget(config, args).await,
            Command::Audit(args) => privacy::audit(config, args).await,
            Command::Escalate(args) => escalate::run(config, args).await,
            Command::Jobs(jobs::JobsCommand::Cancel { id }) => {
                // The whole service: the job's replier tells its requester.
                let service = crate::wiring::Service::build(config, crate::clock::Clock::system())
                    .await
                    .map_err(Failure::from)?;
                let operator = privacy::cli_requester().user;
                let said = jobs::cancel(&service.queue, id, &operator)
                    .await
                    .map_err(Failure::from)?;
                print!("{said}");
                Ok(())
            }
            Command::Jobs(command) => {
                let store = crate::store::open(&config.store.url)
                    .await
                    .map_err(Failure::from)?;
                jobs::run(command, store).await.map_err(Failure::from)
            }
        }
    });
    // Stop the runtime first, so nothing it logs while shutting down lands after the failure line.
    drop(runtime);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!(
                "replaydesk: {}",
                crate::identity::redact_emails(&failure.message)
            );
            ExitCode::from(failure.code)
        }
    }
}
