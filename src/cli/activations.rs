//! `replaydesk activations [--json]`: this billing cycle's FullStory Activations, per day, kind and
//! purpose, from the store every replica counts in ([`crate::activations`]), so an admin sees what
//! spends them. List Sessions calls, which cost none, are listed apart.

use clap::Args;

use crate::activations::{Report, thousands};
use crate::console::Failure;
use crate::{app::App, config::Config};

#[derive(Debug, Args)]
pub struct ActivationsArgs {
    /// One JSON document instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(config: Config, args: ActivationsArgs) -> Result<(), Failure> {
    let app = App::build(config, crate::clock::Clock::system()).await?;
    let report = app.activations.report().await.map_err(Failure::from)?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| Failure::failed(format!("could not write JSON: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// The report as the terminal shows it.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "cycle {} to {}: {}\n",
        report.cycle,
        report.resets,
        report.line()
    );
    if report.days.is_empty() {
        out.push_str("no FullStory call counted this cycle yet\n");
        return out;
    }
    out.push_str(&format!(
        "{:<12} {:<14} {:<12} {:>8}\n",
        "day", "kind", "purpose", "count"
    ));
    for day in &report.days {
        let kind = if day.kind == "list_sessions" {
            "list_sessions*"
        } else {
            &day.kind
        };
        out.push_str(&format!(
            "{:<12} {:<14} {:<12} {:>8}\n",
            day.day,
            kind,
            day.purpose.replace('_', " "),
            thousands(day.count)
        ));
    }
    if report.days.iter().any(|d| d.kind == "list_sessions") {
        out.push_str(
            "* List Sessions costs no Activation: counted apart, never against the budget\n",
        );
    }
    out
}
