//! `DeepSearch` for Python: builds the core service from keyword options and hands out
//! its searches as `EventStream`s or awaitables.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use super::errors::{ConfigError, InvalidRequestError, LlmError};
use super::json::{take_error, PyJson};
use super::stream::{checked_yield_every, seconds, stream_config, PyEventStream};
use super::wake::{await_on_loop, Outcome};
use crate::deepsearch::{
    BreakerSettings, Budget, DeepSearch, Filter, FinalData, Locale, Request, Settings, StreamMode,
};
use crate::llm::LlmOptions;
use crate::search::{EngineConfig, PageReader, ReaderOptions};

/// A configured DeepSearch service; see the class docstring in `_core.pyi`.
#[pyclass(
    module = "deepsearch_stream._core",
    name = "DeepSearch",
    subclass,
    frozen
)]
pub struct PyDeepSearch {
    inner: Arc<DeepSearch>,
}

fn positive_seconds(name: &str, value: f64) -> PyResult<Duration> {
    // The shared check raises for NaN, zero, negative and overflowing values alike.
    Ok(seconds(name, Some(value))?.unwrap_or_default())
}

/// `llm`: `None` (environment, else offline), `"offline"`, or a dict of client options.
fn llm_options(llm: Option<&Bound<'_, PyAny>>) -> PyResult<Option<LlmOptions>> {
    let Some(llm) = llm.filter(|l| !l.is_none()) else {
        return Ok(Some(LlmOptions::default()));
    };
    if let Ok(text) = llm.cast::<PyString>() {
        return match text.to_str()? {
            "offline" => Ok(None),
            other => Err(ConfigError::new_err(format!(
                "llm must be None, \"offline\" or a dict of options, got {other:?}"
            ))),
        };
    }
    let dict = llm
        .cast::<PyDict>()
        .map_err(|_| ConfigError::new_err("llm must be None, \"offline\" or a dict of options"))?;
    let mut opts = LlmOptions::default();
    for (key, value) in dict.iter() {
        let key: String = key.extract()?;
        if value.is_none() {
            continue;
        }
        let secs = |v: &Bound<'_, PyAny>| -> PyResult<Duration> {
            positive_seconds(&format!("llm[{key:?}]"), v.extract()?)
        };
        match key.as_str() {
            "base_url" => opts.base_url = Some(value.extract()?),
            "model" => opts.model = Some(value.extract()?),
            "api_key" => opts.api_key = Some(value.extract::<String>()?.into()),
            "timeout" => opts.timeout = Some(secs(&value)?),
            "connect_timeout" => opts.connect_timeout = Some(secs(&value)?),
            "idle_timeout" => opts.idle_timeout = Some(secs(&value)?),
            "temperature" => opts.temperature = Some(value.extract()?),
            "max_tokens" => opts.max_tokens = Some(value.extract()?),
            other => {
                return Err(ConfigError::new_err(format!(
                    "unknown llm option {other:?}; expected base_url, model, api_key, timeout, \
                     connect_timeout, idle_timeout, temperature or max_tokens"
                )))
            }
        }
    }
    Ok(Some(opts))
}

fn stream_mode(value: &Bound<'_, PyAny>) -> PyResult<StreamMode> {
    let error = RefCell::new(None);
    let json = serde_json::to_value(PyJson::new(value, &error)).map_err(|e| {
        take_error(&error, || {
            InvalidRequestError::new_err(format!("invalid stream_mode: {e}"))
        })
    })?;
    Ok(StreamMode::from_value(&json)?)
}

fn request(query: &str, max_loop: i64, mode: StreamMode) -> PyResult<Request> {
    let max_loop = usize::try_from(max_loop).unwrap_or(0);
    let req = Request::new(query).max_loop(max_loop).mode(mode);
    req.validate()?;
    Ok(req)
}

