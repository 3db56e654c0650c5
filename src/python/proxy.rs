//! `proxy()`: an `EventStream` relaying a deepsearch service's SSE answer (see
//! [`crate::proxy`]), fed by a Rust task on the shared tokio runtime.

use std::cell::RefCell;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use super::json::{take_error, PyJson};
use super::stream::{checked_yield_every, seconds, stream_config, PyEventStream};
use crate::proxy::ProxyOptions;

/// POSTs `body` to `url` and returns the stream relaying the answer; the parameters are
/// documented in `_core.pyi`.
#[pyfunction]
#[pyo3(signature = (
    url, body, *, request_id = "", headers = None, timeout = Some(3600.0),
    connect_timeout = Some(10.0), idle_timeout = Some(60.0), heartbeat = Some(10.0),
    heartbeat_format = "data", max_pending = 256, max_pending_bytes = 4194304,
    max_chunk_bytes = 65536, yield_every = 32
), text_signature = "(url, body, *, request_id='', headers=None, timeout=3600.0, connect_timeout=10.0, idle_timeout=60.0, heartbeat=10.0, heartbeat_format='data', max_pending=256, max_pending_bytes=4194304, max_chunk_bytes=65536, yield_every=32)")]
#[allow(clippy::too_many_arguments)]
pub fn proxy(
    url: &str,
    body: &Bound<'_, PyAny>,
    request_id: &str,
    headers: Option<&Bound<'_, PyAny>>,
    timeout: Option<f64>,
    connect_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    heartbeat: Option<f64>,
    heartbeat_format: &str,
    max_pending: usize,
    max_pending_bytes: usize,
    max_chunk_bytes: usize,
    yield_every: u32,
) -> PyResult<PyEventStream> {
    let yield_every = checked_yield_every(yield_every)?;
    // The relay's own deadline ends the stream with `upstream_timeout`, which tells the
    // client more than the stream's generic `timeout` would; one is enough.
    let config = stream_config(
        heartbeat,
        None,
        max_pending,
        max_pending_bytes,
        max_chunk_bytes,
        heartbeat_format,
    )?;
    let options = ProxyOptions {
        headers: header_pairs(headers)?,
        connect_timeout: seconds("connect_timeout", connect_timeout)?,
        idle_timeout: seconds("idle_timeout", idle_timeout)?,
        timeout: seconds("timeout", timeout)?,
        ..ProxyOptions::default()
    };
    let body = body_bytes(body)?;
    let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
    let stream = crate::proxy::spawn(request_id, url, body, options, config)?;
    let sender = stream.sender();
    Ok(PyEventStream::from_parts(sender, stream, yield_every))
}

/// The request body: bytes as they are, `str` as UTF-8, a dict or list as JSON.
fn body_bytes(body: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    if let Ok(b) = body.cast::<PyBytes>() {
        return Ok(b.as_bytes().to_vec());
    }
    if let Ok(b) = body.cast::<PyByteArray>() {
        return Ok(b.to_vec());
    }
    if let Ok(s) = body.cast::<PyString>() {
        return Ok(s.to_str()?.as_bytes().to_vec());
    }
    if body.is_instance_of::<PyDict>()
        || body.is_instance_of::<PyList>()
        || body.is_instance_of::<PyTuple>()
    {
        let error = RefCell::new(None);
        return serde_json::to_vec(&PyJson::new(body, &error))
            .map_err(|e| take_error(&error, || PyTypeError::new_err(e.to_string())));
    }
    Err(PyTypeError::new_err(format!(
        "body must be bytes, str, dict or list, not {}",
        body.get_type().name()?
    )))
}

/// `headers` as name/value pairs: any mapping (its `items()`), in its order.
fn header_pairs(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let Some(headers) = headers else {
        return Ok(Vec::new());
    };
    headers
        .call_method0("items")?
        .try_iter()?
        .map(|item| item?.extract::<(String, String)>())
        .collect()
}
