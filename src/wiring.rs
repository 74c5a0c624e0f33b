//! The composition root: the one place the service is put together.
//!
//! Order, each step using only what the previous ones built:
//! 1. the core ([`App::build`]: store, FullStory client, cache, lookup, auditor);
//! 2. the platforms the configuration switches on ([`adapters::enabled`], from the one list
//!    [`adapters::PLATFORMS`]), each plugged in once ([`adapters::Platform::plug`]): its routes,
//!    replier, job handlers and background task, its clients built there and nowhere else;
//! 3. the job handlers: the shared lookup, summary and erasure jobs (answering through the plugged
//!    platforms' repliers) and the platforms' own;
//! 4. the queue over them, and [`AppState`] (core + queue), which routes and jobs share.
//!
//! `serve`, `demo`, the CLI commands that run jobs (`forget`) and the tests all assemble the service
//! here, so what runs in a test is what runs in production. Nothing below this module knows which
//! platforms exist: `app`, `answer`, `privacy` and `queue` use none of them, and the module graph test
//! (`tests/modules.rs`) keeps it so.

use std::{future::Future, sync::Arc};

use axum::Router;

use crate::{
    adapters::{self, Background},
    answer::{LookupHandler, Replier, Repliers, SummaryHandler},
    app::{App, AppState},
    clock::Clock,
    config::Config,
    erasure::{EraseHandler, heap::Heap},
    escalate::{EscalateHandler, Trackers},
    queue::{JobHandler, Queue, Settings},
    server,
};

/// The assembled service: the shared state, the enabled platforms' routes and background tasks.
pub struct Service {
    pub state: AppState,
    /// The enabled platforms, in [`adapters::PLATFORMS`] order.
    platforms: Vec<&'static str>,
    routes: Router<AppState>,
    background: Vec<Background>,
}

impl std::ops::Deref for Service {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.state
    }
}

impl Service {
    /// Builds the core the configuration describes, then the rest over it with the defaults of
    /// [`ServiceBuilder`]: what `serve`, `demo` and `forget` run.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        let app = Arc::new(App::build(config, clock).await?);
        Self::builder(app).build()
    }

    /// Assembles the service over a built core: the queue with `queue.*` settings and the enabled
    /// platforms' repliers, unless the builder is told otherwise (tests: no backoff, a recording
    /// replier).
    pub fn builder(app: Arc<App>) -> ServiceBuilder {
        ServiceBuilder {
            settings: Settings::from_config(&app.config),
            repliers: Vec::new(),
            app,
        }
    }

    /// The names of the enabled platforms.
    pub fn platforms(&self) -> &[&'static str] {
        &self.platforms
    }

    /// The whole router (health, metrics, every enabled platform's routes) with its layers.
    pub fn router(&self) -> Router {
        server::router(self.state.clone(), self.routes.clone())
    }

    /// Starts the platforms' background tasks (once: a second call starts nothing), stopped when
    /// `shutdown` turns `true`.
    pub fn start_background(
        &mut self,
        shutdown: &tokio::sync::watch::Receiver<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let state = self.state.clone();
        self.background
            .drain(..)
            .map(|start| start(state.clone(), shutdown.clone()))
            .collect()
    }

    /// Serves `listener` and runs the workers, the platforms' background tasks and the erasure
    /// listener until `stop` resolves; then shuts down gracefully. What `replaydesk serve` and
    /// `replaydesk demo` both run.
    pub async fn run_until(
        self,
        listener: tokio::net::TcpListener,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut service = self;
        let router = service.router();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        if service.config.queue.workers == 0 {
            tracing::warn!(
                "queue.workers = 0: this process accepts and stores requests but runs no job; \
                 another process on the same store must run them"
            );
        }
        let workers = service.queue.spawn_workers(stop_rx.clone()).await;
        let background = service.start_background(&stop_rx);
        let state = service.state;
        // Erasures announced by other replicas clear this one's cache (PostgreSQL only). A replica
        // that cannot listen still serves; its cache then forgets an erased customer only when the
        // entry expires (`fullstory.cache_ttl`), like one whose listener lost its connection.
        let erasures = match crate::erasure::broadcast::listen(state.app.clone()).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "not listening for erasures announced by other replicas");
                None
            }
        };
        server::serve(&state.config.server, router, listener, async move {
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
}

/// What [`Service::builder`] assembles: the core, the queue's settings and any repliers of the
/// caller's beside the platforms'.
pub struct ServiceBuilder {
    app: Arc<App>,
    settings: Settings,
    repliers: Vec<Arc<dyn Replier>>,
}

impl ServiceBuilder {
    /// The queue's settings, instead of `queue.*` (tests: no backoff, few attempts).
    #[must_use]
    pub fn queue_settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// A replier of the caller's beside the platforms' (tests: one that records what the shared job
    /// path hands it).
    #[must_use]
    pub fn replier(mut self, replier: Arc<dyn Replier>) -> Self {
        self.repliers.push(replier);
        self
    }

    /// Plugs the enabled platforms, registers every job handler and builds the queue.
    pub fn build(self) -> anyhow::Result<Service> {
        let Self {
            app,
            settings,
            mut repliers,
        } = self;
        let mut platforms = Vec::new();
        let mut routes = Router::new();
        let mut handlers: Vec<Arc<dyn JobHandler>> = Vec::new();
        let mut background = Vec::new();
        for platform in adapters::enabled(&app.config) {
            let plugged = platform
                .plug(&app)
                .map_err(|error| error.context(format!("could not start {}", platform.name())))?;
            platforms.push(platform.name());
            routes = routes.merge(plugged.routes);
            repliers.push(plugged.replier);
            handlers.extend(plugged.handlers);
            background.extend(plugged.background);
        }
        let repliers = Repliers::new(repliers);
        let trackers = Trackers::from_config(&app.config, &app.upstreams)
            .map_err(|error| error.context("could not build the trackers' clients"))?;
        handlers.extend([
            Arc::new(LookupHandler {
                app: app.clone(),
                repliers: repliers.clone(),
            }) as Arc<dyn JobHandler>,
            Arc::new(SummaryHandler {
                app: app.clone(),
                repliers: repliers.clone(),
            }),
            Arc::new(EscalateHandler {
                app: app.clone(),
                trackers: trackers.clone(),
                repliers: repliers.clone(),
            }),
            Arc::new(EraseHandler {
                app: app.clone(),
                heap: Heap::from_config(&app.config.heap, app.upstreams.clone())?.map(Arc::new),
                trackers,
                repliers,
            }),
        ]);
        let queue = Queue::new(
            app.store.clone(),
            handlers,
            settings,
            app.clock.clone(),
            app.metrics.queue.clone(),
        )?;
        Ok(Service {
            state: AppState { app, queue },
            platforms,
            routes,
            background,
        })
    }
}

/// Every integration (each platform of [`adapters::PLATFORMS`], then Heap for erasures) and whether
/// the configuration switches it on: what `serve` logs and `check` prints.
pub fn integrations(config: &Config) -> Vec<(&'static str, bool)> {
    adapters::PLATFORMS
        .iter()
        .map(|platform| (platform.name(), platform.enabled(config)))
        .chain([("heap", config.heap.is_enabled())])
        .collect()
}

/// Says, once at start-up, which integrations are off because their secrets are not set.
pub fn log_platforms(config: &Config) {
    for (name, on) in integrations(config) {
        if !on {
            tracing::info!(integration = name, "off: its secrets are not set");
        }
    }
}
