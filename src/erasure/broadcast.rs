//! Erasure reaches every replica's cache.
//!
//! Each replica caches session lists, events and summaries in its own memory. The erasure job clears
//! the cache of the process it runs in, then announces the erasure on the store (PostgreSQL `NOTIFY`,
//! which every replica shares; see [`crate::store::SqlStore::announce_erasure`]), and every replica's
//! listener drops its own copy. The announcement names the customer by the audit trail's keyed hash
//! (`privacy.audit_key`, the same on every replica), never by the email: the listener drops every
//! cached list whose identity hashes the same. It also names the erased sessions, whose events and
//! summaries are dropped; when they do not fit in one notification, every cached event and summary is.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{app::App, fullstory::SessionId, identity::Identity};

/// PostgreSQL refuses notification payloads of 8000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The keyed hash of the erased identity ([`crate::privacy::Auditor::hash`]).
    pub identity: String,
    /// The erased sessions; empty with `all_sessions`.
    #[serde(default)]
    pub sessions: Vec<String>,
    /// Too many sessions to name: drop every cached event and summary.
    #[serde(default)]
    pub all_sessions: bool,
}

impl Announcement {
    pub fn new(identity: String, sessions: &[SessionId]) -> Self {
        let mut announcement = Self {
            identity,
            sessions: sessions.iter().map(|s| s.as_str().to_owned()).collect(),
            all_sessions: false,
        };
        if announcement.to_payload().len() > MAX_PAYLOAD {
            announcement.sessions.clear();
            announcement.all_sessions = true;
        }
        announcement
    }

    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Clears this process's cache of what `announcement` names.
pub async fn apply(app: &App, announcement: &Announcement) {
    let auditor = app.auditor.clone();
    let hash = announcement.identity.clone();
    app.sessions
        .invalidate_where(move |who: &Identity| auditor.hash(who) == hash);
    if announcement.all_sessions {
        app.sessions.forget_all_sessions();
    } else {
        let ids: Vec<SessionId> = announcement
            .sessions
            .iter()
            .filter_map(|s| SessionId::new(s.as_str()))
            .collect();
        app.sessions.forget_sessions(&ids).await;
    }
}

/// Listens for erasures announced by any replica and applies each to this one's cache. `None` when
/// the store has no announcements (SQLite: one replica).
pub async fn listen(app: Arc<App>) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let (to, mut from) = tokio::sync::mpsc::unbounded_channel();
    let Some(listener) = app.store.listen_erasures(to).await? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(async move {
        // Aborting this task drops the guard, which stops the LISTEN task too.
        let _listener = AbortOnDrop(listener);
        while let Some(payload) = from.recv().await {
            match serde_json::from_str::<Announcement>(&payload) {
                Ok(announcement) => {
                    apply(&app, &announcement).await;
                    tracing::info!("erasure announced by a replica: cache cleared");
                }
                Err(error) => tracing::warn!(%error, "unreadable erasure announcement ignored"),
            }
        }
    })))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn too_many_sessions_to_name_become_all_sessions() {
        let few: Vec<SessionId> = (0..3)
            .map(|i| SessionId::new(format!("123:{i}")).unwrap())
            .collect();
        let announcement = Announcement::new("abc".into(), &few);
        assert_eq!(announcement.sessions, ["123:0", "123:1", "123:2"]);
        assert!(!announcement.all_sessions);
        let back: Announcement = serde_json::from_str(&announcement.to_payload()).unwrap();
        assert_eq!(back, announcement);

        let many: Vec<SessionId> = (0..1000)
            .map(|i| SessionId::new(format!("5191865402245120:{i:016}")).unwrap())
            .collect();
        let announcement = Announcement::new("abc".into(), &many);
        assert!(announcement.all_sessions && announcement.sessions.is_empty());
        assert!(announcement.to_payload().len() < MAX_PAYLOAD);
    }
}
