//! `Service` for Python: the HTTP contract of both servers (request checks, limits,
//! error bodies, stream headers, genie-tool shapes), answering with plain values a web
//! framework turns into a response.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

use std::sync::Arc;
use std::time::Duration;

use super::deepsearch::PyDeepSearch;
use super::errors::ConfigError;
use super::stream::{checked_yield_every, seconds, stream_config, PyEventStream};
use super::wake::{await_on_loop, Outcome};
use crate::api::mcp::McpHead;
use crate::api::{Answer, AnswerBody, BodyCap, Limits, RequestBody, Route, SearchHead, Service};
use crate::replay::{MemoryStore, RedisStore, ReplayConfig, ReplayStore, REDIS_CONNECT_TIMEOUT};

/// The search service behind an HTTP server; see the class docstring in `_core.pyi`.
#[pyclass(module = "deepsearch_stream._core", name = "Service", frozen)]
pub struct PyService {
    inner: Service,
    yield_every: u32,
}

type Headers = Vec<(String, String)>;

/// A response as `(status, headers, body)`; the body is `bytes` or an `EventStream`.
fn response(py: Python<'_>, status: u16, headers: Headers, body: Py<PyAny>) -> Py<PyAny> {
    (status, headers, body)
        .into_pyobject(py)
        .map(|t| t.into_any().unbind())
        .unwrap_or_else(|_| py.None())
}

fn route(name: &str) -> PyResult<Route> {
    Route::from_name(name).ok_or_else(|| {
        let names: Vec<&str> = Route::ALL.iter().map(|r| r.name()).collect();
        ConfigError::new_err(format!(
            "route must be one of {}, got {name:?}",
            names.join(", ")
        ))
    })
}

/// The body as the face read it: `None` is one over the cap, `timed_out` one that did
/// not arrive in time.
fn read_body(timed_out: Option<Duration>, body: Option<&[u8]>) -> RequestBody {
    match (timed_out, body) {
        (Some(wait), _) => RequestBody::TimedOut(wait),
        (None, Some(bytes)) => RequestBody::Read(bytes::Bytes::copy_from_slice(bytes)),
        (None, None) => RequestBody::TooLarge,
    }
}

/// An [`Answer`] as `(status, headers, body)`.
fn to_python(py: Python<'_>, answer: Answer, yield_every: u32) -> PyResult<Py<PyAny>> {
    let headers = answer
        .headers
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let body = match answer.body {
        AnswerBody::Stream(stream) => {
            let sender = stream.sender();
            let stream = PyEventStream::from_parts(sender, stream, yield_every);
            Py::new(py, stream)?.into_any()
        }
        AnswerBody::Bytes(bytes) => PyBytes::new(py, &bytes).into_any().unbind(),
    };
    Ok(response(py, answer.status, headers, body))
}

