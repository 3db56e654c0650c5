//! The settings table and `ServiceConfig` for Python: the argparse CLI is built from
//! the same rows as `deepsearch-server`'s, and values are checked by the same code.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::ConfigError;
use crate::config::{self, SETTINGS};

/// `(key, flag, env, default, help, kind)`.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    String,
    &'static str,
);

/// One row per setting; `help` is the whole line `--help` shows (description, default,
/// variable), `default` `""` for none.
#[pyfunction]
pub fn config_table() -> Vec<Row> {
    SETTINGS
        .iter()
        .map(|s| {
            (
                s.key,
                s.flag,
                s.env,
                s.default,
                s.help_line(),
                s.kind.as_str(),
            )
        })
        .collect()
}

/// The keys of the settings `search` takes.
#[pyfunction]
pub fn search_settings() -> Vec<&'static str> {
    config::SEARCH_SETTINGS.to_vec()
}

/// Every operator setting, parsed; see the class docstring in `_core.pyi`.
#[pyclass(module = "deepsearch_stream._core", name = "ServiceConfig", frozen)]
pub struct PyServiceConfig {
    inner: config::ServiceConfig,
}

fn checked(
    result: Result<config::ServiceConfig, config::ConfigError>,
) -> PyResult<PyServiceConfig> {
    result
        .map(|inner| PyServiceConfig { inner })
        .map_err(|e| ConfigError::new_err(e.to_string()))
}

fn seconds(d: std::time::Duration) -> f64 {
    d.as_secs_f64()
}

#[pymethods]
impl PyServiceConfig {
    /// The table's defaults alone, without the environment.
    #[staticmethod]
    fn defaults() -> Self {
        PyServiceConfig {
            inner: config::ServiceConfig::defaults(),
        }
    }

    /// The table's defaults under the `DEEPSEARCH_*` variables.
    #[staticmethod]
    fn from_env() -> PyResult<Self> {
        checked(config::ServiceConfig::from_env())
    }

    /// `args` (key to the text given on the command line) over the environment.
    #[staticmethod]
    fn from_args(args: Vec<(String, String)>) -> PyResult<Self> {
        checked(config::ServiceConfig::from_args(args))
    }

    /// Every setting by key: seconds as floats (`None` for heartbeat and stream_timeout
    /// when off), paths and secrets as strings, `None` when unset; `api_key` (the
    /// repeatable flag) a list; `retry_ms` 0 when off.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let c = &self.inner;
        let d = PyDict::new(py);
        let path =
            |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
        let secret = |s: &Option<crate::http::Secret>| s.as_ref().map(|s| s.expose().to_owned());
        d.set_item("host", &c.host)?;
        d.set_item("port", c.port)?;
        d.set_item("corpus", path(&c.corpus))?;
        d.set_item("cache_dir", path(&c.cache_dir))?;
        d.set_item("engines", &c.engines)?;
        d.set_item("llm_base_url", &c.llm_base_url)?;
        d.set_item("llm_model", &c.llm_model)?;
        d.set_item("llm_api_key", secret(&c.llm_api_key))?;
        d.set_item(
            "locale",
            match c.locale {
                crate::deepsearch::Locale::En => "en",
                crate::deepsearch::Locale::Zh => "zh",
            },
        )?;
        d.set_item("max_streams", c.max_streams)?;
        d.set_item("max_body_bytes", c.max_body_bytes)?;
        d.set_item("heartbeat", c.heartbeat.map(seconds))?;
        d.set_item("stream_timeout", c.stream_timeout.map(seconds))?;
        d.set_item("shutdown_timeout", seconds(c.shutdown_timeout))?;
        d.set_item("header_timeout", seconds(c.header_timeout))?;
        d.set_item("body_timeout", seconds(c.body_timeout))?;
        d.set_item("max_connections", c.max_connections)?;
        d.set_item("upstream", &c.upstream)?;
        d.set_item("resume_linger", seconds(c.resume_linger))?;
        d.set_item("replay_ttl", seconds(c.replay_ttl))?;
        d.set_item("replay_max_bytes", c.replay_max_bytes)?;
        d.set_item("replay_max_stream_bytes", c.replay_max_stream_bytes)?;
        d.set_item("redis_url", secret(&c.redis_url))?;
        d.set_item("bench_routes", c.bench_routes)?;
        let keys: Vec<&str> = c.api_keys.iter().map(|k| k.expose()).collect();
        d.set_item("api_key", keys)?;
        d.set_item("api_key_file", path(&c.api_key_file))?;
        d.set_item("retry_ms", c.retry.map_or(0, |r| r.as_millis() as u64))?;
        d.set_item("max_search_calls", c.max_search_calls)?;
        d.set_item("max_llm_tokens", c.max_llm_tokens)?;
        d.set_item("search_deadline", c.search_deadline.map(seconds))?;
        d.set_item("breaker_cooldown", seconds(c.breaker_cooldown))?;
        d.set_item("cors_origins", &c.cors_origins)?;
        d.set_item("log_level", &c.log_level)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        // The keys and the Redis URL print redacted.
        format!("{:?}", self.inner)
    }
}
