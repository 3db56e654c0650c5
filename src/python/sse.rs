//! `SseDecoder` for Python: the core's WHATWG decoder, for clients and test suites that
//! read a `text/event-stream` body chunk by chunk.

use pyo3::prelude::*;

use super::errors::DecodeError;
use crate::sse::{DecodedEvent, Decoder};

const _: () = assert!(Decoder::DEFAULT_MAX_LINE_BYTES == 1048576);
const _: () = assert!(Decoder::DEFAULT_MAX_EVENT_BYTES == 8388608);

/// One dispatched event as `(event, data, last_event_id)`.
type Event = (String, String, String);

/// Incremental SSE decoder; see the class docstring in `_core.pyi`.
#[pyclass(module = "deepsearch_stream._core", name = "SseDecoder")]
pub struct PySseDecoder {
    inner: Decoder,
    out: Vec<DecodedEvent>,
}

#[pymethods]
impl PySseDecoder {
    #[new]
    // Literals, so that Python's signature shows them: the core's defaults.
    #[pyo3(signature = (*, max_line_bytes = 1048576, max_event_bytes = 8388608))]
    fn new(max_line_bytes: usize, max_event_bytes: usize) -> Self {
        PySseDecoder {
            inner: Decoder::with_limits(max_line_bytes, max_event_bytes),
            out: Vec::new(),
        }
    }

    fn feed(&mut self, chunk: &[u8]) -> PyResult<Vec<Event>> {
        self.out.clear();
        let result = self.inner.try_feed(chunk, &mut self.out);
        // A broken limit fails the read: the events before it are not worth keeping
        // when the rest of the stream cannot be framed.
        result.map_err(|e| DecodeError::new_err(e.to_string()))?;
        Ok(self
            .out
            .drain(..)
            .map(|e| (e.event, e.data, e.last_event_id.to_string()))
            .collect())
    }

    fn finish(&mut self) {
        self.inner.finish();
    }

    #[getter]
    fn last_event_id(&self) -> &str {
        self.inner.last_event_id()
    }

    #[getter]
    fn retry(&self) -> Option<u64> {
        self.inner.retry()
    }
}
