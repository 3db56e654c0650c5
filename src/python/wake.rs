//! Settles asyncio futures from tokio tasks without any tokio thread taking the GIL.
//!
//! pyo3-async-runtimes completes each awaited Rust future with
//! `spawn_blocking(|| Python::attach(..))`: thousands of idle streams whose heartbeats fall
//! due together grow tokio's blocking pool to its cap, and every wakeup then queues behind
//! the GIL for seconds. Here a tokio task only pushes its outcome onto a queue and, when no
//! wakeup is pending yet, writes one byte to a socket pair whose read end the event loop
//! watches (`loop.add_reader`). The loop thread, which holds the GIL anyway, builds the
//! Python objects and settles the futures, a whole batch per wakeup.

use std::cell::RefCell;
use std::future::Future;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use pyo3::exceptions::PyStopAsyncIteration;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBytes;
use tokio::task::AbortHandle;

use crate::stream::{CloseHandle, StreamError};

/// What an awaited Rust future resolves to; it becomes a Python object only on the loop
/// thread.
pub(crate) enum Outcome {
    /// `None`.
    Unit,
    /// `bytes`.
    Chunk(Bytes),
    /// Raises `StopAsyncIteration` (the end of `async for`).
    EndOfStream,
    /// Raises the Python exception the stream error maps to.
    Failed(StreamError),
    /// What the closure builds (or raises), for results only Python code can build.
    Build(BuildOnLoop),
}

pub(crate) type BuildOnLoop = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

enum Entry {
    Settle {
        future: Py<PyAny>,
        outcome: Outcome,
    },
    /// Calls a Python callable with no arguments.
    Call(Py<PyAny>),
}

/// The wakeup channel of one event loop. Both ends of the socket pair live here, so a
/// write never meets a closed peer; they close when the last task and the loop's reader
/// callback let go of it. It holds no reference to the loop (that would be a cycle
/// through Rust the garbage collector cannot see: loop -> reader -> waker -> loop).
pub(crate) struct LoopWaker {
    queue: Mutex<Vec<Entry>>,
    /// Set from the first push after a drain until the next drain: one byte per batch.
    wake_pending: AtomicBool,
    reader: UnixStream,
    writer: UnixStream,
}

thread_local! {
    /// The waker of the loop that last ran on this thread. A new loop (pytest makes one per
    /// test, `asyncio.run` makes one per call) gets a new waker; the old one lives on only
    /// as long as its loop still watches its socket and its tasks are pending.
    static CURRENT: RefCell<Option<(Py<PyAny>, Arc<LoopWaker>)>> = const { RefCell::new(None) };
}

static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// Runs `work` on the tokio runtime and returns an `asyncio.Future` of the running loop
/// that settles with its outcome. Cancelling that future aborts `work` and, when
/// `close_on_cancel` is given, closes the stream (the consumer went away).
pub(crate) fn await_on_loop<'py, F>(
    py: Python<'py>,
    work: F,
    close_on_cancel: Option<CloseHandle>,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome> + Send + 'static,
{
    let event_loop = running_loop(py)?;
    let waker = LoopWaker::of(&event_loop)?;
    let future = event_loop.call_method0("create_future")?;
    let settle = future.clone().unbind();
    let task = pyo3_async_runtimes::tokio::get_runtime().spawn(async move {
        let outcome = work.await;
        waker.push(Entry::Settle {
            future: settle,
            outcome,
        });
    });
    let on_done = CancelOnDone {
        abort: task.abort_handle(),
        close: close_on_cancel,
    };
    if let Err(e) = future.call_method1("add_done_callback", (on_done,)) {
        task.abort();
        return Err(e);
    }
    Ok(future)
}

/// The running event loop of this thread; a clear `RuntimeError` when there is none.
pub(crate) fn running_loop(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    GET_RUNNING_LOOP
        .import(py, "asyncio", "get_running_loop")?
        .call0()
}

