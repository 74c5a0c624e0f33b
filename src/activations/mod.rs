//! FullStory Activations: what replaydesk may spend of the customer's metered quota, counted once for
//! every replica, with room kept for what agents ask for (issue 24).
//!
//! FullStory meters its Sessions API in Activations: Get Session Events, Generate Context and Generate
//! Summary cost one each per call; List Sessions costs none (PLATFORMS.md §7.1). Plans include a number
//! per billing cycle. This module decides, before each metered call, whether it may be made:
//!
//! * **Counted once, durably.** Each metered call takes one Activation from the store's count of the
//!   cycle ([`crate::store::SqlStore::reserve_activation`]) *before* it is sent, by kind and purpose;
//!   a call FullStory did not answer with data gives it back. List Sessions is counted apart, never
//!   against the budget.
//! * **A budget with room for people.** `fullstory.activations_per_cycle` (unset: no budget, still
//!   counted); `fullstory.on_request_reserve` (default 20 %) is kept for what agents ask for:
//!   [`Purpose::Automatic`] spending stops at the budget less the reserve, [`Purpose::OnRequest`] at the
//!   budget.
//! * **The bound across replicas.** The reservation is one conditional `UPDATE` in the shared store,
//!   made before the call: replicas never pass the budget between them, not even by their in-flight
//!   calls (those hold reservations already). FullStory's own count may differ from ours only by calls
//!   it charged without answering (a 5xx after the work was done), which we give back: at most the
//!   calls in flight when FullStory failed.
//! * **Past the budget, still useful.** A refused call is a [`Spent`], whose text every platform shows
//!   in place of the digest or summary ("FullStory Activation budget for this cycle used: 1,000 of
//!   1,000; resets 2027-01-01"); nothing else of the answer needs an Activation.
//! * **FullStory's own "out of quota"** (a 402, or a 403 or 429 whose body names a quota: FullStory does
//!   not document its answer) marks the cycle used up ([`Activations::quota_exhausted`]): no metered
//!   call until the next cycle, instead of retrying or opening the breaker.
//! * **Visible before it hurts.** At 80 % and at 100 % of the budget: one warning in the log and, when
//!   `fullstory.budget_alert_channel` is set, one message there ([`Alert`]), once per cycle whichever
//!   replica sees it first. `/metrics` gauges ([`crate::metrics::ActivationMetrics`]), `replaydesk check`
//!   and `replaydesk activations` read the same count.
//!
//! # Decisions
//! * **Purpose.** Automatic: what replaydesk fetches because the configuration says so (a ticket's
//!   note, a Slack preview, a sidebar load, an answer's default digest, `zendesk.auto_summary`). On
//!   request: what a person asked for in that moment (Summarize, `summary:true`, `--digest`,
//!   `--summary`, a digest button or option).
//! * **A store that cannot be read**: with a budget set, the call is not made ([`Spent::Unchecked`]:
//!   nothing is spent blind; the Zendesk sidebar and the Intercom canvas look up without the queue);
//!   without a budget it is made uncounted (logged), the lesser harm.
//! * **Cycles** start on `fullstory.cycle_start_day` (1–28, so every month has it) at 00:00 UTC and
//!   are named by their first day.

use std::sync::{
    Arc, OnceLock,
    atomic::{AtomicBool, AtomicU64, Ordering},
};

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use crate::{
    clock::Clock,
    config::FullStoryConfig,
    metrics::{
        ActivationMetrics, activations::EndpointLabel, activations::ShareLabels,
        activations::SpendLabels,
    },
    store::{ActivationCount, ActivationDay, ActivationSlot, SqlStore},
};

/// What a metered call fetches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Get Session Events.
    Events,
    /// Generate Summary.
    Summary,
    /// Generate Context.
    Context,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Summary => "summary",
            Self::Context => "context",
        }
    }
}

/// Why a metered call is made (see the module docs).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The configuration asked for it.
    #[default]
    Automatic,
    /// A person asked for it, now.
    OnRequest,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Automatic => "automatic",
            Self::OnRequest => "on_request",
        }
    }

    /// [`Purpose::OnRequest`] when `asked`, else automatic.
    pub fn asked(asked: bool) -> Self {
        if asked {
            Self::OnRequest
        } else {
            Self::Automatic
        }
    }
}

