//! The Python face (`deepsearch_stream._core`): conversion code only. Each file is one
//! Python concept; `python/deepsearch_stream/_core.pyi` documents the same names.

// pyclasses are opaque handles; their Python repr is what users see.
#![allow(missing_debug_implementations)]

mod access;
mod config;
mod deepsearch;
mod errors;
mod index;
mod json;
mod logging;
mod proxy;
mod service;
mod sse;
mod stream;
mod synthetic;
mod wake;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The core's log events go to `logging.getLogger("deepsearch_stream")`.
    logging::install();
    if logging::exporting_traces() {
        // The batch exporter sends every few seconds: the spans of the last searches
        // would be lost at exit without a last flush.
        let flush = pyo3::types::PyCFunction::new_closure(
            py,
            None,
            None,
            |args: &Bound<'_, pyo3::types::PyTuple>, _kwargs| {
                args.py().detach(logging::flush_traces);
            },
        )?;
        py.import("atexit")?.call_method1("register", (flush,))?;
    }
    m.add_class::<stream::PyEventStream>()?;
    m.add_class::<deepsearch::PyDeepSearch>()?;
    m.add_class::<service::PyService>()?;
    m.add_class::<access::PyAccess>()?;
    m.add_class::<config::PyServiceConfig>()?;
    m.add_function(wrap_pyfunction!(config::config_table, m)?)?;
    m.add_function(wrap_pyfunction!(config::search_settings, m)?)?;
    m.add_function(wrap_pyfunction!(access::valid_request_id, m)?)?;
    m.add_function(wrap_pyfunction!(service::metrics_text, m)?)?;
    m.add("METRICS_CONTENT_TYPE", crate::metrics::CONTENT_TYPE)?;
    m.add("SSE_HEADERS", crate::api::SSE_HEADERS.to_vec())?;
    m.add_class::<stream::Ready>()?;
    m.add_function(wrap_pyfunction!(synthetic::synthetic_stream, m)?)?;
    m.add_function(wrap_pyfunction!(proxy::proxy, m)?)?;
    m.add_class::<sse::PySseDecoder>()?;
    m.add_function(wrap_pyfunction!(index::index_corpus, m)?)?;
    m.add(
        "DeepSearchStreamError",
        py.get_type::<errors::DeepSearchStreamError>(),
    )?;
    m.add(
        "StreamClosedError",
        py.get_type::<errors::StreamClosedError>(),
    )?;
    m.add(
        "StreamTimeoutError",
        py.get_type::<errors::StreamTimeoutError>(),
    )?;
    m.add("EncodeError", py.get_type::<errors::EncodeError>())?;
    m.add("DecodeError", py.get_type::<errors::DecodeError>())?;
    m.add("ConfigError", py.get_type::<errors::ConfigError>())?;
    m.add(
        "InvalidRequestError",
        py.get_type::<errors::InvalidRequestError>(),
    )?;
    m.add(
        "SearchEngineError",
        py.get_type::<errors::SearchEngineError>(),
    )?;
    m.add("LlmError", py.get_type::<errors::LlmError>())?;
    Ok(())
}
