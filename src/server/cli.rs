//! Command-line flags of `deepsearch-server`, each with an environment fallback.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::config::{ConfigError, ConnectionLimits, ServerConfig};
use crate::api::{Access, Limits};
use crate::deepsearch::{BreakerSettings, Budget, Locale, Settings};
use crate::http::Secret;
use crate::llm::LlmOptions;
use crate::replay::ReplayConfig;
use crate::search::EngineConfig;
use crate::stream::StreamConfig;

/// Serves DeepSearch over HTTP: `POST /deepsearch` and `POST /v1/tool/deepsearch`
/// stream Server-Sent Events; `GET /healthz`, `GET /metrics`, `GET /`.
///
/// Engines other than `local` read their settings from the environment (`SEARXNG_URL`,
/// `TAVILY_API_KEY`, ...); the model falls back to `OPENAI_BASE_URL`/`OPENAI_API_KEY`.
/// Without a model the search runs offline (extractive answers).
#[derive(Debug, Clone, Parser)]
#[command(name = "deepsearch-server", version)]
// The field docs are the `--help` text, where URLs stay bare.
#[allow(rustdoc::bare_urls)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "DEEPSEARCH_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (the "listening" line shows which).
    #[arg(long, env = "DEEPSEARCH_PORT", default_value_t = 8000)]
    pub port: u16,
    /// Corpus directory of the `local` engine (default: the exported Python docs under
    /// the cache directory).
    #[arg(long, env = "DEEPSEARCH_CORPUS_DIR")]
    pub corpus: Option<PathBuf>,
    /// Index cache directory.
    #[arg(long, env = "DEEPSEARCH_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Search engines, comma-separated: local, searxng, tavily, brave, serper, jina.
    #[arg(
        long,
        env = "DEEPSEARCH_ENGINES",
        value_delimiter = ',',
        default_value = "local"
    )]
    pub engines: Vec<String>,
    /// OpenAI-compatible API root of the model server.
    #[arg(long, env = "DEEPSEARCH_LLM_BASE_URL")]
    pub llm_base_url: Option<String>,
    /// Model name; none means offline.
    #[arg(long, env = "DEEPSEARCH_LLM_MODEL")]
    pub llm_model: Option<String>,
    /// API key of the model server (never printed).
    #[arg(
        long,
        env = "DEEPSEARCH_LLM_API_KEY",
        hide_env_values = true,
        value_parser = parse_key
    )]
    pub llm_api_key: Option<Secret>,
    /// Language of status lines: en or zh.
    #[arg(long, env = "DEEPSEARCH_LOCALE", default_value = "en", value_parser = parse_locale)]
    pub locale: Locale,
    /// Searches in progress at once; beyond it, 503 with Retry-After.
    #[arg(long, env = "DEEPSEARCH_MAX_STREAMS", default_value_t = Limits::default().max_streams)]
    pub max_streams: usize,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "DEEPSEARCH_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Seconds of silence after which a stream sends a heartbeat; 0 disables them.
    #[arg(long, env = "DEEPSEARCH_HEARTBEAT", default_value = "10", value_parser = parse_seconds)]
    pub heartbeat: Duration,
    /// Longest life of a stream, in seconds; 0 means no limit.
    #[arg(long, env = "DEEPSEARCH_STREAM_TIMEOUT", default_value = "3600", value_parser = parse_seconds)]
    pub stream_timeout: Duration,
    /// Seconds to wait for open streams to finish after SIGTERM or Ctrl-C.
    #[arg(long, env = "DEEPSEARCH_SHUTDOWN_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub shutdown_timeout: Duration,
    /// Seconds a request head may take to arrive (from its first byte), and an idle
    /// keep-alive connection may stay open; then the connection is closed.
    #[arg(long, env = "DEEPSEARCH_HEADER_TIMEOUT", default_value = "10", value_parser = parse_positive_seconds)]
    pub header_timeout: Duration,
    /// Seconds a request body may take to arrive; then 408 and the connection is closed.
    #[arg(long, env = "DEEPSEARCH_BODY_TIMEOUT", default_value = "30", value_parser = parse_positive_seconds)]
    pub body_timeout: Duration,
    /// Open connections at most (keep it under the file descriptor limit); past it, a new
    /// connection gets 503 and is closed.
    #[arg(long, env = "DEEPSEARCH_MAX_CONNECTIONS", default_value_t = ConnectionLimits::default().max_connections)]
    pub max_connections: usize,
    /// Relay every search to this deepsearch service (its base URL) instead of running
    /// it here: a streaming proxy with this server's own ids, heartbeats and limits.
    #[arg(long, env = "DEEPSEARCH_UPSTREAM")]
    pub upstream: Option<String>,
    /// Seconds a search goes on after its client left, waiting for it to resume with
    /// Last-Event-ID; then it is cancelled. 0 cancels it as soon as the client leaves.
    #[arg(long, env = "DEEPSEARCH_RESUME_LINGER", default_value = "60", value_parser = parse_seconds)]
    pub resume_linger: Duration,
    /// Seconds a stream's replay log is kept after the stream ended.
    #[arg(long, env = "DEEPSEARCH_REPLAY_TTL", default_value = "300", value_parser = parse_seconds)]
    pub replay_ttl: Duration,
    /// Bytes all replay logs together may hold (ended logs are evicted oldest first).
    #[arg(long, env = "DEEPSEARCH_REPLAY_MAX_BYTES", default_value_t = ReplayConfig::default().max_bytes)]
    pub replay_max_bytes: usize,
    /// Bytes one stream's replay log may hold.
    #[arg(long, env = "DEEPSEARCH_REPLAY_MAX_STREAM_BYTES", default_value_t = ReplayConfig::default().max_log_bytes)]
    pub replay_max_stream_bytes: usize,
    /// Keep replay logs in Redis Streams at this URL (redis://host:port/db), shared by
    /// every instance, so a client can resume on any of them; none: in this process's
    /// memory. The server does not start when Redis does not answer.
    #[arg(long = "redis", env = "DEEPSEARCH_REDIS_URL", hide_env_values = true, value_parser = parse_key)]
    pub redis_url: Option<Secret>,
    /// Serve the bench-only routes of bench/CONTRACT.md (off by default).
    #[arg(long)]
    pub bench_routes: bool,
    /// Require `Authorization: Bearer <key>` on every route but /healthz and the page at /
    /// (never printed).
    #[arg(long, env = "DEEPSEARCH_API_KEY", hide_env_values = true, value_parser = parse_key)]
    pub api_key: Option<Secret>,
    /// Origins allowed to call the service from a browser: comma-separated
    /// (https://app.example,http://localhost:3000) or *; none: no CORS headers at all.
    #[arg(long, env = "DEEPSEARCH_CORS_ORIGINS")]
    pub cors_origins: Option<String>,
    /// Engine calls one search may make: the budget of a request that sets none, and the
    /// most its `budget.max_search_calls` may ask for; none: no limit.
    #[arg(long, env = "DEEPSEARCH_MAX_SEARCH_CALLS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_search_calls: Option<u64>,
    /// Model tokens one search may spend (prompt and completion), as --max-search-calls.
    #[arg(long, env = "DEEPSEARCH_MAX_LLM_TOKENS", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_llm_tokens: Option<u64>,
    /// Seconds one search may search before it answers from what it found, as
    /// --max-search-calls.
    #[arg(long, env = "DEEPSEARCH_SEARCH_DEADLINE", value_parser = parse_positive_seconds)]
    pub search_deadline: Option<Duration>,
    /// Seconds an engine that failed 3 calls in a row is skipped before it is tried again.
    #[arg(long, env = "DEEPSEARCH_BREAKER_COOLDOWN", default_value = "30", value_parser = parse_positive_seconds)]
    pub breaker_cooldown: Duration,
}

