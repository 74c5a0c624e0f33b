//! The HTTP server: router assembly and the layers every request passes through.
//!
//! Layers, outermost first: a request id (`x-request-id`, taken from the caller or made here, echoed in
//! the answer), a tracing span carrying it, the same id in scope for the handler (so the job it enqueues
//! records it: see [`crate::telemetry`]), panic → 500 (no panic on any input takes the server down),
//! the request timeout (`server.request_timeout` → 408), and the body limit (`server.max_body_bytes` →
//! 413). Platform routes come from the composition root ([`crate::wiring`]); this module knows no
//! business rules and no platform.
//!
//! Connections are accepted by [`connections`]: at most `server.max_connections` at once, each closed
//! when its request head is slower than `server.header_read_timeout` or it sits idle past
//! `server.idle_timeout`, so slow and idle clients cannot starve the server.
//!
//! `fn router(state, platforms) -> Router` lets tests drive the real stack with `oneshot` or a real
//! port (through [`crate::wiring::Service::router`]).

pub mod connections;
mod exposition;
mod health;

use std::future::Future;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath, Request},
    http::{HeaderName, StatusCode},
    middleware::{self, Next},
    response::Response,
    routing::get,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{app::AppState, config::ServerConfig};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole router with its layers: health and metrics, and `platforms` (the enabled platforms'
/// routes, merged by [`crate::wiring`]).
pub fn router(state: AppState, platforms: Router<AppState>) -> Router {
    let max_body = state.config.server.max_body_bytes;
    let timeout = state.config.server.request_timeout.0;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .merge(platforms)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(request_span))
                .layer(middleware::from_fn(carry_request_id))
                .layer(PropagateRequestIdLayer::new(REQUEST_ID))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(RequestBodyLimitLayer::new(max_body))
                .layer(DefaultBodyLimit::max(max_body)),
        )
}

/// The span of one inbound request: its id, method and route (never the query, which may hold an email).
fn request_span(request: &Request) -> tracing::Span {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| request.uri().path(), MatchedPath::as_str);
    tracing::info_span!("request", request_id, method = %request.method(), route)
}

/// Serves the request with its id in scope (see [`crate::telemetry::scope_request_id`]).
async fn carry_request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::telemetry::usable_request_id)
        .map(str::to_owned);
    crate::telemetry::scope_request_id(id, next.run(request)).await
}

/// Serves `router` until `shutdown` resolves, then stops accepting and lets in-flight requests finish.
pub async fn serve(
    config: &ServerConfig,
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    connections::serve(
        listener,
        router,
        connections::Limits::from(config),
        shutdown,
    )
    .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
