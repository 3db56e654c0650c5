//! `EventStream` for Python: `await stream.send(...)` on the producer side and
//! `async for chunk in stream` (bytes) on the consumer side.
//!
//! The hot path avoids asyncio futures and thread hops: when a frame is already buffered
//! (or there is room to send), the call returns a [`Ready`] awaitable that completes in
//! place. Only a real wait becomes an asyncio future, settled from the tokio runtime
//! through the loop's waker ([`super::wake`]).

use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyCFunction, PyDict, PyTuple};

use super::errors::{ConfigError, EncodeError};
use super::json::{take_error, PyJson};
use super::wake::{await_on_loop, LoopWaker, Outcome};
use crate::message::Envelope;
use crate::stream::{
    CloseHandle, EventStream, HeartbeatFormat, Sender, StreamConfig, StreamError, TryChunk, TrySend,
};

/// An awaitable that is already complete: awaiting it returns `value` without suspending,
/// or after exactly one bare yield to the event loop when `yield_first` is set.
#[pyclass(module = "deepsearch_stream._core", name = "_Ready", frozen)]
pub struct Ready {
    state: Mutex<ReadyState>,
}

struct ReadyState {
    value: Option<Py<PyAny>>,
    yield_first: bool,
    /// Set when `value` is a chunk taken off the stream: losing it means the consumer is gone.
    close_if_dropped: Option<CloseHandle>,
}

impl Ready {
    fn new(value: Py<PyAny>, yield_first: bool, close_if_dropped: Option<CloseHandle>) -> Self {
        Ready {
            state: Mutex::new(ReadyState {
                value: Some(value),
                yield_first,
                close_if_dropped,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReadyState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Ready {
    fn drop(&mut self) {
        let st = self.lock();
        if st.value.is_some() {
            if let Some(handle) = &st.close_if_dropped {
                handle.close();
            }
        }
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let mut st = self.lock();
        if st.yield_first {
            st.yield_first = false;
            // A bare `yield None` is asyncio's "give the loop one turn" (asyncio.sleep(0)).
            return Ok(Some(py.None()));
        }
        let value = st.value.take().unwrap_or_else(|| py.None());
        Err(PyStopIteration::new_err((value,)))
    }

    #[pyo3(signature = (value, /))]
    fn send(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let _ = value; // a completed awaitable ignores what is sent into it
        self.__next__(py)
    }

    #[pyo3(signature = (exc, /, *_args))]
    fn throw(
        &self,
        exc: Bound<'_, PyAny>,
        _args: Bound<'_, PyTuple>,
    ) -> PyResult<Option<Py<PyAny>>> {
        // Cancelled while yielding: the chunk never reached its consumer.
        let mut st = self.lock();
        if st.value.take().is_some() {
            if let Some(handle) = &st.close_if_dropped {
                handle.close();
            }
        }
        Err(PyErr::from_value(exc))
    }

    fn close(&self) {
        let mut st = self.lock();
        if st.value.take().is_some() {
            if let Some(handle) = &st.close_if_dropped {
                handle.close();
            }
        }
    }
}

/// One SSE stream; see the class docstring in `_core.pyi`.
#[pyclass(module = "deepsearch_stream._core", name = "EventStream", frozen)]
pub struct PyEventStream {
    sender: Sender,
    stream: EventStream,
    request_id: String,
    fast_streak: AtomicU32,
    yield_every: u32,
}

/// A keyword option in seconds; `None` stays `None` (no limit).
pub(crate) fn seconds(name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    let Some(v) = value else {
        return Ok(None);
    };
    // try_: a finite but huge value (1e300) must raise, not panic.
    match Duration::try_from_secs_f64(v) {
        Ok(d) if !d.is_zero() => Ok(Some(d)),
        _ => Err(ConfigError::new_err(format!(
            "{name} must be a positive number of seconds or None, got {v}"
        ))),
    }
}

impl PyEventStream {
    /// Wraps a stream built in Rust (and usually fed by a Rust task).
    pub(crate) fn from_parts(sender: Sender, stream: EventStream, yield_every: u32) -> Self {
        PyEventStream {
            request_id: stream.request_id().to_owned(),
            sender,
            stream,
            fast_streak: AtomicU32::new(0),
            yield_every,
        }
    }

    fn ready<'py>(
        py: Python<'py>,
        value: Py<PyAny>,
        yield_first: bool,
        guard: Option<CloseHandle>,
    ) -> PyResult<Bound<'py, PyAny>> {
        Ok(Bound::new(py, Ready::new(value, yield_first, guard))?.into_any())
    }
}

#[pymethods]
impl PyEventStream {
    #[new]
    #[pyo3(signature = (
        request_id, *, heartbeat = Some(10.0), timeout = Some(3600.0), max_pending = 256,
        max_pending_bytes = 4194304, max_chunk_bytes = 65536, heartbeat_format = "data",
        yield_every = 32
    ), text_signature = "(request_id, *, heartbeat=10.0, timeout=3600.0, max_pending=256, max_pending_bytes=4194304, max_chunk_bytes=65536, heartbeat_format='data', yield_every=32)")]
    #[allow(clippy::too_many_arguments)]
    fn new(
        request_id: &str,
        heartbeat: Option<f64>,
        timeout: Option<f64>,
        max_pending: usize,
        max_pending_bytes: usize,
        max_chunk_bytes: usize,
        heartbeat_format: &str,
        yield_every: u32,
    ) -> PyResult<Self> {
        let config = stream_config(
            heartbeat,
            timeout,
            max_pending,
            max_pending_bytes,
            max_chunk_bytes,
            heartbeat_format,
        )?;
        let yield_every = checked_yield_every(yield_every)?;
        let (sender, stream) = EventStream::new(request_id, config)?;
        Ok(Self::from_parts(sender, stream, yield_every))
    }

