//! `replaydesk serve`: the HTTP server, the job workers and the adapters' own connections until
//! SIGTERM/SIGINT, then a graceful shutdown: stop accepting, finish in-flight requests, let running jobs
//! finish within `server.shutdown_grace`, release the leases of the rest.

use anyhow::Context;

use crate::console::Failure;
use crate::{clock::Clock, config::Config, server, wiring};

pub async fn run(config: Config) -> Result<(), Failure> {
    let listen = config.server.listen.clone();
    wiring::log_platforms(&config);
    if !config.fullstory.api_key.is_set() {
        tracing::warn!("fullstory.api_key is not set: lookups will fail until it is");
    }
    server::connections::raise_file_limit(config.server.max_connections);
    let service = wiring::Service::build(config, Clock::system()).await?;
    learn_organisation(&service.app);
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("could not listen on server.listen = {listen}"))?;
    tracing::info!(address = %listener.local_addr().context("no local address")?, "listening");
    service
        .run_until(listener, server::shutdown_signal())
        .await?;
    Ok(())
}

/// Slack previews FullStory links of the key's organisation only: learn which one it is now (in the
/// background: start-up does not wait on FullStory) and say whether previews are on. When FullStory is
/// unreachable, the first preview asks again.
fn learn_organisation(app: &std::sync::Arc<crate::app::App>) {
    if !app.config.fullstory.api_key.is_set() || !app.config.slack.signing_secret.is_set() {
        return;
    }
    let app = app.clone();
    tokio::spawn(async move {
        match app.organisation.id(&app.fullstory).await {
            Ok(Some(org)) => {
                tracing::info!(org = %org, "slack previews: on, for this FullStory organisation's links")
            }
            Ok(None) => tracing::warn!("slack previews {}", crate::fullstory::org::PREVIEWS_OFF),
            Err(error) => {
                tracing::warn!(%error, "slack previews: FullStory did not answer which organisation the key belongs to; asked again at the first preview")
            }
        }
    });
}
