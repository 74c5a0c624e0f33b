//! `replaydesk serve`: the HTTP server, the job workers and the adapters' own connections until
//! SIGTERM/SIGINT, then a graceful shutdown: stop accepting, finish in-flight requests, let running jobs
//! finish within `server.shutdown_grace`, release the leases of the rest.

use anyhow::Context;

use super::Failure;
use crate::{clock::Clock, config::Config, server, wiring};

pub async fn run(config: Config) -> Result<(), Failure> {
    let listen = config.server.listen.clone();
    wiring::log_platforms(&config);
    if !config.fullstory.api_key.is_set() {
        tracing::warn!("fullstory.api_key is not set: lookups will fail until it is");
    }
    server::connections::raise_file_limit(config.server.max_connections);
    let service = wiring::Service::build(config, Clock::system()).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("could not listen on server.listen = {listen}"))?;
    tracing::info!(address = %listener.local_addr().context("no local address")?, "listening");
    service
        .run_until(listener, server::shutdown_signal())
        .await?;
    Ok(())
}