    #[getter]
    fn request_id(&self) -> &str {
        &self.request_id
    }

    /// True once no message can be sent any more.
    #[getter]
    fn closed(&self) -> bool {
        self.sender.is_closed()
    }

    #[pyo3(signature = (r#type, data, *, message_id = None, is_final = None, digital_employee = None))]
    fn send<'py>(
        &self,
        py: Python<'py>,
        r#type: &str,
        data: &Bound<'py, PyAny>,
        message_id: Option<&str>,
        is_final: Option<bool>,
        digital_employee: Option<&str>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let error = RefCell::new(None);
        let json = PyJson::new(data, &error);
        let envelope = Envelope::new(r#type, &json, &self.request_id)
            .message_id(message_id)
            .is_final(is_final)
            .digital_employee(digital_employee);
        let body = match self.sender.encode(&envelope) {
            Ok(body) => body,
            Err(StreamError::Encode(text)) => {
                return Err(take_error(&error, || EncodeError::new_err(text)))
            }
            Err(e) => return Err(e.into()),
        };
        match self.sender.try_send_encoded(body)? {
            TrySend::Sent(_) => Self::ready(py, py.None(), false, None),
            TrySend::Full(body) => {
                let sender = self.sender.clone();
                let full_at = tokio::time::Instant::now();
                let sent = async move {
                    match sender.send_encoded_after_full(body, full_at).await {
                        Ok(_) => Outcome::Unit,
                        Err(e) => Outcome::Failed(e),
                    }
                };
                // Cancelling a blocked send drops the message; the stream stays open.
                await_on_loop(py, sent, None)
            }
        }
    }

    /// Ends the stream: `[DONE]` follows what is buffered.
    fn complete(&self) -> PyResult<()> {
        Ok(self.sender.complete()?)
    }

    /// Ends the stream with an `error` message, then `[DONE]`.
    #[pyo3(signature = (message, code = "error"))]
    fn fail(&self, message: &str, code: &str) -> PyResult<()> {
        Ok(self.sender.fail(message, code)?)
    }

