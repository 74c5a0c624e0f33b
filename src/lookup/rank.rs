//! Ranking: newest first, within the lookback window, at most `limit`, and the session that was live at
//! or just before `around` marked likely (the newest when there is no `around`).

use chrono::{DateTime, Utc};

use super::FoundSession;
use crate::fullstory::Session;

pub fn rank(
    mut sessions: Vec<Session>,
    since: DateTime<Utc>,
    around: Option<DateTime<Utc>>,
    limit: usize,
) -> Vec<FoundSession> {
    sessions.retain(|s| s.created >= since);
    sessions.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    sessions.truncate(limit);
    // Newest first, so the first session that started at or before `around` is the one live then.
    let likely = match around {
        None => (!sessions.is_empty()).then_some(0),
        Some(around) => sessions.iter().position(|s| s.created <= around),
    };
    sessions
        .into_iter()
        .enumerate()
        .map(|(i, s)| FoundSession {
            id: s.id,
            url: s.url,
            created: s.created,
            likely: Some(i) == likely,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::fullstory::SessionId;

    fn session(id: &str, hour: u32) -> Session {
        Session {
            id: SessionId::new(id).unwrap(),
            user_id: None,
            created: Utc.with_ymd_and_hms(2026, 11, 20, hour, 0, 0).unwrap(),
            url: format!("https://app.fullstory.com/ui/o/session/{id}"),
        }
    }

    fn at(hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, hour, minute, 0).unwrap()
    }

    #[test]
    fn sessions_are_newest_first_and_the_newest_is_likely_without_a_time() {
        let ranked = rank(
            vec![session("a:1", 8), session("a:3", 12), session("a:2", 10)],
            at(0, 0),
            None,
            10,
        );
        let ids: Vec<_> = ranked.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["a:3", "a:2", "a:1"]);
        assert!(ranked[0].likely && !ranked[1].likely && !ranked[2].likely);
    }

    #[test]
    fn the_session_live_just_before_the_ticket_is_likely() {
        let ranked = rank(
            vec![session("a:1", 8), session("a:2", 10), session("a:3", 12)],
            at(0, 0),
            Some(at(11, 30)),
            10,
        );
        assert!(
            ranked
                .iter()
                .find(|s| s.id.as_str() == "a:2")
                .unwrap()
                .likely
        );
        assert_eq!(ranked.iter().filter(|s| s.likely).count(), 1);
    }

    #[test]
    fn no_session_is_likely_when_all_started_after_the_ticket() {
        let ranked = rank(vec![session("a:3", 12)], at(0, 0), Some(at(9, 0)), 10);
        assert!(!ranked[0].likely);
    }

    #[test]
    fn old_sessions_and_those_past_the_limit_are_left_out() {
        let ranked = rank(
            vec![session("a:1", 8), session("a:2", 10), session("a:3", 12)],
            at(9, 0),
            None,
            1,
        );
        assert_eq!(ranked.len(), 1);
        assert_eq!(ranked[0].id.as_str(), "a:3");
    }
}