/// One billing cycle: from `start` (inclusive) to `resets` (exclusive), days in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    pub start: NaiveDate,
    pub resets: NaiveDate,
}

impl Cycle {
    /// The cycle `now` falls in, for cycles starting on day `start_day` (1–28) of each month.
    pub fn containing(now: DateTime<Utc>, start_day: u32) -> Self {
        let today = now.date_naive();
        let day = start_day.clamp(1, 28);
        let this_month = today.with_day(day).unwrap_or(today);
        let start = if today >= this_month {
            this_month
        } else {
            this_month
                .checked_sub_months(Months::new(1))
                .unwrap_or(this_month)
        };
        let resets = start.checked_add_months(Months::new(1)).unwrap_or(start);
        Self { start, resets }
    }

    /// The cycle's name in the store: its first day.
    pub fn name(&self) -> String {
        self.start.format("%Y-%m-%d").to_string()
    }
}

/// Why a metered call was not made: the line an answer shows in place of what it would have fetched.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Spent {
    /// The budget (less the reserve, for automatic spending) is used.
    #[error("FullStory Activation budget for this cycle used: {}; resets {resets}", used_of(*.used, *.limit, *.budget))]
    Budget {
        used: i64,
        /// Where this purpose stops: the budget, or the budget less the reserve.
        limit: u32,
        budget: u32,
        resets: NaiveDate,
    },
    /// FullStory answered that the organisation's Activations are used up.
    #[error(
        "FullStory says this organisation's Activations are used up; metered calls start again on {resets}"
    )]
    FullStory { resets: NaiveDate },
    /// A budget is set, and the count it is kept in could not be read: nothing is spent blind.
    #[error(
        "the FullStory Activation budget could not be checked (the store did not answer); nothing was spent"
    )]
    Unchecked,
}

impl Spent {
    /// The line an answer shows in place of the digest it could not fetch (every platform, a preview).
    pub fn digest_skipped(&self) -> String {
        format!("Digest skipped: {self}")
    }
}

/// "1,000 of 1,000", or "800 of 1,000 (the other 200 are kept for agents' requests)".
fn used_of(used: i64, limit: u32, budget: u32) -> String {
    let mut text = format!("{} of {}", thousands(used), thousands(i64::from(budget)));
    if limit < budget {
        text.push_str(&format!(
            " (the other {} are kept for agents' requests)",
            thousands(i64::from(budget - limit))
        ));
    }
    text
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Where the 80 % and 100 % alerts go besides the log (a Slack channel, plugged in by the wiring).
#[async_trait]
pub trait Alert: Send + Sync {
    async fn send(&self, text: &str);
}

/// An Activation taken for one call: give it back with [`Activations::release`] when the call was
/// not answered.
#[derive(Clone, Debug)]
#[must_use]
pub struct Taken {
    cycle: String,
    day: String,
    kind: Kind,
    purpose: Purpose,
    counted: bool,
}

/// This cycle at a glance (`replaydesk check`, `replaydesk activations`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub cycle: NaiveDate,
    pub resets: NaiveDate,
    pub budget: Option<u32>,
    pub reserve: u32,
    pub automatic: i64,
    pub on_request: i64,
    /// When FullStory said the quota was used up, this cycle.
    pub exhausted_at: Option<DateTime<Utc>>,
    pub days: Vec<ReportDay>,
}

/// One day's calls of one kind and purpose.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ReportDay {
    pub day: String,
    pub kind: String,
    pub purpose: String,
    pub count: i64,
}

impl Report {
    pub fn used(&self) -> i64 {
        self.automatic + self.on_request
    }

