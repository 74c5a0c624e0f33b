//! Escalations (issue 25): which tracker issue a (source, session) became, so that the same ticket,
//! thread or message escalated twice about the same customer session gives one issue.
//!
//! # Contract
//! * One row per (source, session), inserted by the first job that asks ([`SqlStore::begin_escalation`]):
//!   that job owns it; any other reads the row as it stands (its issue once recorded).
//! * A row whose owner job finished without recording its issue (it died, or was cancelled) may be
//!   taken over by another job ([`SqlStore::take_over_escalation`]), only from that owner: two jobs
//!   racing to take it over cannot both win.
//! * The issue is recorded as soon as it exists ([`SqlStore::record_escalation_issue`]), the link to
//!   the session after it ([`SqlStore::finish_escalation`]); only then is the row `done`.
//! * The customer is kept as the audit trail's keyed hash, never the address: an erasure finds the rows
//!   by it ([`SqlStore::escalations_of_customer`]) and marks each link it removed
//!   ([`SqlStore::mark_escalation_unlinked`]). Retention leaves the table alone (it holds no address).

use anyhow::Context;
use chrono::{DateTime, Utc};

use super::db::{SqlStore, with_db};
use super::dialect::Dialect;
use super::{from_ms, to_ms};

/// One escalation, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationRecord {
    pub source: String,
    /// The customer session escalated ('' when none was found).
    pub session: String,
    /// `linear` or `jira`.
    pub tracker: String,
    pub owner_job: i64,
    /// `intent` until the issue and its link are recorded, then `done`.
    pub state: String,
    pub customer_hash: String,
    /// What finds the issue again on the tracker after a crash (Linear: the issue's id is derived from
    /// it; Jira: the label `replaydesk-<tag>`).
    pub tag: String,
    pub issue_id: Option<String>,
    pub issue_key: Option<String>,
    pub issue_url: Option<String>,
    /// replaydesk made the issue (not an existing one linked).
    pub created: bool,
    /// The attachment (Linear) or remote link (Jira) replaydesk added.
    pub link_id: Option<String>,
    /// When an erasure removed that link.
    pub unlinked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl EscalationRecord {
    pub fn is_done(&self) -> bool {
        self.state == "done"
    }
}

/// A new escalation's row, before its issue exists.
#[derive(Clone, Debug)]
pub struct NewEscalation<'a> {
    pub source: &'a str,
    pub session: &'a str,
    pub tracker: &'a str,
    pub job: i64,
    pub customer_hash: &'a str,
    pub tag: &'a str,
}

type EscalationRow = (
    String,
    String,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
    Option<String>,
    Option<i64>,
    i64,
);

macro_rules! escalation_columns {
    () => {
        "source, session, tracker, owner_job, state, customer_hash, tag, issue_id, issue_key, \
         issue_url, created, link_id, unlinked_at, created_at"
    };
}

fn from_row(row: EscalationRow) -> EscalationRecord {
    let (
        source,
        session,
        tracker,
        owner_job,
        state,
        customer_hash,
        tag,
        issue_id,
        issue_key,
        issue_url,
        created,
        link_id,
        unlinked_at,
        created_at,
    ) = row;
    EscalationRecord {
        source,
        session,
        tracker,
        owner_job,
        state,
        customer_hash,
        tag,
        issue_id,
        issue_key,
        issue_url,
        created: created != 0,
        link_id,
        unlinked_at: unlinked_at.map(from_ms),
        created_at: from_ms(created_at),
    }
}

const GET: &str = concat!(
    "SELECT ",
    escalation_columns!(),
    " FROM escalations WHERE source = $1 AND session = $2"
);
const INSERT: &str = "INSERT INTO escalations \
     (source, session, tracker, owner_job, state, customer_hash, tag, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, 'intent', $5, $6, $7, $7) ON CONFLICT (source, session) DO NOTHING";
const TAKE_OVER: &str = "UPDATE escalations SET owner_job = $4, tracker = $5, updated_at = $6 \
     WHERE source = $1 AND session = $2 AND owner_job = $3 AND state = 'intent'";
const ISSUE: &str = "UPDATE escalations SET issue_id = $4, issue_key = $5, issue_url = $6, \
     created = $7, updated_at = $8 WHERE source = $1 AND session = $2 AND owner_job = $3";
