//! Picking an engine by name from one configuration struct.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::brave::{BraveEngine, BRAVE_API_KEY_ENV, BRAVE_BASE_URL_ENV};
use super::http::{HttpSettings, ProviderOptions, DEFAULT_TIMEOUT};
use super::jina::{JinaEngine, JINA_API_KEY_ENV, JINA_BASE_URL_ENV};
use super::local::{default_cache_dir, default_cache_dir_from, LocalEngine};
use super::searxng::{SearxngEngine, SEARXNG_URL_ENV};
use super::serper::{SerperEngine, SERPER_API_KEY_ENV, SERPER_BASE_URL_ENV};
use super::tavily::{TavilyEngine, TAVILY_API_KEY_ENV, TAVILY_BASE_URL_ENV};
use super::{SearchEngine, SearchError};

/// Variable naming the local corpus directory.
pub const CORPUS_DIR_ENV: &str = "DEEPSEARCH_CORPUS_DIR";
/// Variable holding the per-call timeout of HTTP engines, in (fractional) seconds.
pub const TIMEOUT_ENV: &str = "DEEPSEARCH_SEARCH_TIMEOUT_SECS";

/// Directory under the cache directory where the Python package exports the default
/// corpus (the Python documentation); the `local` engine uses it when no corpus is given.
pub const PYTHON_DOCS_DIR: &str = "python-docs";

/// Every name [`build_engine`] accepts.
pub const ENGINE_NAMES: [&str; 6] = ["local", "searxng", "tavily", "brave", "serper", "jina"];

/// Everything any engine needs. Fields left `None` fall back to defaults; the
/// environment is read only by [`EngineConfig::from_env`] and [`EngineConfig::or_env`].
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Corpus of the `local` engine (`DEEPSEARCH_CORPUS_DIR`).
    pub corpus_dir: Option<PathBuf>,
    /// Index cache of the `local` engine; `None` means [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// `SEARXNG_URL`.
    pub searxng: ProviderOptions,
    /// `TAVILY_API_KEY`, `TAVILY_BASE_URL`.
    pub tavily: ProviderOptions,
    /// `BRAVE_API_KEY`, `BRAVE_BASE_URL`.
    pub brave: ProviderOptions,
    /// `SERPER_API_KEY`, `SERPER_BASE_URL`.
    pub serper: ProviderOptions,
    /// `JINA_API_KEY`, `JINA_BASE_URL`.
    pub jina: ProviderOptions,
    /// Per-call deadline of HTTP engines; `None` means [`DEFAULT_TIMEOUT`].
    pub timeout: Option<Duration>,
    /// Client shared by the HTTP engines; `None` means the process-wide
    /// [`shared_client`](crate::http::shared_client).
    pub client: Option<reqwest::Client>,
}

impl EngineConfig {
    /// Reads every setting from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads every setting through `lookup` (a variable name to its value), so
    /// configuration can come from a file or a test table instead of the real env.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let lookup: &dyn Fn(&str) -> Option<String> = &lookup;
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let timeout = get(TIMEOUT_ENV).and_then(|raw| {
            let parsed = raw
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0);
            if parsed.is_none() {
                tracing::warn!(value = %raw, "ignoring invalid {TIMEOUT_ENV}");
            }
            parsed.map(Duration::from_secs_f64)
        });
        EngineConfig {
            corpus_dir: get(CORPUS_DIR_ENV).map(PathBuf::from),
            cache_dir: Some(default_cache_dir_from(lookup)),
            searxng: ProviderOptions::from_lookup(SEARXNG_URL_ENV, None, lookup),
            tavily: ProviderOptions::from_lookup(
                TAVILY_BASE_URL_ENV,
                Some(TAVILY_API_KEY_ENV),
                lookup,
            ),
            brave: ProviderOptions::from_lookup(
                BRAVE_BASE_URL_ENV,
                Some(BRAVE_API_KEY_ENV),
                lookup,
            ),
            serper: ProviderOptions::from_lookup(
                SERPER_BASE_URL_ENV,
                Some(SERPER_API_KEY_ENV),
                lookup,
            ),
            jina: ProviderOptions::from_lookup(JINA_BASE_URL_ENV, Some(JINA_API_KEY_ENV), lookup),
            timeout,
            client: None,
        }
    }

    /// Fills every setting left unset from `lookup`; values already set win.
    pub fn or_lookup(self, lookup: impl Fn(&str) -> Option<String>) -> Self {
        let fallback = Self::from_lookup(lookup);
        EngineConfig {
            corpus_dir: self.corpus_dir.or(fallback.corpus_dir),
            cache_dir: self.cache_dir.or(fallback.cache_dir),
            searxng: self.searxng.or(fallback.searxng),
            tavily: self.tavily.or(fallback.tavily),
            brave: self.brave.or(fallback.brave),
            serper: self.serper.or(fallback.serper),
            jina: self.jina.or(fallback.jina),
            timeout: self.timeout.or(fallback.timeout),
            client: self.client,
        }
    }

    /// Fills every setting left unset from the process environment: the usual way
    /// to build a configuration where code sets a few things and env the rest.
    pub fn or_env(self) -> Self {
        self.or_lookup(|name| std::env::var(name).ok())
    }

    /// Client and deadline for the HTTP engines.
    pub fn http(&self) -> Result<HttpSettings, SearchError> {
        let timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        match &self.client {
            Some(client) => Ok(HttpSettings {
                client: client.clone(),
                timeout,
            }),
            None => HttpSettings::new(timeout),
        }
    }
}

/// Builds the engine called `name` (one of [`ENGINE_NAMES`], case-insensitive).
///
/// Fails with `UnknownEngine` for other names and with `MissingConfig(VAR)` when a
/// setting the engine cannot work without is absent. `local` without a corpus directory
/// uses the exported Python documentation (`{cache_dir}/python-docs`) when it exists. Building `local` opens (and
/// may build) its index, which blocks: use `spawn_blocking` on a runtime.
pub fn build_engine(name: &str, cfg: &EngineConfig) -> Result<Arc<dyn SearchEngine>, SearchError> {
    let engine: Arc<dyn SearchEngine> = match name.trim().to_ascii_lowercase().as_str() {
        "local" => {
            let cache = cfg.cache_dir.clone().unwrap_or_else(default_cache_dir);
            let corpus = match &cfg.corpus_dir {
                Some(dir) => dir.clone(),
                None => {
                    let exported = cache.join(PYTHON_DOCS_DIR);
                    if !exported.is_dir() {
                        return Err(SearchError::InvalidConfig {
                            name: CORPUS_DIR_ENV,
                            reason: format!(
                                "no corpus given and no exported Python documentation at {}; \
                                 set {CORPUS_DIR_ENV} or run `python -m deepsearch_stream.corpus`",
                                exported.display()
                            ),
                        });
                    }
                    exported
                }
            };
            Arc::new(LocalEngine::open(corpus, cache)?)
        }
        "searxng" => Arc::new(SearxngEngine::new(&cfg.searxng, cfg.http()?)?),
        "tavily" => Arc::new(TavilyEngine::new(&cfg.tavily, cfg.http()?)?),
        "brave" => Arc::new(BraveEngine::new(&cfg.brave, cfg.http()?)?),
        "serper" => Arc::new(SerperEngine::new(&cfg.serper, cfg.http()?)?),
        "jina" => Arc::new(JinaEngine::new(&cfg.jina, cfg.http()?)?),
        _ => return Err(SearchError::UnknownEngine(name.to_string())),
    };
    Ok(engine)
}
