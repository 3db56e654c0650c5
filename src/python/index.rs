//! `index_corpus` for Python: build or refresh a corpus folder's local index, reporting
//! progress, for `deepsearch-stream index`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::errors::SearchEngineError;
use crate::search::local::default_cache_dir;
use crate::search::LocalEngine;

/// Calls to `progress` are at most this frequent (and always at the end): a terminal
/// needs no more, and each one takes the GIL.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

#[pyfunction]
#[pyo3(signature = (corpus, cache_dir = None, progress = None))]
pub fn index_corpus<'py>(
    py: Python<'py>,
    corpus: PathBuf,
    cache_dir: Option<PathBuf>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let cache_dir = cache_dir.unwrap_or_else(default_cache_dir);
    let mut last: Option<Instant> = None;
    let mut failed: Option<PyErr> = None;
    let mut report = |done: usize, total: usize| {
        let Some(callback) = &progress else { return };
        let due = last.is_none_or(|t| t.elapsed() >= PROGRESS_EVERY) || done == total;
        if failed.is_some() || !due {
            return;
        }
        last = Some(Instant::now());
        if let Err(e) = Python::attach(|py| callback.call1(py, (done, total)).map(drop)) {
            failed = Some(e);
        }
    };
    let opened = py.detach(|| LocalEngine::open_with_progress(&corpus, &cache_dir, &mut report));
    if let Some(e) = failed {
        return Err(e);
    }
    let engine = opened.map_err(|e| SearchEngineError::new_err(e.to_string()))?;
    let out = PyDict::new(py);
    out.set_item("corpus", engine.corpus_dir())?;
    out.set_item("index_dir", engine.index_dir())?;
    out.set_item("documents", engine.num_files())?;
    out.set_item("passages", engine.num_passages())?;
    out.set_item("rebuilt", engine.was_rebuilt())?;
    Ok(out)
}