#[pymethods]
impl PyService {
    #[new]
    #[pyo3(signature = (
        search, *, upstream = None, max_streams = 1000, max_body_bytes = 65536, max_query_chars = 4096,
        heartbeat = Some(10.0), timeout = Some(3600.0), heartbeat_format = "data",
        max_pending = 256, max_pending_bytes = 4194304, max_chunk_bytes = 65536, yield_every = 32,
        resume_linger = 60.0, replay_ttl = 300.0, replay_max_bytes = 268435456,
        replay_max_stream_bytes = 16777216, redis_url = None, retry_ms = Some(3000)
    ), text_signature = "(search, *, upstream=None, max_streams=1000, max_body_bytes=65536, max_query_chars=4096, heartbeat=10.0, timeout=3600.0, heartbeat_format='data', max_pending=256, max_pending_bytes=4194304, max_chunk_bytes=65536, yield_every=32, resume_linger=60.0, replay_ttl=300.0, replay_max_bytes=268435456, replay_max_stream_bytes=16777216, redis_url=None, retry_ms=3000)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        search: &PyDeepSearch,
        upstream: Option<&str>,
        max_streams: usize,
        max_body_bytes: usize,
        max_query_chars: usize,
        heartbeat: Option<f64>,
        timeout: Option<f64>,
        heartbeat_format: &str,
        max_pending: usize,
        max_pending_bytes: usize,
        max_chunk_bytes: usize,
        yield_every: u32,
        resume_linger: f64,
        replay_ttl: f64,
        replay_max_bytes: usize,
        replay_max_stream_bytes: usize,
        redis_url: Option<&str>,
        retry_ms: Option<u64>,
    ) -> PyResult<Self> {
        let seconds = |name: &str, value: f64| {
            Duration::try_from_secs_f64(value).map_err(|_| {
                ConfigError::new_err(format!(
                    "{name} must be a number of seconds >= 0, got {value}"
                ))
            })
        };
        let replay = ReplayConfig {
            ttl: seconds("replay_ttl", replay_ttl)?,
            linger: seconds("resume_linger", resume_linger)?,
            max_bytes: replay_max_bytes,
            max_log_bytes: replay_max_stream_bytes,
        };
        replay.validate().map_err(ConfigError::new_err)?;
        let config = stream_config(
            heartbeat,
            timeout,
            max_pending,
            max_pending_bytes,
            max_chunk_bytes,
            heartbeat_format,
        )?;
        let limits = Limits {
            max_streams,
            max_body_bytes,
            max_query_chars,
        };
        let store: Arc<dyn ReplayStore> = match redis_url {
            // Connected on the runtime the service runs on (the connection's task lives
            // there), without holding the GIL.
            Some(url) => Arc::new(
                py.detach(|| {
                    pyo3_async_runtimes::tokio::get_runtime().block_on(RedisStore::connect(
                        url,
                        replay,
                        REDIS_CONNECT_TIMEOUT,
                    ))
                })
                .map_err(|e| ConfigError::new_err(format!("replay store: {e}")))?,
            ),
            None => Arc::new(MemoryStore::new(replay)),
        };
        let mut inner = Service::from_shared(search.shared(), limits, config)
            .with_replay(store)
            .with_retry(retry_ms.map(Duration::from_millis));
        if let Some(url) = upstream {
            inner = inner
                .with_upstream(url)
                .map_err(|e| ConfigError::new_err(e.message))?;
        }
        Ok(PyService {
            inner,
            yield_every: checked_yield_every(yield_every)?,
        })
    }

    /// Searches in progress now.
    #[getter]
    fn open_streams(&self) -> usize {
        self.inner.open_streams()
    }

    /// Request bodies larger than this are refused with 413.
    #[getter]
    fn max_body_bytes(&self) -> usize {
        self.inner.limits().max_body_bytes
    }

    /// Reads a request body by the rule both faces share: `None` when a body declared
    /// `declared` bytes long must not be read at all (it is too large); else
    /// `(limit, drain_to)`: keep at most `limit` bytes; past them, read on (discarding)
    /// until `drain_to` bytes were seen or the body ends, then pass `body=None`.
    #[pyo3(signature = (declared = None))]
    fn body_cap(&self, declared: Option<usize>) -> Option<(usize, usize)> {
        let cap = BodyCap::new(self.inner.limits().max_body_bytes, declared);
        cap.worth_reading().then(|| (cap.limit(), cap.drain_to()))
    }

    #[pyo3(signature = (route, content_type, body, *, method = "POST", query = None, last_event_id = None, body_timeout = None, path_id = None, traceparent = None, authorization = None))]
    #[allow(clippy::too_many_arguments)]
    fn start<'py>(
        &self,
        py: Python<'py>,
        route: &str,
        content_type: Option<String>,
        body: Option<&[u8]>,
        method: &str,
        query: Option<String>,
        last_event_id: Option<String>,
        body_timeout: Option<f64>,
        path_id: Option<String>,
        traceparent: Option<String>,
        authorization: Option<Vec<u8>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let route = self::route(route)?;
        let timed_out = seconds("body_timeout", body_timeout)?;
        let method = match method {
            "GET" | "HEAD" => "GET",
            "POST" => "POST",
            other => {
                return Err(ConfigError::new_err(format!(
                    "method must be \"GET\" or \"POST\", got {other:?}"
                )))
            }
        };
        let service = self.inner.clone();
        let yield_every = self.yield_every;
        let body = read_body(timed_out, body);
        let started = async move {
            let head = SearchHead {
                method,
                query: query.as_deref(),
                content_type: content_type.as_deref(),
                last_event_id: last_event_id.as_deref(),
                path_id: path_id.as_deref(),
                traceparent: traceparent.as_deref(),
                authorization: authorization.as_deref(),
            };
            let answer = service.handle(route, head, body).await;
            Outcome::Build(Box::new(move |py| to_python(py, answer, yield_every)))
        };
        await_on_loop(py, started, None)
    }

    /// Answers one `POST /mcp` (see `_core.pyi`): the same `(status, headers, body)`.
    #[pyo3(signature = (content_type, body, *, accept = None, protocol_version = None, session_id = None, method = None, name = None, body_timeout = None))]
    #[allow(clippy::too_many_arguments)]
    fn mcp<'py>(
        &self,
        py: Python<'py>,
        content_type: Option<String>,
        body: Option<&[u8]>,
        accept: Option<String>,
        protocol_version: Option<String>,
        session_id: Option<String>,
        method: Option<String>,
        name: Option<String>,
        body_timeout: Option<f64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let timed_out = seconds("body_timeout", body_timeout)?;
        let body = read_body(timed_out, body);
        let service = self.inner.clone();
        let yield_every = self.yield_every;
        let answered = async move {
            let head = McpHead {
                content_type: content_type.as_deref(),
                accept: accept.as_deref(),
                protocol_version: protocol_version.as_deref(),
                session_id: session_id.as_deref(),
                method: method.as_deref(),
                name: name.as_deref(),
            };
            let answer = service.mcp(head, body).await;
            Outcome::Build(Box::new(move |py| to_python(py, answer, yield_every)))
        };
        await_on_loop(py, answered, None)
    }

    /// Ends every open stream (and every one started from now on) with an `error`
    /// message of code `shutdown`, then `[DONE]`; returns how many were open.
    fn shutdown(&self) -> usize {
        self.inner.streams().begin_shutdown()
    }

    /// Waits, at most `timeout` seconds, until every search's replay log is written out;
    /// resolves to False if some still were. After `shutdown` this is short.
    fn recorded<'py>(&self, py: Python<'py>, timeout: f64) -> PyResult<Bound<'py, PyAny>> {
        let timeout = seconds("timeout", Some(timeout))?.unwrap_or_default();
        let streams = Arc::clone(self.inner.streams());
        let done = async move {
            let all = streams.recorded(timeout).await;
            Outcome::Build(Box::new(move |py| {
                Ok(pyo3::types::PyBool::new(py, all)
                    .to_owned()
                    .into_any()
                    .unbind())
            }))
        };
        await_on_loop(py, done, None)
    }
}

/// `/metrics` in the Prometheus text format.
#[pyfunction]
pub fn metrics_text() -> String {
    crate::metrics::global().render()
}
