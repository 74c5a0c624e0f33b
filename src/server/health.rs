//! `GET /healthz` (the process answers), `GET /readyz` (the store is reachable and the configuration is
//! loaded: safe to send traffic) and `GET /metrics` (the Prometheus text format 0.0.4 or OpenMetrics,
//! by `Accept`: see [`super::exposition`]). A scrape first counts the jobs by state, so the queue-depth
//! gauge is current even on a replica whose maintenance task has not run yet (at most
//! [`COUNT_TIMEOUT`], so a slow store cannot stall the scrape).

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
};
use serde_json::json;

/// Longest a scrape waits for the jobs-by-state count before answering with the last one.
const COUNT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

use super::exposition::{Format, to_prometheus_text};
use crate::app::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    match app.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "status": "ready", "store": "ok", "config": "loaded" })),
        ),
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "not ready", "store": "unreachable", "config": "loaded" })),
            )
        }
    }
}

pub async fn metrics(State(app): State<AppState>, headers: HeaderMap) -> impl IntoResponse {
    let format = Format::negotiate(
        headers
            .get(header::ACCEPT)
            .and_then(|accept| accept.to_str().ok()),
    );
    match tokio::time::timeout(COUNT_TIMEOUT, app.queue.refresh_metrics()).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(error = %format!("{error:#}"), "counting jobs failed"),
        Err(_) => tracing::warn!("counting jobs took too long; serving the last count"),
    }
    let openmetrics = app.metrics.render();
    let body = match format {
        Format::OpenMetrics => openmetrics,
        Format::PrometheusText => to_prometheus_text(&openmetrics),
    };
    (
        [
            (header::CONTENT_TYPE, format.content_type()),
            (header::VARY, "accept"),
        ],
        body,
    )
}
