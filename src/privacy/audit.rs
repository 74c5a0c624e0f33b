//! The audit trail: who looked up whom, with identities as keyed hashes.
//!
//! The hash is HMAC-SHA256 under `privacy.audit_key` of the identity's normal form (`email:jane@acme.com`,
//! `uid:12345`), hex, cut to 32 characters: stable for one key, useless without it. An auditor asking
//! "what happened to jane@acme.com" hashes the address the same way and filters on the hash.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    config::Secret,
    identity::Identity,
    jobs::Requester,
    store::{AuditRecord, Store},
};

/// The store setting holding a generated audit key when none is configured.
const GENERATED_KEY: &str = "audit_key";

#[derive(Clone)]
pub struct Auditor {
    store: Arc<dyn Store>,
    key: Arc<[u8]>,
}

impl Auditor {
    /// Uses `privacy.audit_key`, or the install's generated key (made on first use).
    pub async fn new(store: Arc<dyn Store>, configured: &Secret) -> anyhow::Result<Self> {
        let key = match configured.expose() {
            Some(key) => key.to_owned(),
            None => {
                let fresh: String = (0..32)
                    .map(|_| format!("{:02x}", fastrand::u8(..)))
                    .collect();
                store.setting_or_insert(GENERATED_KEY, &fresh).await?
            }
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
        let mac = crate::adapters::signing::hmac_sha256(&self.key, &[normal.as_bytes()]);
        hex::encode(&mac[..16])
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
        let record = AuditRecord {
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
        };
        if let Err(error) = self.store.record_audit(&record).await {
            tracing::warn!(error = %format!("{error:#}"), action, "could not record the audit entry");
        }
    }
}
