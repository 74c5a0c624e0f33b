//! The audit trail: who looked up whom, with identities as keyed hashes. Part of privacy (see
//! [`crate::privacy`]), kept below it and below the core: [`crate::app::App`] holds the [`Auditor`]
//! and every job records through it.
//!
//! The hash is HMAC-SHA256 under `privacy.audit_key` of the identity's normal form (`email:jane@acme.com`,
//! `uid:12345`), hex, cut to 32 characters: stable for one key, useless without it. An auditor asking
//! "what happened to jane@acme.com" hashes the address the same way and filters on the hash.
//!
//! The key is never kept beside the hashes: with someone's copy of the database alone, a customer's
//! hash cannot be recomputed. Without `privacy.audit_key`, one is generated once into a file of mode
//! 0600 (`privacy.audit_key_file`, by default beside a SQLite store: `<store file>.audit-key`). A key
//! an older version generated into the database is moved into that file on first start (hashes stay
//! comparable). A PostgreSQL store (several replicas) needs `privacy.audit_key` or an
//! `audit_key_file` shared by every replica: start-up says so. An in-memory store gets a key for the
//! life of the process. Rotation: see docs/privacy.md ("Audit").

use std::{path::Path, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{
    config::Secret,
    identity::Identity,
    store::{AuditRecord, SqlStore},
};

/// Who asked, for the audit log and access decisions. Never holds a customer email.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requester {
    /// `slack`, `zendesk`, `discord`, `cli`.
    pub platform: String,
    /// Workspace, Zendesk account or guild.
    pub tenant: String,
    /// The platform's user id of the person asking.
    pub user: String,
    /// Channel, ticket or thread the question came from.
    pub place: Option<String>,
}

/// Where versions before 2026-12 kept a generated key (in the database: moved out on first start).
const LEGACY_SETTING: &str = "audit_key";

#[derive(Clone)]
pub struct Auditor {
    store: Arc<SqlStore>,
    key: Arc<[u8]>,
}

impl Auditor {
    /// Uses `privacy.audit_key`, else the key in `key_file` (made on first use). See the module docs.
    pub async fn new(
        store: Arc<SqlStore>,
        configured: &Secret,
        key_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let key = match (configured.expose(), key_file) {
            (Some(key), _) => key.to_owned(),
            (None, Some(path)) => key_from_file(&store, path).await?,
            (None, None) if store.backend() == "postgres" => anyhow::bail!(
                "privacy.audit_key is not set: with a PostgreSQL store every replica must hash with \
                 the same key, kept outside the database. Set privacy.audit_key (or \
                 privacy.audit_key_file, the same file on every replica). A key an older version \
                 generated is in the settings table (key 'audit_key'): move it there to keep old \
                 hashes comparable, then delete that row"
            ),
            (None, None) => fresh_key(),
        };
        Ok(Self {
            store,
            key: key.into_bytes().into(),
        })
    }

    /// The keyed hash of one identity.
    pub fn hash(&self, identity: &Identity) -> String {
        let normal = match identity {
            Identity::Email(email) => format!("email:{}", email.as_str()),
            Identity::Uid(uid) => format!("uid:{}", uid.as_str()),
        };
        let mac = crate::signing::hmac_sha256(&self.key, &[normal.as_bytes()]);
        hex::encode(&mac[..16])
    }

    /// The keyed hash of `text` under this auditor's key, for `purpose` (so two uses of one text never
    /// give the same hash): stable for one key, useless without it. An escalation's tag
    /// ([`crate::escalate`]) is one: it finds the issue again without saying what it is about.
    pub fn hash_text(&self, purpose: &str, text: &str) -> String {
        let mac =
            crate::signing::hmac_sha256(&self.key, &[purpose.as_bytes(), b"\n", text.as_bytes()]);
        hex::encode(&mac[..16])
    }

    /// One action as an audit entry, its identities hashed (not yet written: [`Self::record`] writes
    /// one now; a job hands one to [`crate::queue::JobContext::audit`], written with its outcome).
    pub fn entry(
        &self,
        at: DateTime<Utc>,
        action: &str,
        requester: &Requester,
        identities: &[Identity],
        sessions: usize,
        detail: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            id: 0,
            at,
            action: action.to_owned(),
            platform: requester.platform.clone(),
            tenant: requester.tenant.clone(),
            actor: requester.user.clone(),
            place: requester.place.clone(),
            identities: identities.iter().map(|i| self.hash(i)).collect(),
            sessions: i64::try_from(sessions).unwrap_or(i64::MAX),
            detail,
        }
    }

    /// Records one action; a failure to record is logged, never fatal to the action itself.
    pub async fn record(
        &self,
        at: DateTime<Utc>,
        action: &str,
        requester: &Requester,
        identities: &[Identity],
        sessions: usize,
        detail: Option<String>,
    ) {
        let record = self.entry(at, action, requester, identities, sessions, detail);
        if let Err(error) = self.store.record_audit(&record).await {
            tracing::warn!(error = %format!("{error:#}"), action, "could not record the audit entry");
        }
    }
}

fn fresh_key() -> String {
    (0..32)
        .map(|_| format!("{:02x}", fastrand::u8(..)))
        .collect()
}

/// The key in `path`; made there first (mode 0600) from the database's legacy key, or fresh.
async fn key_from_file(store: &Arc<SqlStore>, path: &Path) -> anyhow::Result<String> {
    if let Some(key) = read_key(path)? {
        return Ok(key);
    }
    let key = match store.setting_or_insert(LEGACY_SETTING, "").await? {
        legacy if !legacy.is_empty() => legacy,
        _ => fresh_key(),
    };
    // Written whole to a private temporary file, then linked into place: another process starting at
    // the same moment sees either no file or the whole key, never an empty one.
    let temp = path.with_extension(format!("tmp-{}", std::process::id()));
    let written = {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(key.as_bytes())?;
                file.sync_all()
            })
            .and_then(|()| std::fs::hard_link(&temp, path))
    };
    let _ = std::fs::remove_file(&temp);
    let key = match written {
        Ok(()) => key,
        // Another process made it first: theirs is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key(path)?
            .ok_or_else(|| anyhow::anyhow!("{} exists but is empty", path.display()))?,
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "writing the audit key to privacy.audit_key_file = {}",
                path.display()
            )));
        }
    };
    // Out of the database now that the file holds it.
    store.take_setting(LEGACY_SETTING).await?;
    Ok(key)
}

fn read_key(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_owned()).filter(|k| !k.is_empty())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "reading the audit key from privacy.audit_key_file = {}",
            path.display()
        ))),
    }
}