/// The result as the dict `json.loads` would give of its JSON, built directly.
fn final_dict<'py>(py: Python<'py>, result: &FinalData) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("answer", &result.answer)?;
    let sources = result
        .sources
        .iter()
        .map(|s| {
            let source = PyDict::new(py);
            source.set_item("id", s.id)?;
            source.set_item("title", &s.title)?;
            source.set_item("url", &s.url)?;
            Ok(source)
        })
        .collect::<PyResult<Vec<_>>>()?;
    dict.set_item("sources", sources)?;
    dict.set_item("loops", result.loops)?;
    dict.set_item("queries", &result.queries)?;
    dict.set_item("elapsed_ms", result.elapsed_ms)?;
    let citations = result
        .citations
        .iter()
        .map(|c| {
            let check = PyDict::new(py);
            check.set_item("id", c.id)?;
            check.set_item("supported", c.supported)?;
            check.set_item("score", c.score)?;
            check.set_item("moved_to", c.moved_to)?;
            Ok(check)
        })
        .collect::<PyResult<Vec<_>>>()?;
    dict.set_item("citations", citations)?;
    let u = &result.usage;
    let usage = PyDict::new(py);
    usage.set_item("search_calls", u.search_calls)?;
    usage.set_item("engine_failures", u.engine_failures)?;
    usage.set_item("llm_prompt_tokens", u.llm_prompt_tokens)?;
    usage.set_item("llm_completion_tokens", u.llm_completion_tokens)?;
    usage.set_item("elapsed_ms", u.elapsed_ms)?;
    dict.set_item("usage", usage)?;
    Ok(dict)
}

impl PyDeepSearch {
    pub(crate) fn shared(&self) -> Arc<DeepSearch> {
        Arc::clone(&self.inner)
    }
}

