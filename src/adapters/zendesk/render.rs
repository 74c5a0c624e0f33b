//! The Zendesk internal note, as HTML: the desks' shared note ([`crate::render::note`]), which Zendesk
//! takes as a comment's `html_body` (and, for the plain fallback, its `body`). Its snapshots stay here,
//! where Zendesk's note was first written.

pub use crate::render::note::*;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{
        answer::Answer,
        lookup::{LookupResult, SummaryOutcome},
        render::{
            self,
            sample::{self, sample_result},
        },
    };

    /// The shared sample ([`render::sample`]) with jane's summary, as a ticket's note shows it.
    fn result() -> LookupResult {
        let mut result = sample_result();
        result.identities[0].summary = Some(SummaryOutcome::Ready(
            "Tried to pay twice; the <Pay> button did nothing.\nGave up.".into(),
        ));
        result
    }

    #[test]
    fn the_sessions_note_marks_the_likely_session_with_its_digest_and_summary() {
        insta::assert_snapshot!(sessions_note(&result(), "rd-42-note-9f3a01c2"));
    }

    #[test]
    fn the_empty_note_says_so_per_identity_without_showing_an_address() {
        let mut empty = result();
        for group in &mut empty.identities {
            group.sessions.clear();
        }
        let html = empty_note(&empty, "rd-7-note-00000001");
        assert!(!html.contains("jane@"));
        insta::assert_snapshot!(html);
    }

    #[test]
    fn the_failure_and_summary_notes_escape_what_came_from_outside() {
        insta::assert_snapshot!(failure_note(
            "FullStory is \"down\" <again>",
            "job 12 (an admin can run `replaydesk jobs retry 12`)",
            "rd-12-failed-0000abcd"
        ));
        insta::assert_snapshot!(summary_note(
            Some("https://app.fullstory.com/ui/o-1/session/5:3"),
            &SummaryOutcome::Unavailable("summaries are off: set fullstory.summary_profile".into()),
            "rd-13-summary-0000abcd"
        ));
    }

    #[test]
    fn the_plain_note_is_text_with_the_links_only() {
        let result = result();
        let job = render::test_job(&result);
        let lines = plain_lines(&Answer::Sessions {
            job: &job,
            result: &result,
        });
        insta::assert_snapshot!(plain_note(&lines, "rd-42-note-plain-9f3a01c2"));
    }

    #[test]
    fn only_web_links_become_links() {
        let mut odd = result();
        odd.identities[0].sessions[1].url = "javascript:alert(1)".into();
        let html = sessions_note(&odd, "rd-1-note-00000000");
        assert!(!html.contains("javascript:"));
        let likely = format!(
            "<li>2026-11-24 14:02 UTC · session {} · <strong>likely</strong>",
            sample::LIKELY
        );
        assert!(html.contains(&likely), "{html}");
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">Tom & 'Jerry'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;"
        );
    }
}
