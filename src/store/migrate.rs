//! Schema migrations, run by sqlx's `Migrator` when the store opens ([`super::open`]).
//!
//! # Adding a migration
//! Add `src/store/migrations/<backend>/<VERSION>_<NAME>.sql`, the next version (four digits, as the
//! others), one file per backend that needs it (both, with the same version, when both do): nothing
//! else. `build.rs` embeds every file of the two folders, as sqlx's `migrate!` would. A released
//! migration is never edited: its SHA-384 checksum is recorded when it runs, and a store whose
//! recorded checksum differs from the binary's refuses to open (sqlx's "previously applied but has
//! been modified"). Every migration runs inside the store's migration transaction, so sqlx's
//! `-- no-transaction` has no effect here; a backend may skip a version (PostgreSQL has no 6).
//!
//! # How they run
//! - In one write transaction holding the store's migration lock (`BEGIN IMMEDIATE` on SQLite, a
//!   transaction-scoped advisory lock on PostgreSQL): processes that start together migrate one after
//!   the other, and a failed migration leaves nothing behind. sqlx's migrator runs inside it (each
//!   migration in a savepoint) with its own locking off: SQLite's is a no-op, and PostgreSQL's is a
//!   session lock that would stay held on a pooled connection after a failure.
//! - `_sqlx_migrations` records each migration applied (version, description, checksum, time): the
//!   table `sqlx migrate info` reads.
//! - Applied versions this binary does not know (a newer replica migrated first, in a rolling
//!   upgrade) are a warning, not a failure.
//!
//! # Stores created before sqlx's migrator
//! replaydesk's own runner recorded the versions it applied in `schema_migrations` (version, name,
//! applied_at). Every version listed there that `_sqlx_migrations` does not have yet is recorded as
//! applied (sqlx's `skip`: the checksum of the binary's file, nothing run), then the migrator runs
//! what is left. `schema_migrations` is left as it was: an older binary started on the same store (a
//! rollback) still finds its migrations applied.

use std::borrow::Cow;

use anyhow::Context;
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migrate, Migration, MigrationType, Migrator};

use super::db::{SqlStore, with_db};
use super::dialect::Dialect;

/// The table sqlx's migrator keeps.
pub(crate) const TABLE: &str = "_sqlx_migrations";

/// The versions replaydesk's runner before sqlx's applied (`version, name, applied_at`).
const LEGACY_VERSIONS: &str = "SELECT version FROM schema_migrations ORDER BY version";
const LEGACY_TABLE: &str = "schema_migrations";

/// A migration file, embedded by `build.rs` (`migrations_<backend>.rs` in `OUT_DIR`).
pub(crate) struct Embedded {
    pub version: i64,
    /// sqlx's description: the file name's `<NAME>`, `_` as spaces.
    pub description: &'static str,
    pub sql: &'static str,
}

/// What a backend brings to its migrations, beside its [`Dialect`]: its files and how it keeps other
/// processes out while migrating. Implemented in `sqlite.rs` and `postgres.rs`; a trait of this file
/// (not of the dialect) because its files are [`Embedded`] here.
pub(crate) trait Migrations: Dialect {
    /// The backend's migrations, embedded by `build.rs`.
    const MIGRATIONS: &'static [Embedded];

    /// One row, one boolean: whether the table named `$1` exists (where unqualified names resolve).
    const TABLE_EXISTS: &'static str;

    /// Inside the migration transaction: keep other processes out.
    async fn lock_migrations(
        &self,
        tx: &mut sqlx::Transaction<'static, Self::Db>,
    ) -> sqlx::Result<()>;
}

/// sqlx's migrator for a backend's migrations: its locking off (the store's lock covers the whole
/// transaction), applied versions it does not know tolerated.
fn migrator(migrations: &'static [Embedded]) -> Migrator {
    let mut migrator = Migrator::with_migrations(
        migrations
            .iter()
            .map(|m| {
                Migration::new(
                    m.version,
                    Cow::Borrowed(m.description),
                    MigrationType::Simple,
                    m.sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    );
    migrator.set_locking(false).set_ignore_missing(true);
    migrator
}

fn migrations_of<P: Migrations>(_pool: &P) -> &'static [Embedded] {
    P::MIGRATIONS
}

fn table_exists_of<P: Migrations>(_pool: &P) -> &'static str {
    P::TABLE_EXISTS
}

impl SqlStore {
    /// Applies the backend's pending migrations in one locked transaction (see the module docs).
    pub(crate) async fn migrate(&self) -> anyhow::Result<()> {
        with_db!(self, |pool| {
            let migrator = migrator(migrations_of(pool));
            let mut tx = pool.begin_write().await?;
            pool.lock_migrations(&mut tx).await?;
            tx.ensure_migrations_table(TABLE).await?;
            let mut recorded: Vec<i64> = tx
                .list_applied_migrations(TABLE)
                .await?
                .iter()
                .map(|m| m.version)
                .collect();
            let (legacy,): (bool,) = sqlx::query_as(table_exists_of(pool))
                .bind(LEGACY_TABLE)
                .fetch_one(&mut *tx)
                .await
                .context("looking for schema_migrations")?;
            if legacy {
                let listed: Vec<(i64,)> =
                    sqlx::query_as(LEGACY_VERSIONS).fetch_all(&mut *tx).await?;
                for m in migrator.iter() {
                    if listed.contains(&(m.version,)) && !recorded.contains(&m.version) {
                        tx.skip(TABLE, m).await?;
                        recorded.push(m.version);
                        tracing::info!(
                            version = m.version,
                            "migration recorded as applied (from schema_migrations)"
                        );
                    }
                }
            }
            let newest_known = migrator.iter().map(|m| m.version).max().unwrap_or(0);
            if let Some(newest) = recorded.iter().max().filter(|v| **v > newest_known) {
                tracing::warn!(
                    schema_version = newest,
                    "the database schema is newer than this binary knows"
                );
            }
            // `run_direct` is `run` on a connection we hold (sqlx's way around `Acquire`'s lifetimes
            // in a `Send` future): here, the locked transaction's.
            migrator
                .run_direct(None, &mut *tx, false)
                .await
                .context("applying migrations")?;
            tx.commit().await?;
            for m in migrator.iter().filter(|m| !recorded.contains(&m.version)) {
                tracing::info!(version = m.version, name = %m.description, "applied migration");
            }
            Ok(())
        })
    }
}
