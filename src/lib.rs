//! replaydesk puts a customer's FullStory session replays in front of the person helping them, in the
//! tool they already work in (Slack, Zendesk, Intercom, Discord).
//!
//! The flow of one request: an adapter verifies and parses a platform's request, records it durably with
//! the job it asks for (`queue`, `store`) and acknowledges; a worker runs the job through `lookup`, the
//! one core, which calls `fullstory` (rate budget, cache, retries through `outbound`); the adapter renders
//! the result and posts it once (the effect ledger). See DESIGN.md in the shared docs for the whole picture.

pub mod activations;
pub mod adapters;
pub mod answer;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod demo;
pub mod erasure;
pub mod escalate;
pub mod fullstory;
pub mod identity;

pub mod lookup;
pub mod metrics;
pub mod outbound;
pub mod privacy;
pub mod queue;
pub mod render;
pub mod server;
pub mod signing;
pub mod source_limits;
pub mod store;
pub mod telemetry;
pub mod wiring;

/// Installs rustls' `ring` crypto provider as the process default (idempotent). Called at start-up and
/// by [`outbound::http_client`], so no client is ever built without it.
pub fn install_crypto_provider() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