#[pymethods]
impl PyDeepSearch {
    #[new]
    #[pyo3(signature = (
        engines = None, corpus = None, llm = None, *, locale = "en", cache_dir = None,
        max_queries = 4, docs_per_query = 5, concurrency = 8, engine_timeout = 10.0,
        answer_sentences = 6, max_sources = 12, read_pages = 0, allow_private_pages = false,
        max_search_calls = None, max_llm_tokens = None, search_deadline = None,
        breaker_failures = 3, breaker_cooldown = 30.0
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        engines: Option<Vec<String>>,
        corpus: Option<PathBuf>,
        llm: Option<&Bound<'_, PyAny>>,
        locale: &str,
        cache_dir: Option<PathBuf>,
        max_queries: usize,
        docs_per_query: usize,
        concurrency: usize,
        engine_timeout: f64,
        answer_sentences: usize,
        max_sources: usize,
        read_pages: usize,
        allow_private_pages: bool,
        max_search_calls: Option<u64>,
        max_llm_tokens: Option<u64>,
        search_deadline: Option<f64>,
        breaker_failures: u32,
        breaker_cooldown: f64,
    ) -> PyResult<Self> {
        let at_least_one = |name: &str, n: Option<u64>| match n {
            Some(0) => Err(ConfigError::new_err(format!(
                "{name} must be at least 1 (None: no limit)"
            ))),
            n => Ok(n),
        };
        let budget = Budget {
            max_search_calls: at_least_one("max_search_calls", max_search_calls)?,
            max_llm_tokens: at_least_one("max_llm_tokens", max_llm_tokens)?,
            deadline: search_deadline
                .map(|s| positive_seconds("search_deadline", s))
                .transpose()?,
        };
        let settings = Settings {
            max_queries,
            docs_per_query,
            concurrency,
            engine_timeout: positive_seconds("engine_timeout", engine_timeout)?,
            answer_sentences,
            max_sources,
            read_pages,
            locale: Locale::parse(locale).map_err(|e| ConfigError::new_err(e.to_string()))?,
            budget,
            breaker: BreakerSettings {
                failures: breaker_failures,
                cooldown: positive_seconds("breaker_cooldown", breaker_cooldown)?,
            },
        };
        let llm = match llm_options(llm)? {
            Some(opts) => opts
                .resolve()
                .map_err(|e| LlmError::new_err(e.to_string()))?,
            None => None,
        };
        let config = EngineConfig {
            corpus_dir: corpus,
            cache_dir,
            ..EngineConfig::default()
        }
        .or_env();
        let names = engines.unwrap_or_default();
        // Opening the local engine may build its index: let other Python threads run.
        let mut inner = py.detach(|| DeepSearch::from_config(&names, &config, llm, settings))?;
        if read_pages > 0 {
            let reader = PageReader::new(ReaderOptions {
                allow_private: allow_private_pages,
                ..ReaderOptions::default()
            })
            .map_err(|e| ConfigError::new_err(e.to_string()))?;
            inner = inner.with_reader(reader);
        }
        Ok(PyDeepSearch {
            inner: Arc::new(inner),
        })
    }

    /// Engine names, in the order their results are merged.
    #[getter]
    fn engines(&self) -> Vec<String> {
        self.inner
            .engine_names()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// `"offline"` or the model's name.
    #[getter]
    fn llm(&self) -> String {
        match self.inner.brain() {
            crate::deepsearch::Brain::Offline => "offline".to_owned(),
            crate::deepsearch::Brain::Llm(client) => client.config().model.clone(),
        }
    }

    #[pyo3(signature = (
        query, request_id, max_loop = 3, stream_mode = None, *, stream = true,
        heartbeat = Some(10.0), timeout = Some(3600.0), heartbeat_format = "data",
        max_pending = 256, max_pending_bytes = 4194304, max_chunk_bytes = 65536, yield_every = 32
    ), text_signature = "(self, query, request_id, max_loop=3, stream_mode=None, *, stream=True, heartbeat=10.0, timeout=3600.0, heartbeat_format='data', max_pending=256, max_pending_bytes=4194304, max_chunk_bytes=65536, yield_every=32)")]
    #[allow(clippy::too_many_arguments)]
    fn sse(
        &self,
        query: &str,
        request_id: &str,
        max_loop: i64,
        stream_mode: Option<&Bound<'_, PyAny>>,
        stream: bool,
        heartbeat: Option<f64>,
        timeout: Option<f64>,
        heartbeat_format: &str,
        max_pending: usize,
        max_pending_bytes: usize,
        max_chunk_bytes: usize,
        yield_every: u32,
    ) -> PyResult<PyEventStream> {
        let mut mode = match stream_mode {
            Some(m) if !m.is_none() => self::stream_mode(m)?,
            _ => StreamMode::default(),
        };
        if !stream {
            mode.filter = Filter::Result;
        }
        let req = request(query, max_loop, mode)?;
        let config = stream_config(
            heartbeat,
            timeout,
            max_pending,
            max_pending_bytes,
            max_chunk_bytes,
            heartbeat_format,
        )?;
        let yield_every = checked_yield_every(yield_every)?;
        let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
        let events = self.inner.stream(request_id, req, config)?;
        let sender = events.sender();
        Ok(PyEventStream::from_parts(sender, events, yield_every))
    }

    #[pyo3(signature = (query, request_id = None, max_loop = 3))]
    fn search<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        request_id: Option<&str>,
        max_loop: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        // The id names the search in the logs (a result has no envelope to carry it).
        let request_id = match request_id {
            Some(id) if crate::api::valid_request_id(id) => id.to_string(),
            Some(id) => {
                return Err(InvalidRequestError::new_err(format!(
                    "request_id must be 1 to {} characters from A-Z a-z 0-9 . _ : -, got {:?}",
                    crate::api::MAX_REQUEST_ID_CHARS,
                    id.chars().take(40).collect::<String>()
                )))
            }
            None => crate::api::new_request_id(),
        };
        let req = request(query, max_loop, StreamMode::default())?;
        let inner = Arc::clone(&self.inner);
        let searched = async move {
            let span = tracing::info_span!("search", request_id = %request_id);
            let result = tracing::Instrument::instrument(inner.search(&req), span).await;
            match &result {
                Ok(_) => tracing::info!(request_id = %request_id, "search answered"),
                Err(e) => {
                    tracing::info!(request_id = %request_id, code = e.code(), "search failed")
                }
            }
            Outcome::Build(Box::new(move |py| {
                Ok(final_dict(py, &result?)?.into_any().unbind())
            }))
        };
        await_on_loop(py, searched, None)
    }

    fn __repr__(&self) -> String {
        format!(
            "DeepSearch(engines={:?}, llm={:?})",
            self.engines(),
            self.llm()
        )
    }
}
