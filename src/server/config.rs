//! What a server is built from: address, engines, model, limits and timers.

use std::time::Duration;

use crate::api::{Access, AccessError, Limits, Service};
use crate::config::ServiceConfig;
use crate::deepsearch::{DeepSearch, DeepSearchError, Settings};
use crate::http::Secret;
use crate::llm::{LlmError, LlmOptions};
use crate::replay::{MemoryStore, RedisStore, RedisStoreError, ReplayConfig, ReplayStore};
use crate::search::EngineConfig;
use crate::stream::{StreamConfig, StreamError};

/// Why a server could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("language model: {0}")]
    Llm(#[from] LlmError),
    #[error(transparent)]
    DeepSearch(#[from] DeepSearchError),
    #[error("stream settings: {0}")]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("replay store: {0}")]
    Redis(#[from] RedisStoreError),
    #[error(transparent)]
    Setting(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Invalid(String),
}

/// What one connection may take, and how many may be open: the slowloris bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Longest wait for a request head, from its first byte (or, idle, from the end of
    /// the previous response); then the connection is closed.
    pub header_timeout: Duration,
    /// Longest wait for a whole request body; then 408 and the connection is closed.
    pub body_timeout: Duration,
    /// Open connections at most; past it, a new one gets 503 and is closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// A server's whole configuration. `Debug` never shows API keys.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    /// Engine names (none: `local`).
    pub engines: Vec<String>,
    /// Corpus and cache of `local`, settings of the HTTP engines.
    pub engine_config: EngineConfig,
    /// The model; resolved against the environment, offline when no model is named.
    pub llm: LlmOptions,
    pub settings: Settings,
    pub limits: Limits,
    /// Heartbeat and lifetime of each stream.
    pub stream_config: StreamConfig,
    /// Longest wait, after a shutdown signal, for open connections to finish.
    pub shutdown_timeout: Duration,
    /// Header and body timeouts, the connection cap.
    pub connections: ConnectionLimits,
    /// Base URL of a deepsearch service every search is relayed to instead of run here.
    pub upstream: Option<String>,
    /// Replay logs for resuming streams: lifetime, linger, byte budgets.
    pub replay: ReplayConfig,
    /// `retry:` sent at the start of every stream (how long a client waits before
    /// reconnecting); `None`: not sent.
    pub retry: Option<Duration>,
    /// Redis URL of a shared replay store (none: in memory). Kept as a secret: it may
    /// hold a password.
    pub redis_url: Option<Secret>,
    /// Serve the bench-only routes of `bench/CONTRACT.md`.
    pub bench_routes: bool,
    /// The API key every route but the public ones needs, and the CORS policy.
    pub access: Access,
}

pub use crate::replay::REDIS_CONNECT_TIMEOUT;

/// `--shutdown-timeout` when not given.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8000,
            engines: vec!["local".into()],
            engine_config: EngineConfig::default(),
            llm: LlmOptions::default(),
            settings: Settings::default(),
            limits: Limits::default(),
            stream_config: StreamConfig::default(),
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            connections: ConnectionLimits::default(),
            upstream: None,
            replay: ReplayConfig::default(),
            retry: Some(crate::api::DEFAULT_RETRY),
            redis_url: None,
            bench_routes: false,
            access: Access::default(),
        }
    }
}

impl ServerConfig {
    /// The server `config` describes: its settings grouped by the layer that uses them,
    /// the access policy checked.
    pub fn from_service(config: &ServiceConfig) -> Result<Self, ConfigError> {
        let mut api_keys = config.api_keys.clone();
        if let Some(path) = &config.api_key_file {
            api_keys.extend(crate::api::read_key_file(path)?);
        }
        Ok(ServerConfig {
            host: config.host.clone(),
            port: config.port,
            engines: config.engines.clone(),
            engine_config: config.engine_config(),
            llm: config.llm(),
            settings: config.settings(),
            limits: config.limits(),
            stream_config: config.stream_config(),
            shutdown_timeout: config.shutdown_timeout,
            connections: ConnectionLimits {
                header_timeout: config.header_timeout,
                body_timeout: config.body_timeout,
                max_connections: config.max_connections,
            },
            upstream: config.upstream.clone(),
            replay: config.replay(),
            redis_url: config.redis_url.clone(),
            bench_routes: config.bench_routes,
            retry: config.retry,
            access: Access::with_keys(api_keys, config.cors_origins.as_deref())?,
        })
    }

    /// Where to listen, for `TcpListener::bind` (an IPv6 host needs no brackets).
    pub fn address(&self) -> (&str, u16) {
        (self.host.as_str(), self.port)
    }

    /// Builds the search service: the model client, then the engines on a blocking
    /// task (opening `local` may build its index). Must be called on a tokio runtime.
    pub async fn build_service(&self) -> Result<Service, ConfigError> {
        self.stream_config.validate()?;
        if self.limits.max_body_bytes == 0 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1".into(),
            ));
        }
        self.replay.validate().map_err(ConfigError::Invalid)?;
        // Redis first: a server that cannot reach it stops before building its engines.
        let store: std::sync::Arc<dyn ReplayStore> = match &self.redis_url {
            Some(url) => std::sync::Arc::new(
                RedisStore::connect(url.expose(), self.replay.clone(), REDIS_CONNECT_TIMEOUT)
                    .await?,
            ),
            None => std::sync::Arc::new(MemoryStore::new(self.replay.clone())),
        };
        let llm = self.llm.clone().resolve()?;
        let engines = self.engines.clone();
        let engine_config = self.engine_config.clone();
        let settings = self.settings.clone();
        let deepsearch = tokio::task::spawn_blocking(move || {
            DeepSearch::from_config(&engines, &engine_config, llm, settings)
        })
        .await
        .map_err(|e| ConfigError::Invalid(format!("building the engines failed: {e}")))??;
        let service = Service::new(deepsearch, self.limits.clone(), self.stream_config.clone())
            .with_replay(store)
            .with_retry(self.retry);
        match &self.upstream {
            Some(url) => service
                .with_upstream(url)
                .map_err(|e| ConfigError::Invalid(e.message)),
            None => Ok(service),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(args: &[(&str, &str)]) -> Result<ServerConfig, ConfigError> {
        let config = ServiceConfig::from_args_with(args.iter().copied(), |_| None)?;
        ServerConfig::from_service(&config)
    }

    #[test]
    fn the_table_defaults_are_the_server_defaults() {
        let built = from(&[]).unwrap();
        let default = ServerConfig::default();
        assert_eq!(built.address(), default.address());
        assert_eq!(built.engines, default.engines);
        assert_eq!(built.limits, default.limits);
        assert_eq!(built.replay, default.replay);
        assert_eq!(built.connections, default.connections);
        assert_eq!(built.shutdown_timeout, default.shutdown_timeout);
        assert_eq!(
            built.stream_config.heartbeat,
            default.stream_config.heartbeat
        );
        assert_eq!(built.stream_config.timeout, default.stream_config.timeout);
        assert!(!built.access.enabled() && !built.bench_routes);
    }

    #[test]
    fn the_access_policy_is_checked() {
        let config = from(&[
            ("api_key", "k-secret"),
            ("cors_origins", "https://a.example"),
        ])
        .unwrap();
        assert!(config.access.enabled());
        assert!(!format!("{config:?}").contains("k-secret"));
        assert!(matches!(
            from(&[("api_key", " ")]),
            Err(ConfigError::Access(_))
        ));
        let bad = from(&[("cors_origins", "a.example")]).unwrap_err();
        assert!(bad.to_string().contains("a.example"));
    }
}