    /// `412 of 1,000 this cycle (automatic 380, on request 32; resets 2027-01-01; 200 kept for requests)`.
    pub fn line(&self) -> String {
        let spent = format!(
            "automatic {}, on request {}; resets {}",
            thousands(self.automatic),
            thousands(self.on_request),
            self.resets
        );
        let mut line = match self.budget {
            Some(budget) => format!(
                "{} of {} this cycle ({spent}; {} kept for requests)",
                thousands(self.used()),
                thousands(i64::from(budget)),
                thousands(i64::from(self.reserve))
            ),
            None => format!(
                "{} this cycle, no budget set ({spent})",
                thousands(self.used())
            ),
        };
        if let Some(at) = self.exhausted_at {
            line.push_str(&format!(
                "; FullStory said the quota was used up at {}",
                at.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        line
    }
}

/// The Activation budget of this install. Cheap to clone.
#[derive(Clone)]
pub struct Activations {
    store: Arc<SqlStore>,
    clock: Clock,
    budget: Option<u32>,
    reserve: u32,
    start_day: u32,
    metrics: ActivationMetrics,
    alert: Arc<OnceLock<Arc<dyn Alert>>>,
    unmetered: Arc<Unmetered>,
}

/// List Sessions calls counted in memory until the next write ([`Activations::count_list_sessions`]).
#[derive(Default)]
struct Unmetered {
    pending: AtomicU64,
    flushing: AtomicBool,
}

/// How long List Sessions calls are added up before they are written.
const UNMETERED_FLUSH: std::time::Duration = std::time::Duration::from_secs(1);

/// Alert bits kept per cycle in the store.
const ALERT_80: i64 = 1;
const ALERT_100: i64 = 2;

impl Activations {
    pub fn new(
        store: Arc<SqlStore>,
        clock: Clock,
        config: &FullStoryConfig,
        metrics: ActivationMetrics,
    ) -> Self {
        let budget = config.activations_per_cycle;
        let reserve = budget.map_or(0, |b| config.on_request_reserve.of(b));
        if let Some(budget) = budget {
            metrics
                .budget
                .get_or_create(&ShareLabels { share: "total" })
                .set(i64::from(budget));
            metrics
                .budget
                .get_or_create(&ShareLabels { share: "reserve" })
                .set(i64::from(reserve));
        }
        Self {
            store,
            clock,
            budget,
            reserve,
            start_day: config.cycle_start_day,
            metrics,
            alert: Arc::default(),
            unmetered: Arc::default(),
        }
    }

    /// Where the 80 % and 100 % alerts are sent besides the log; set once, by the wiring.
    pub fn alert_to(&self, alert: Arc<dyn Alert>) {
        let _ = self.alert.set(alert);
    }

    pub fn budget(&self) -> Option<u32> {
        self.budget
    }

    /// The cycle now.
    pub fn cycle(&self) -> Cycle {
        Cycle::containing(self.clock.now(), self.start_day)
    }

    /// Where `purpose` stops: the budget, less the reserve for automatic spending.
    fn limit(&self, purpose: Purpose) -> Option<u32> {
        self.budget.map(|budget| match purpose {
            Purpose::OnRequest => budget,
            Purpose::Automatic => budget - self.reserve.min(budget),
        })
    }

    /// Takes one Activation for a call of `kind` made for `purpose`, or says why not.
    pub async fn spend(&self, kind: Kind, purpose: Purpose) -> Result<Taken, Spent> {
        let now = self.clock.now();
        let cycle = Cycle::containing(now, self.start_day);
        let taken = Taken {
            cycle: cycle.name(),
            day: now.format("%Y-%m-%d").to_string(),
            kind,
            purpose,
            counted: true,
        };
        let limit = self.limit(purpose);
        let slot = slot(&taken);
        match self
            .store
            .reserve_activation(slot, limit.map_or(i64::MAX, i64::from))
            .await
        {
            Ok((true, count)) => {
                self.after_change(&cycle, count).await;
                Ok(taken)
            }
            Ok((false, count)) => {
                if count.exhausted_at.is_some() {
                    return Err(Spent::FullStory {
                        resets: cycle.resets,
                    });
                }
                let budget = self.budget.unwrap_or_default();
                tracing::info!(
                    kind = kind.as_str(),
                    purpose = purpose.as_str(),
                    used = count.used(),
                    budget,
                    "FullStory Activation budget used: call not made"
                );
                Err(Spent::Budget {
                    used: count.used(),
                    limit: limit.unwrap_or(budget),
                    budget,
                    resets: cycle.resets,
                })
            }
            // With a budget, nothing is spent blind; without one, the call is only counted, and an
            // uncounted call is the lesser harm (see the module docs).
            Err(error) if self.budget.is_some() => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not check the Activation budget; not calling"
                );
                Err(Spent::Unchecked)
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not count an Activation; calling anyway (no budget is set)"
                );
                Ok(Taken {
                    counted: false,
                    ..taken
                })
            }
        }
    }

