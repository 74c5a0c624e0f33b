//! Zendesk: a ticket webhook becomes one internal note with the replays, never the same session twice.

pub mod verify;
