//! `GET /healthz` (the process answers), `GET /readyz` (the store is reachable and the configuration is
//! loaded: safe to send traffic) and `GET /metrics` (Prometheus text format).

use axum::{
    Json,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde_json::json;

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

pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.render(),
    )
}
