//! The pure-Rust HTTP server (feature `server`): axum over [`Service`], serving the same
//! bytes as the FastAPI service over the same core.
//!
//! Routes: `POST /deepsearch` (and `GET /deepsearch?query=...` for `EventSource`) and
//! `POST /v1/tool/deepsearch` (a stream or a JSON reply, resumable with `Last-Event-ID`),
//! `POST /mcp` (deep search as an MCP tool, [`crate::api::mcp`]),
//! `GET /healthz`, `GET /metrics`, `GET /` (the static page); anything else is a JSON
//! 404, a served path asked with another method a JSON 405 with `Allow`. In front of
//! them all, [`Access`]: the API key (`--api-key`) and CORS (`--cors-origins`).
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use deepsearch_stream::server::{App, ServerConfig};
//!
//! let config = ServerConfig::default();
//! let app = App::from_config(&config).await.expect("engines and model");
//! let listener = tokio::net::TcpListener::bind(config.address()).await?;
//! app.serve(listener, deepsearch_stream::server::signal(), config.shutdown_timeout).await
//! # }
//! ```

mod access;
mod bench;
mod cli;
mod config;
mod conn;
mod routes;
mod shutdown;
pub mod subscriber;
pub mod terminal;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::middleware;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use tokio::net::TcpListener;

pub use cli::{command, parse_from, CliError, Command, IndexArgs, SearchArgs};
pub use config::{ConfigError, ConnectionLimits, ServerConfig};
pub use conn::{MAX_HEADERS, MAX_HEAD_BYTES};
pub use routes::{error_response, stream_response, HTML_CONTENT_TYPE, INDEX_HTML};
pub use shutdown::signal;

use crate::api::{Access, OpenStreams, Route, Service};

/// What every handler shares: the search service and the streams it is serving.
#[derive(Debug, Clone)]
pub struct App {
    service: Service,
    bench: Option<Arc<bench::Producers>>,
    access: Arc<Access>,
    connections: Arc<ConnectionLimits>,
}

impl App {
    /// An app serving `service`.
    pub fn new(service: Service) -> Self {
        App {
            service,
            bench: None,
            access: Arc::default(),
            connections: Arc::default(),
        }
    }

    /// Builds the engines (in a blocking task: the `local` index may have to be built)
    /// and the model client `config` names.
    pub async fn from_config(config: &ServerConfig) -> Result<Self, ConfigError> {
        let mut app = App::new(config.build_service().await?);
        if config.bench_routes {
            app = app.with_bench_routes();
        }
        Ok(app
            .with_access(config.access.clone())
            .with_connection_limits(config.connections.clone()))
    }

    /// Adds the bench-only routes of `bench/CONTRACT.md`.
    pub fn with_bench_routes(mut self) -> Self {
        self.bench = Some(Arc::default());
        self
    }

    /// Puts the API key and CORS policy in front of every route.
    pub fn with_access(mut self, access: Access) -> Self {
        self.access = Arc::new(access);
        self
    }

    /// Serves each connection under `limits` (timeouts, the connection cap).
    pub fn with_connection_limits(mut self, limits: ConnectionLimits) -> Self {
        self.connections = Arc::new(limits);
        self
    }

    /// The connection limits this app is served under.
    pub fn connection_limits(&self) -> &ConnectionLimits {
        &self.connections
    }

    fn bench_producers(&self) -> &bench::Producers {
        // Only the bench routes call this, and they exist only when `bench` is set.
        self.bench
            .as_deref()
            .expect("bench routes without their registry")
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The streams being served now.
    pub fn streams(&self) -> &Arc<OpenStreams> {
        self.service.streams()
    }

    /// The upstream service searches are relayed to, when configured.
    pub fn upstream(&self) -> Option<&str> {
        self.service.upstream()
    }

    /// The routes, with this app as their state, behind the access policy.
    pub fn router(&self) -> Router {
        let routes = self.routes();
        let routes = if self.access.enabled() {
            // Around the whole router rather than each route: a route's own method
            // handling would add its `Allow` to the early answers (preflights, 401s).
            Router::new()
                .fallback_service(routes)
                .layer(middleware::from_fn_with_state(
                    Arc::clone(&self.access),
                    access::gate,
                ))
        } else {
            routes
        };
        routes.layer(middleware::from_fn(conn::check_head))
    }

    fn routes(&self) -> Router {
        let base = if self.bench.is_some() {
            bench::routes()
        } else {
            Router::new()
        };
        base.route(
            Route::DeepSearch.path(),
            with_405(
                post(routes::deepsearch).get(routes::deepsearch_get),
                routes::ALLOW_GET_POST,
            ),
        )
        .route(
            Route::GenieTool.path(),
            with_405(post(routes::genie_tool), routes::ALLOW_POST),
        )
        .route(
            Route::OpenAiChat.path(),
            with_405(post(routes::openai_chat), Route::OpenAiChat.allow()),
        )
        .route(
            Route::OpenAiModels.path(),
            with_405(get(routes::openai_models), Route::OpenAiModels.allow()),
        )
        .route(
            Route::AiSdkChat.path(),
            with_405(post(routes::aisdk_chat), Route::AiSdkChat.allow()),
        )
        .route(
            Route::AiSdkResume.path(),
            with_405(get(routes::aisdk_resume), Route::AiSdkResume.allow()),
        )
        .route(
            Route::AgUi.path(),
            with_405(post(routes::agui), Route::AgUi.allow()),
        )
        .route(
            "/healthz",
            with_405(get(routes::healthz), routes::ALLOW_GET),
        )
        .route(
            "/metrics",
            with_405(get(routes::metrics), routes::ALLOW_GET),
        )
        .route(
            crate::api::mcp::PATH,
            with_405(post(routes::mcp), routes::ALLOW_POST),
        )
        .route("/", with_405(get(routes::index), routes::ALLOW_GET))
        .fallback(routes::not_found)
        // The search routes read their bodies themselves, under `Limits.max_body_bytes`,
        // so an oversized body gets the same 413 as from the parser.
        .layer(DefaultBodyLimit::disable())
        .with_state(self.clone())
    }

    /// Serves on `listener` until `stop` resolves, then shuts down gracefully within
    /// `timeout` (see [`OpenStreams`]).
    pub async fn serve<F>(
        self,
        listener: TcpListener,
        stop: F,
        timeout: Duration,
    ) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let router = self.router();
        let limits = Arc::clone(&self.connections);
        shutdown::serve_until(
            listener,
            router,
            Arc::clone(self.streams()),
            stop,
            timeout,
            &limits,
        )
        .await
    }
}

/// Answers the methods `router` does not serve with a JSON 405 and `Allow: allow`.
fn with_405(router: MethodRouter<App>, allow: &'static str) -> MethodRouter<App> {
    router.fallback(move |method: Method, uri: Uri| async move {
        routes::method_not_allowed(&method, &uri, allow)
    })
}
