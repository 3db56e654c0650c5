//! One configuration for both faces: [`SETTINGS`] names every operator setting (flag,
//! `DEEPSEARCH_*` variable, default, help), [`ServiceConfig`] holds their parsed values.
//!
//! Each value comes from the command line, else its variable (trimmed; empty is unset),
//! else the table's default, and is checked here, so `deepsearch-server` and
//! `deepsearch-stream serve` accept and refuse the same input with the same message.

mod table;

use std::path::PathBuf;
use std::time::Duration;

pub use table::{Kind, Setting, SEARCH_SETTINGS, SETTINGS};

use crate::api::Limits;
use crate::deepsearch::{BreakerSettings, Budget, Locale, Settings};
use crate::http::Secret;
use crate::llm::LlmOptions;
use crate::replay::ReplayConfig;
use crate::search::EngineConfig;
use crate::stream::StreamConfig;

/// Why a configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse; `from` is `--flag` or the variable it came from.
    #[error("invalid value for {from}: {expected}, got {raw:?}")]
    Invalid {
        from: String,
        expected: String,
        raw: String,
    },
    #[error("unknown setting {0:?}")]
    Unknown(String),
}

/// Every operator setting, parsed. `Debug` never shows the keys or the Redis URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub host: String,
    pub port: u16,
    pub corpus: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub engines: Vec<String>,
    pub llm_base_url: Option<String>,
    pub llm_model: Option<String>,
    pub llm_api_key: Option<Secret>,
    pub locale: Locale,
    pub max_streams: usize,
    pub max_body_bytes: usize,
    /// `None`: no heartbeats (0 on the command line).
    pub heartbeat: Option<Duration>,
    /// `None`: no limit (0 on the command line).
    pub stream_timeout: Option<Duration>,
    pub shutdown_timeout: Duration,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub upstream: Option<String>,
    pub resume_linger: Duration,
    pub replay_ttl: Duration,
    pub replay_max_bytes: usize,
    pub replay_max_stream_bytes: usize,
    pub redis_url: Option<Secret>,
    pub bench_routes: bool,
    /// Any of them passes the access gate; each stream is scoped to the one that
    /// started it.
    pub api_keys: Vec<Secret>,
    /// More keys, one a line, read by [`ServerConfig`](crate::api::Access)'s builder.
    pub api_key_file: Option<PathBuf>,
    /// `retry:` at the start of every stream; `None`: not sent (0 on the command line).
    pub retry: Option<Duration>,
    /// Server-wide budget defaults and ceilings of one search.
    pub max_search_calls: Option<u64>,
    pub max_llm_tokens: Option<u64>,
    pub search_deadline: Option<Duration>,
    pub breaker_cooldown: Duration,
    /// Checked by [`crate::api::Access::new`], which owns the CORS rules.
    pub cors_origins: Option<String>,
    pub log_level: String,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self::defaults()
    }
}

/// Where a value came from, for the error message.
#[derive(Clone, Copy)]
enum Origin<'a> {
    Flag(&'a Setting),
    Env(&'a Setting),
}

impl std::fmt::Display for Origin<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Flag(s) => write!(f, "--{}", s.flag),
            Origin::Env(s) => write!(f, "{} (--{})", s.env, s.flag),
        }
    }
}