    /// Runs `coro` as this stream's producer task: completes the stream when it returns,
    /// fails it when it raises, and cancels it when the consumer goes away.
    fn start<'py>(&self, py: Python<'py>, coro: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let asyncio = py.import("asyncio")?;
        let task = asyncio.call_method1("ensure_future", (coro,))?;
        let sender = self.sender.clone();
        let on_done = PyCFunction::new_closure(
            py,
            None,
            None,
            move |args: &Bound<'_, PyTuple>, _kwargs: Option<&Bound<'_, PyDict>>| -> PyResult<()> {
                let task = args.get_item(0)?;
                // Ending an already-ended stream is expected here (the producer may have
                // called complete() itself, or the consumer left): ignore that error.
                let _ = if task.call_method0("cancelled")?.is_truthy()? {
                    sender.fail("the producer task was cancelled", "cancelled")
                } else {
                    let exc = task.call_method0("exception")?;
                    if exc.is_none() {
                        sender.complete()
                    } else {
                        let name = exc.get_type().name()?.to_string();
                        sender.fail(&format!("{name}: {}", exc.str()?), "error")
                    }
                };
                Ok(())
            },
        )?;
        task.call_method1("add_done_callback", (on_done,))?;
        let waker = LoopWaker::of(&task.call_method0("get_loop")?)?;
        let cancel = task.getattr("cancel")?.unbind();
        // Runs on whichever thread ends the stream, often a tokio one: it must not take
        // the GIL, so the loop thread makes the call.
        self.stream
            .on_close_cancel(move || waker.call_on_loop(cancel));
        Ok(task)
    }

    /// Closes the stream from the consumer side (the client went away).
    fn close(&self) {
        self.stream.close();
    }

    fn aclose<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.stream.close();
        Self::ready(py, py.None(), false, None)
    }

    /// Counters: messages_sent, bytes_sent, heartbeats, pending, blocked_seconds.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.stream.stats();
        let d = PyDict::new(py);
        d.set_item("messages_sent", s.messages_sent)?;
        d.set_item("bytes_sent", s.bytes_sent)?;
        d.set_item("heartbeats", s.heartbeats)?;
        d.set_item("pending", s.pending)?;
        d.set_item("blocked_seconds", s.blocked.as_secs_f64())?;
        Ok(d)
    }

    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.stream.try_next_chunk() {
            TryChunk::Chunk(bytes) => {
                let streak = self.fast_streak.fetch_add(1, Ordering::Relaxed) + 1;
                let yield_first = streak >= self.yield_every;
                if yield_first {
                    self.fast_streak.store(0, Ordering::Relaxed);
                }
                let value = PyBytes::new(py, &bytes).into_any().unbind();
                let guard = yield_first.then(|| self.stream.close_handle());
                Self::ready(py, value, yield_first, guard).map(Some)
            }
            TryChunk::Ended => Ok(None),
            TryChunk::Empty => {
                self.fast_streak.store(0, Ordering::Relaxed);
                let wait = self.stream.next_chunk_owned();
                let next = async move {
                    match wait.await {
                        Some(bytes) => Outcome::Chunk(bytes),
                        None => Outcome::EndOfStream,
                    }
                };
                // A cancelled read means the consuming task was cancelled: the client left.
                await_on_loop(py, next, Some(self.stream.close_handle())).map(Some)
            }
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "EventStream(request_id={:?}, closed={})",
            self.request_id,
            self.sender.is_closed()
        )
    }
}

/// Checks the `yield_every` option of the Python stream constructors (how many
/// ready chunks `__anext__` hands out before it yields to the event loop once):
/// 0 would never yield, so it raises `ConfigError`.
pub(crate) fn checked_yield_every(yield_every: u32) -> PyResult<u32> {
    if yield_every == 0 {
        return Err(ConfigError::new_err("yield_every must be at least 1"));
    }
    Ok(yield_every)
}

/// Builds a core `StreamConfig` from the keyword options every Python constructor shares.
pub(crate) fn stream_config(
    heartbeat: Option<f64>,
    timeout: Option<f64>,
    max_pending: usize,
    max_pending_bytes: usize,
    max_chunk_bytes: usize,
    heartbeat_format: &str,
) -> PyResult<StreamConfig> {
    let heartbeat_format = match heartbeat_format {
        "data" => HeartbeatFormat::Data,
        "comment" => HeartbeatFormat::Comment,
        other => {
            return Err(ConfigError::new_err(format!(
                "heartbeat_format must be \"data\" or \"comment\", got {other:?}"
            )))
        }
    };
    let config = StreamConfig {
        heartbeat: seconds("heartbeat", heartbeat)?,
        heartbeat_format,
        timeout: seconds("timeout", timeout)?,
        max_pending,
        max_pending_bytes,
        max_chunk_bytes,
        ..StreamConfig::default()
    };
    config.validate()?;
    Ok(config)
}