    /// Gives back an Activation FullStory did not spend (it did not answer with data).
    pub async fn release(&self, taken: Taken) {
        if !taken.counted {
            return;
        }
        if let Err(error) = self.store.release_activation(slot(&taken)).await {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not give back an Activation"
            );
        }
        self.refresh_metrics(&taken.cycle).await;
    }

    /// Counts a List Sessions call (it costs no Activation), apart, without waiting for it: calls are
    /// added up in memory and written at most once a second ([`UNMETERED_FLUSH`]), so a busy replica
    /// does not pay a store write per lookup for a figure that is only shown. A crash loses at most
    /// that second's count.
    pub fn count_list_sessions(&self) {
        self.unmetered.pending.fetch_add(1, Ordering::Relaxed);
        if self.unmetered.flushing.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(UNMETERED_FLUSH).await;
            // Cleared before taking the count: a call counted after it starts the next flush.
            this.unmetered.flushing.store(false, Ordering::Release);
            let calls = this.unmetered.pending.swap(0, Ordering::AcqRel);
            if calls == 0 {
                return;
            }
            let now = this.clock.now();
            let cycle = Cycle::containing(now, this.start_day).name();
            let day = now.format("%Y-%m-%d").to_string();
            let slot = ActivationSlot {
                cycle: &cycle,
                day: &day,
                kind: "list_sessions",
                purpose: Purpose::Automatic.as_str(),
            };
            let calls = i64::try_from(calls).unwrap_or(i64::MAX);
            if let Err(error) = this.store.count_unmetered(slot, calls).await {
                tracing::debug!(
                    error = format!("{error:#}"),
                    "could not count List Sessions calls"
                );
            }
        });
    }

    /// FullStory said the organisation's Activations are used up: no metered call until the next
    /// cycle, for every replica.
    pub async fn quota_exhausted(&self) -> Spent {
        let cycle = self.cycle();
        tracing::warn!(resets = %cycle.resets, "FullStory says the organisation's Activations are used up; no metered call until the next cycle");
        if let Err(error) = self
            .store
            .mark_quota_exhausted(&cycle.name(), self.clock.now())
            .await
        {
            tracing::warn!(
                error = format!("{error:#}"),
                "could not record that the quota is used up"
            );
        }
        if let Ok(true) = self
            .store
            .mark_activation_alert(&cycle.name(), ALERT_100)
            .await
        {
            self.alert(&format!(
                "FullStory says this organisation's Activations are used up: replaydesk makes no metered call until {}.",
                cycle.resets
            ))
            .await;
        }
        Spent::FullStory {
            resets: cycle.resets,
        }
    }

    /// This cycle's spending.
    ///
    /// # Errors
    /// The store could not be read.
    pub async fn report(&self) -> anyhow::Result<Report> {
        let cycle = self.cycle();
        let count = self.store.activation_count(&cycle.name()).await?;
        let days = self.store.activation_days(&cycle.name()).await?;
        self.set_gauges(&days);
        Ok(Report {
            cycle: cycle.start,
            resets: cycle.resets,
            budget: self.budget,
            reserve: self.reserve,
            automatic: count.automatic,
            on_request: count.on_request,
            exhausted_at: count.exhausted_at,
            days: days
                .into_iter()
                .map(|d| ReportDay {
                    day: d.day,
                    kind: d.kind,
                    purpose: d.purpose,
                    count: d.count,
                })
                .collect(),
        })
    }

    /// After an Activation was taken: the gauges, and the 80 % / 100 % alerts once per cycle.
    async fn after_change(&self, cycle: &Cycle, count: ActivationCount) {
        self.refresh_metrics(&cycle.name()).await;
        let Some(budget) = self.budget.filter(|b| *b > 0) else {
            return;
        };
        let used = count.used();
        for (bit, share) in [(ALERT_100, 100), (ALERT_80, 80)] {
            if used * 100 < i64::from(budget) * share || count.alerted & bit != 0 {
                continue;
            }
            if let Ok(true) = self.store.mark_activation_alert(&cycle.name(), bit).await {
                let text = format!(
                    "replaydesk has used {} of this cycle's {} FullStory Activations ({share} %); the cycle resets {}.{}",
                    thousands(used),
                    thousands(i64::from(budget)),
                    cycle.resets,
                    if share >= 100 {
                        " Digests and summaries are skipped until then."
                    } else {
                        ""
                    }
                );
                tracing::warn!(used, budget, share, "FullStory Activation budget alert");
                self.alert(&text).await;
            }
            break;
        }
    }

    async fn alert(&self, text: &str) {
        if let Some(alert) = self.alert.get() {
            alert.send(text).await;
        }
    }

    async fn refresh_metrics(&self, cycle: &str) {
        match self.store.activation_days(cycle).await {
            Ok(days) => self.set_gauges(&days),
            Err(error) => tracing::debug!(
                error = format!("{error:#}"),
                "activation gauges not refreshed"
            ),
        }
    }

    fn set_gauges(&self, days: &[ActivationDay]) {
        self.metrics.used.clear();
        self.metrics.unmetered.clear();
        for day in days {
            if day.kind == "list_sessions" {
                self.metrics
                    .unmetered
                    .get_or_create(&EndpointLabel {
                        endpoint: day.kind.clone(),
                    })
                    .inc_by(day.count);
            } else {
                self.metrics
                    .used
                    .get_or_create(&SpendLabels {
                        kind: day.kind.clone(),
                        purpose: day.purpose.clone(),
                    })
                    .inc_by(day.count);
            }
        }
    }
}