fn env_value(setting: &Setting, lookup: &impl Fn(&str) -> Option<String>) -> Option<String> {
    lookup(setting.env)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl ServiceConfig {
    /// The table's defaults.
    pub fn defaults() -> Self {
        let mut config = ServiceConfig {
            host: String::new(),
            port: 0,
            corpus: None,
            cache_dir: None,
            engines: Vec::new(),
            llm_base_url: None,
            llm_model: None,
            llm_api_key: None,
            locale: Locale::En,
            max_streams: 0,
            max_body_bytes: 0,
            heartbeat: None,
            stream_timeout: None,
            shutdown_timeout: Duration::ZERO,
            header_timeout: Duration::ZERO,
            body_timeout: Duration::ZERO,
            max_connections: 0,
            upstream: None,
            resume_linger: Duration::ZERO,
            replay_ttl: Duration::ZERO,
            replay_max_bytes: 0,
            replay_max_stream_bytes: 0,
            redis_url: None,
            bench_routes: false,
            api_keys: Vec::new(),
            api_key_file: None,
            retry: None,
            max_search_calls: None,
            max_llm_tokens: None,
            search_deadline: None,
            breaker_cooldown: Duration::ZERO,
            cors_origins: None,
            log_level: String::new(),
        };
        for setting in SETTINGS {
            // The table's defaults parse: `the_defaults_are_the_layers_defaults` proves it.
            let _ = config.set(setting, setting.default, Origin::Flag(setting));
        }
        config
    }

    /// Every setting from its `DEEPSEARCH_*` variable, else its default.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_args(std::iter::empty::<(&str, &str)>())
    }

    /// `args` (setting key, value as typed) over the environment over the defaults.
    pub fn from_args<K, V>(args: impl IntoIterator<Item = (K, V)>) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        Self::from_args_with(args, |name| std::env::var(name).ok())
    }

    /// [`from_args`](Self::from_args) with the environment supplied by `lookup` (for
    /// tests, which must not mutate the process environment).
    pub fn from_args_with<K, V>(
        args: impl IntoIterator<Item = (K, V)>,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut given: Vec<(&'static Setting, String)> = Vec::new();
        for (key, value) in args {
            let setting = Setting::find(key.as_ref())
                .ok_or_else(|| ConfigError::Unknown(key.as_ref().to_string()))?;
            given.push((setting, value.as_ref().to_string()));
        }
        let mut config = Self::defaults();
        for setting in SETTINGS {
            if let Some(raw) = env_value(setting, &lookup) {
                config.set(setting, &raw, Origin::Env(setting))?;
            }
        }
        // A repeated flag replaces its variable's value rather than adding to it.
        if given.iter().any(|(s, _)| s.kind == Kind::Secrets) {
            config.api_keys.clear();
        }
        for (setting, raw) in &given {
            config.set(setting, raw, Origin::Flag(setting))?;
        }
        Ok(config)
    }

    /// Parses `raw` as `setting` and stores it.
    fn set(&mut self, setting: &Setting, raw: &str, from: Origin<'_>) -> Result<(), ConfigError> {
        let bad = |expected: &str| ConfigError::Invalid {
            from: from.to_string(),
            expected: expected.to_string(),
            raw: raw.to_string(),
        };
        let text = raw.trim();
        let optional = || (!text.is_empty()).then(|| text.to_string());
        let int = || {
            text.parse::<usize>()
                .map_err(|_| bad("expected a whole number, at least 0"))
        };
        let seconds = || {
            text.parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| bad("expected a number of seconds, at least 0"))
        };
        let positive = || {
            seconds()
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| bad("expected a number of seconds above 0"))
        };
        let non_zero = |d: Duration| (!d.is_zero()).then_some(d);
        match setting.key {
            "host" => self.host = text.to_string(),
            "port" => {
                self.port = text
                    .parse()
                    .map_err(|_| bad("expected a port number from 0 to 65535"))?
            }
            "corpus" => self.corpus = optional().map(PathBuf::from),
            "cache_dir" => self.cache_dir = optional().map(PathBuf::from),
            "engines" => {
                self.engines = text
                    .split(',')
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            "llm_base_url" => self.llm_base_url = optional(),
            "llm_model" => self.llm_model = optional(),
            // Not trimmed to nothing here: an empty key is for the consumer to refuse.
            "llm_api_key" => self.llm_api_key = (!raw.is_empty()).then(|| Secret::from(raw)),
            "locale" => {
                self.locale = Locale::parse(text).map_err(|_| bad("expected \"en\" or \"zh\""))?
            }
            "max_streams" => self.max_streams = int()?,
            "max_body_bytes" => {
                self.max_body_bytes = int()?;
                if self.max_body_bytes == 0 {
                    return Err(bad("expected a number of bytes, at least 1"));
                }
            }
            "heartbeat" => self.heartbeat = non_zero(seconds()?),
            "stream_timeout" => self.stream_timeout = non_zero(seconds()?),
            "shutdown_timeout" => self.shutdown_timeout = seconds()?,
            "header_timeout" => self.header_timeout = positive()?,
            "body_timeout" => self.body_timeout = positive()?,
            "max_connections" => self.max_connections = int()?,
            "upstream" => {
                self.upstream = optional();
                if let Some(url) = &self.upstream {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(bad("expected an http:// or https:// URL"));
                    }
                }
            }
            "resume_linger" => self.resume_linger = seconds()?,
            "replay_ttl" => self.replay_ttl = seconds()?,
            "replay_max_bytes" => self.replay_max_bytes = int()?,
            "replay_max_stream_bytes" => self.replay_max_stream_bytes = int()?,
            "redis_url" => self.redis_url = optional().map(Secret::from),
            "bench_routes" => {
                self.bench_routes = match text.to_ascii_lowercase().as_str() {
                    "" | "true" | "1" | "yes" | "on" => true,
                    "false" | "0" | "no" | "off" => false,
                    _ => return Err(bad("expected true or false")),
                }
            }
            "api_key" => {
                if let Origin::Env(_) = from {
                    self.api_keys.clear();
                }
                if !raw.is_empty() {
                    self.api_keys.push(Secret::from(raw));
                }
            }
            "api_key_file" => self.api_key_file = optional().map(PathBuf::from),
            "retry_ms" => {
                let ms = text
                    .parse::<u64>()
                    .map_err(|_| bad("expected a whole number of milliseconds, at least 0"))?;
                self.retry = (ms > 0).then(|| Duration::from_millis(ms));
            }
            "max_search_calls" | "max_llm_tokens" => {
                let value = match text {
                    "" => None,
                    _ => Some(
                        text.parse::<u64>()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| bad("expected a whole number, at least 1"))?,
                    ),
                };
                if setting.key == "max_search_calls" {
                    self.max_search_calls = value;
                } else {
                    self.max_llm_tokens = value;
                }
            }
            "search_deadline" => {
                self.search_deadline = match text {
                    "" => None,
                    _ => Some(positive()?),
                }
            }
            "breaker_cooldown" => self.breaker_cooldown = positive()?,
            "cors_origins" => self.cors_origins = optional(),
            "log_level" => {
                // `warning` as Python's logging and uvicorn spell it.
                self.log_level = match text.to_ascii_lowercase().as_str() {
                    "warning" | "warn" => "warn".to_string(),
                    level @ ("error" | "info" | "debug" | "trace") => level.to_string(),
                    _ => return Err(bad("expected error, warn, info, debug or trace")),
                };
            }
            other => return Err(ConfigError::Unknown(other.to_string())),
        }
        Ok(())
    }

    /// The request limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_streams: self.max_streams,
            max_body_bytes: self.max_body_bytes,
            ..Limits::default()
        }
    }

    /// Heartbeat and lifetime of each stream.
    pub fn stream_config(&self) -> StreamConfig {
        StreamConfig {
            heartbeat: self.heartbeat,
            timeout: self.stream_timeout,
            ..StreamConfig::default()
        }
    }

    /// Replay logs for resuming streams.
    pub fn replay(&self) -> ReplayConfig {
        ReplayConfig {
            ttl: self.replay_ttl,
            linger: self.resume_linger,
            max_bytes: self.replay_max_bytes,
            max_log_bytes: self.replay_max_stream_bytes,
        }
    }

    /// Corpus and cache of `local`; the HTTP engines' keys and URLs from the environment.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            corpus_dir: self.corpus.clone(),
            cache_dir: self.cache_dir.clone(),
            ..EngineConfig::default()
        }
        .or_env()
    }

    /// The model client's options (resolved against the environment by their consumer).
    pub fn llm(&self) -> LlmOptions {
        LlmOptions {
            base_url: self.llm_base_url.clone(),
            model: self.llm_model.clone(),
            api_key: self.llm_api_key.clone(),
            ..LlmOptions::default()
        }
    }

    /// The loop's settings.
    pub fn settings(&self) -> Settings {
        Settings {
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
        }
    }
}

#[cfg(test)]
mod tests;
