//! Slack: `/replays`, the "Find replays" message shortcut, `@replaydesk` mentions, Summarize buttons.

pub mod verify;