fn slot(taken: &Taken) -> ActivationSlot<'_> {
    ActivationSlot {
        cycle: &taken.cycle,
        day: &taken.day,
        kind: taken.kind.as_str(),
        purpose: taken.purpose.as_str(),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 12, 0, 0)
            .single()
            .expect("a valid date")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
    }

    #[test]
    fn a_cycle_starts_on_its_day_and_resets_a_month_later() {
        let c = Cycle::containing(at(2026, 12, 7), 1);
        assert_eq!((c.start, c.resets), (date(2026, 12, 1), date(2027, 1, 1)));
        let c = Cycle::containing(at(2026, 12, 7), 15);
        assert_eq!(
            (c.start, c.resets),
            (date(2026, 11, 15), date(2026, 12, 15))
        );
        let c = Cycle::containing(at(2026, 12, 15), 15);
        assert_eq!((c.start, c.resets), (date(2026, 12, 15), date(2027, 1, 15)));
        let c = Cycle::containing(at(2027, 1, 3), 28);
        assert_eq!((c.start, c.resets), (date(2026, 12, 28), date(2027, 1, 28)));
        assert_eq!(c.name(), "2026-12-28");
    }

    #[test]
    fn the_skipped_line_says_how_much_of_what_and_when_it_resets() {
        let full = Spent::Budget {
            used: 1000,
            limit: 1000,
            budget: 1000,
            resets: date(2027, 1, 1),
        };
        assert_eq!(
            full.to_string(),
            "FullStory Activation budget for this cycle used: 1,000 of 1,000; resets 2027-01-01"
        );
        let automatic = Spent::Budget {
            used: 800,
            limit: 800,
            budget: 1000,
            resets: date(2027, 1, 1),
        };
        assert_eq!(
            automatic.to_string(),
            "FullStory Activation budget for this cycle used: 800 of 1,000 (the other 200 are kept for agents' requests); resets 2027-01-01"
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