impl LoopWaker {
    /// The waker of `event_loop`, created and registered with it on first use. Call it on
    /// the loop's thread.
    pub(crate) fn of(event_loop: &Bound<'_, PyAny>) -> PyResult<Arc<LoopWaker>> {
        let cached = CURRENT.with(|current| {
            current
                .borrow()
                .as_ref()
                .filter(|(cached_loop, _)| cached_loop.is(event_loop))
                .map(|(_, waker)| Arc::clone(waker))
        });
        if let Some(waker) = cached {
            return Ok(waker);
        }
        let waker = Arc::new(LoopWaker::new()?);
        let drain = Drain(Arc::clone(&waker));
        event_loop.call_method1("add_reader", (waker.reader.as_raw_fd(), drain))?;
        let replaced = CURRENT.with(|current| {
            current
                .borrow_mut()
                .replace((event_loop.clone().unbind(), Arc::clone(&waker)))
        });
        // Dropped here, outside the borrow: releasing the old loop may run Python code.
        drop(replaced);
        Ok(waker)
    }

    fn new() -> std::io::Result<Self> {
        let (reader, writer) = UnixStream::pair()?;
        reader.set_nonblocking(true)?;
        writer.set_nonblocking(true)?;
        Ok(LoopWaker {
            queue: Mutex::new(Vec::new()),
            wake_pending: AtomicBool::new(false),
            reader,
            writer,
        })
    }

    /// Has `callable()` called on the loop thread soon; safe from any thread, GIL or not.
    pub(crate) fn call_on_loop(&self, callable: Py<PyAny>) {
        self.push(Entry::Call(callable));
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn push(&self, entry: Entry) {
        self.lock().push(entry);
        // The entry is queued before the flag is looked at, and `drain` clears the flag
        // before it takes the queue: either this push sees the flag cleared and writes a
        // byte (a drain follows), or the drain that clears it takes this entry.
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            // WouldBlock means the socket is full of unread wakeups; any other error means
            // the loop is gone. Nothing to do in either case.
            let _ = (&self.writer).write(&[1]);
        }
    }

    fn drain(&self, py: Python<'_>) {
        let mut buf = [0u8; 256];
        loop {
            match (&self.reader).read(&mut buf) {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => break, // WouldBlock: read empty
            }
        }
        self.wake_pending.store(false, Ordering::SeqCst);
        let entries = std::mem::take(&mut *self.lock());
        for entry in entries {
            run(py, entry);
        }
    }
}

fn run(py: Python<'_>, entry: Entry) {
    match entry {
        Entry::Settle { future, outcome } => {
            let future = future.bind(py);
            match future.call_method0("done").and_then(|d| d.is_truthy()) {
                Ok(false) => {}
                // Cancelled: its done callback has closed the stream, so a chunk dropped
                // here had no reader left.
                Ok(true) => return,
                Err(e) => return e.write_unraisable(py, Some(future)),
            }
            let settled = match outcome {
                Outcome::Unit => future.call_method1("set_result", (py.None(),)),
                Outcome::Chunk(bytes) => {
                    future.call_method1("set_result", (PyBytes::new(py, &bytes),))
                }
                Outcome::EndOfStream => future.call_method1(
                    "set_exception",
                    (PyStopAsyncIteration::new_err(()).into_value(py),),
                ),
                Outcome::Failed(e) => {
                    future.call_method1("set_exception", (PyErr::from(e).into_value(py),))
                }
                Outcome::Build(build) => match build(py) {
                    Ok(value) => future.call_method1("set_result", (value,)),
                    Err(e) => future.call_method1("set_exception", (e.into_value(py),)),
                },
            };
            if let Err(e) = settled {
                e.write_unraisable(py, Some(future));
            }
        }
        Entry::Call(callable) => {
            if let Err(e) = callable.call0(py) {
                e.write_unraisable(py, Some(callable.bind(py)));
            }
        }
    }
}

/// The loop's reader callback for the waker's socket.
#[pyclass(frozen)]
struct Drain(Arc<LoopWaker>);

#[pymethods]
impl Drain {
    fn __call__(&self, py: Python<'_>) {
        self.0.drain(py);
    }
}

/// The done callback of an awaited future: when it was cancelled (the awaiting task was),
/// stops the Rust side too.
#[pyclass(frozen)]
struct CancelOnDone {
    abort: AbortHandle,
    close: Option<CloseHandle>,
}

#[pymethods]
impl CancelOnDone {
    fn __call__(&self, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0("cancelled")?.is_truthy()? {
            if let Some(close) = &self.close {
                close.close();
            }
            self.abort.abort();
        }
        Ok(())
    }
}