fn parse_key(raw: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::from(raw))
}

fn parse_locale(raw: &str) -> Result<Locale, String> {
    Locale::parse(raw).map_err(|_| format!("expected \"en\" or \"zh\", got {raw:?}"))
}

/// Whole or fractional seconds, at least 0.
fn parse_seconds(raw: &str) -> Result<Duration, String> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected a number of seconds, at least 0, got {raw:?}"))
}

/// Seconds, more than 0.
fn parse_positive_seconds(raw: &str) -> Result<Duration, String> {
    parse_seconds(raw)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("expected a number of seconds above 0, got {raw:?}"))
}

/// `None` for zero: the flags use 0 for "off".
fn non_zero(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

impl Args {
    /// The server configuration these flags describe; settings they do not cover
    /// (HTTP engines' keys and URLs) come from the environment.
    pub fn into_config(self) -> Result<ServerConfig, ConfigError> {
        let engines: Vec<String> = self
            .engines
            .iter()
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if let Some(url) = &self.upstream {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "--upstream must be an http:// or https:// URL, got {url:?}"
                )));
            }
        }
        let access = Access::new(self.api_key, self.cors_origins.as_deref())?;
        Ok(ServerConfig {
            host: self.host,
            port: self.port,
            engines,
            engine_config: EngineConfig {
                corpus_dir: self.corpus,
                cache_dir: self.cache_dir,
                ..EngineConfig::default()
            }
            .or_env(),
            llm: LlmOptions {
                base_url: self.llm_base_url,
                model: self.llm_model,
                api_key: self.llm_api_key,
                ..LlmOptions::default()
            },
            settings: Settings {
                locale: self.locale,
                budget: Budget {
                    max_search_calls: self.max_search_calls,
                    max_llm_tokens: self.max_llm_tokens,
                    deadline: self.search_deadline,
                },
                breaker: BreakerSettings {
                    cooldown: self.breaker_cooldown,
                    ..BreakerSettings::default()
                },
                ..Settings::default()
            },
            limits: Limits {
                max_streams: self.max_streams,
                max_body_bytes: self.max_body_bytes,
                ..Limits::default()
            },
            stream: StreamConfig {
                heartbeat: non_zero(self.heartbeat),
                timeout: non_zero(self.stream_timeout),
                ..StreamConfig::default()
            },
            shutdown_timeout: self.shutdown_timeout,
            connections: ConnectionLimits {
                header_timeout: self.header_timeout,
                body_timeout: self.body_timeout,
                max_connections: self.max_connections,
            },
            replay: ReplayConfig {
                ttl: self.replay_ttl,
                linger: self.resume_linger,
                max_bytes: self.replay_max_bytes,
                max_log_bytes: self.replay_max_stream_bytes,
            },
            upstream: self.upstream,
            redis_url: self.redis_url,
            bench_routes: self.bench_routes,
            access,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        Args::try_parse_from(std::iter::once("deepsearch-server").chain(args.iter().copied()))
    }

    #[test]
    fn flags_become_the_config() {
        let config = parse(&[
            "--port",
            "0",
            "--engines",
            "local, searxng",
            "--heartbeat",
            "0",
            "--stream-timeout",
            "1.5",
            "--locale",
            "zh-CN",
            "--max-streams",
            "7",
            "--llm-api-key",
            "sk-secret",
            "--llm-model",
            "m",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(config.port, 0);
        assert_eq!(config.engines, ["local", "searxng"]);
        assert_eq!(config.stream.heartbeat, None);
        assert_eq!(config.stream.timeout, Some(Duration::from_millis(1500)));
        assert_eq!(config.settings.locale, Locale::Zh);
        assert_eq!(config.limits.max_streams, 7);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert_eq!(config.replay, ReplayConfig::default());
        assert_eq!(config.connections, ConnectionLimits::default());
        let config = parse(&["--header-timeout", "0.5", "--max-connections", "3"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(
            config.connections.header_timeout,
            Duration::from_millis(500)
        );
        assert_eq!(config.connections.max_connections, 3);
        let config = parse(&["--resume-linger", "0", "--replay-ttl", "2.5"])
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(config.replay.linger, Duration::ZERO);
        assert_eq!(config.replay.ttl, Duration::from_millis(2500));
        assert!(!format!("{config:?}").contains("sk-secret"));
        assert!(config.redis_url.is_none());
        let config = parse(&["--redis", "redis://:pw@127.0.0.1:6390/0"])
            .unwrap()
            .into_config()
            .unwrap();
        assert!(config.redis_url.is_some());
        assert!(
            !format!("{config:?}").contains("pw@"),
            "the URL may hold a password"
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--heartbeat", "-1"]).is_err());
        assert!(parse(&["--header-timeout", "0"]).is_err());
        assert!(parse(&["--locale", "fr"]).is_err());
        assert!(parse(&["--port", "70000"]).is_err());
        let upstream = parse(&["--upstream", "ftp://x"]).unwrap().into_config();
        assert!(upstream.is_err());
    }

    #[test]
    fn access_flags() {
        let config = parse(&[
            "--api-key",
            "k-secret",
            "--cors-origins",
            "https://a.example",
        ])
        .unwrap()
        .into_config()
        .unwrap();
        assert!(config.access.enabled());
        assert!(!format!("{config:?}").contains("k-secret"));
        assert!(!parse(&[]).unwrap().into_config().unwrap().access.enabled());
        let empty = parse(&["--api-key", " "]).unwrap().into_config();
        assert!(matches!(empty, Err(ConfigError::Access(_))));
        let bad = parse(&["--cors-origins", "a.example"])
            .unwrap()
            .into_config();
        assert!(bad.unwrap_err().to_string().contains("a.example"));
    }

    #[test]
    fn the_key_value_is_never_shown_in_help() {
        let command = <Args as clap::CommandFactory>::command();
        let key = command
            .get_arguments()
            .find(|a| a.get_id() == "llm_api_key")
            .unwrap();
        assert!(key.is_hide_env_values_set());
        let api_key = command
            .get_arguments()
            .find(|a| a.get_id() == "api_key")
            .unwrap();
        assert!(api_key.is_hide_env_values_set());
        let help = command.clone().render_long_help().to_string();
        assert!(help.contains("DEEPSEARCH_LLM_API_KEY"));
        assert!(help.contains("DEEPSEARCH_MAX_STREAMS"));
    }
}
