//! `replaydesk serve`: the HTTP server, the job workers and the adapters' own connections until
//! SIGTERM/SIGINT, then a graceful shutdown: stop accepting, finish in-flight requests, let running jobs
//! finish within `server.shutdown_grace`, release the leases of the rest.

use anyhow::Context;

use super::Failure;
use crate::{app::AppState, clock::Clock, config::Config, server};

pub async fn run(config: Config) -> Result<(), Failure> {
    let listen = config.server.listen.clone();
    for (name, on) in super::check::integrations(&config) {
        if !on {
            tracing::info!(integration = name, "off: its secrets are not set");
        }
    }
    if !config.fullstory.api_key.is_set() {
        tracing::warn!("fullstory.api_key is not set: lookups will fail until it is");
    }
    server::connections::raise_file_limit(config.server.max_connections);
    let state = AppState::build(config, Clock::system()).await?;
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("could not listen on server.listen = {listen}"))?;
    tracing::info!(address = %listener.local_addr().context("no local address")?, "listening");
    run_until(state, listener, server::shutdown_signal()).await?;
    Ok(())
}

/// Serves `listener` and runs the workers until `stop` resolves; then shuts down gracefully.
pub async fn run_until(
    state: AppState,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let workers = state.queue.spawn_workers(stop_rx.clone()).await;
    let background: Vec<_> = state
        .adapters
        .iter()
        .filter_map(|adapter| adapter.background(&state, stop_rx.clone()))
        .collect();
    // Erasures announced by other replicas clear this one's cache (PostgreSQL only).
    // A replica that cannot listen still serves; its cache then forgets an erased customer only when
    // the entry expires (`fullstory.cache_ttl`), like one whose listener lost its connection.
    let erasures = match crate::privacy::broadcast::listen(state.app.clone()).await {
        Ok(listener) => listener,
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "not listening for erasures announced by other replicas");
            None
        }
    };
    server::serve(state.clone(), listener, async move {
        stop.await;
        let _ = stop_tx.send(true);
    })
    .await?;
    workers.join().await;
    if let Some(listener) = erasures {
        listener.abort();
    }
    for task in background {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}