const FINISH: &str = "UPDATE escalations SET link_id = $4, state = 'done', updated_at = $5 \
     WHERE source = $1 AND session = $2 AND owner_job = $3";
const OF_CUSTOMER: &str = concat!(
    "SELECT ",
    escalation_columns!(),
    " FROM escalations WHERE customer_hash = $1 ORDER BY created_at, source, session"
);
const UNLINKED: &str = "UPDATE escalations SET unlinked_at = $3, updated_at = $3 \
     WHERE source = $1 AND session = $2";

/// Runs one lease-like update (`$sql` with `$arg`s bound in order) in a write transaction; whether it
/// changed a row.
macro_rules! update {
    ($self:expr, $sql:expr, $($arg:expr),+) => {{
        let n = with_db!($self, |pool| {
            let mut tx = pool.begin_write().await?;
            let n = sqlx::query($sql)
                $(.bind($arg))+
                .execute(&mut *tx)
                .await
                .context("updating an escalation")?
                .rows_affected();
            tx.commit().await?;
            n
        });
        Ok(n == 1)
    }};
}

impl SqlStore {
    /// The escalation of `session` from `source`, if one was begun.
    pub async fn escalation(
        &self,
        source: &str,
        session: &str,
    ) -> anyhow::Result<Option<EscalationRecord>> {
        let row: Option<EscalationRow> = with_db!(self, |pool| {
            sqlx::query_as(GET)
                .bind(source)
                .bind(session)
                .fetch_optional(pool.reader())
                .await
                .context("reading an escalation")?
        });
        Ok(row.map(from_row))
    }

    /// Begins the escalation `new` unless one of the same (source, session) exists; returns the row as
    /// stored: the caller owns it when its `owner_job` is the caller's job.
    pub async fn begin_escalation(
        &self,
        new: &NewEscalation<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<EscalationRecord> {
        let row: EscalationRow = with_db!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(INSERT)
                .bind(new.source)
                .bind(new.session)
                .bind(new.tracker)
                .bind(new.job)
                .bind(new.customer_hash)
                .bind(new.tag)
                .bind(to_ms(now))
                .execute(&mut *tx)
                .await
                .context("beginning an escalation")?;
            let row = sqlx::query_as(GET)
                .bind(new.source)
                .bind(new.session)
                .fetch_one(&mut *tx)
                .await
                .context("reading the escalation back")?;
            tx.commit().await?;
            row
        });
        Ok(from_row(row))
    }

    /// Makes `job` the owner of an unfinished escalation owned by `from_job` (which ended without
    /// finishing it); `false` when the row is no longer `from_job`'s or no longer unfinished.
    pub async fn take_over_escalation(
        &self,
        source: &str,
        session: &str,
        from_job: i64,
        job: i64,
        tracker: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        update!(
            self,
            TAKE_OVER,
            source,
            session,
            from_job,
            job,
            tracker,
            to_ms(now)
        )
    }

    /// Records the issue of `job`'s escalation as soon as it exists.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_escalation_issue(
        &self,
        source: &str,
        session: &str,
        job: i64,
        issue: (&str, &str, &str),
        created: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        let (id, key, url) = issue;
        update!(
            self,
            ISSUE,
            source,
            session,
            job,
            id,
            key,
            url,
            i64::from(created),
            to_ms(now)
        )
    }

    /// Records the link replaydesk added to the issue; the escalation is `done`.
    pub async fn finish_escalation(
        &self,
        source: &str,
        session: &str,
        job: i64,
        link_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        update!(self, FINISH, source, session, job, link_id, to_ms(now))
    }

    /// Every escalation about the customer whose keyed hash is `customer_hash`, oldest first.
    pub async fn escalations_of_customer(
        &self,
        customer_hash: &str,
    ) -> anyhow::Result<Vec<EscalationRecord>> {
        let rows: Vec<EscalationRow> = with_db!(self, |pool| {
            sqlx::query_as(OF_CUSTOMER)
                .bind(customer_hash)
                .fetch_all(pool.reader())
                .await
                .context("reading a customer's escalations")?
        });
        Ok(rows.into_iter().map(from_row).collect())
    }

    /// Records that an erasure removed the link of the escalation of `session` from `source`.
    pub async fn mark_escalation_unlinked(
        &self,
        source: &str,
        session: &str,
        now: DateTime<Utc>,
    ) -> anyhow::Result<bool> {
        update!(self, UNLINKED, source, session, to_ms(now))
    }
}
