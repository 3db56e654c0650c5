//! The core's `tracing` events as records of Python's `logging` (logger
//! `deepsearch_stream`), so the FastAPI service logs what the axum server logs.
//!
//! Events are formatted where they happen and handed to one thread that takes the GIL
//! and logs them: an event may fire on a tokio worker holding a lock that a thread with
//! the GIL is waiting for, so nothing but that thread ever waits for the GIL here. The
//! queue is bounded; records that find it full are counted and reported by the next one.
//!
//! Every record has a `request_id` attribute (the event's field, else the nearest
//! entered span's, else `"-"`) and a `fields` dict of the event's other fields.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Mutex, OnceLock};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// The Python logger records go to.
pub const LOGGER: &str = "deepsearch_stream";
/// Records waiting for the GIL at most.
const QUEUE: usize = 4096;
/// Records that found the queue full, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);

struct LogRecord {
    level: Level,
    target: &'static str,
    message: String,
    request_id: Option<String>,
    fields: Vec<(&'static str, String)>,
}

/// The fields of an event or span, as text.
#[derive(Default)]
struct Fields {
    message: String,
    request_id: Option<String>,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "request_id" => self.request_id = Some(value),
            name => self.rest.push((name, value)),
        }
    }
}

thread_local! {
    /// Spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// The subscriber: keeps the request id of each live span, formats events, queues them.
struct Bridge {
    queue: SyncSender<LogRecord>,
    next_span: AtomicU64,
    /// Live spans: (references, request id).
    spans: Mutex<HashMap<u64, (usize, Option<String>)>>,
}

impl Bridge {
    fn span_request_id(&self) -> Option<String> {
        let spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        ENTERED.with(|entered| {
            entered
                .borrow()
                .iter()
                .rev()
                .find_map(|id| spans.get(id).and_then(|(_, rid)| rid.clone()))
        })
    }
}

impl Subscriber for Bridge {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        // INFO and above, as the axum server logs by default; Python's levels filter on.
        *metadata.level() <= Level::INFO
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = Fields::default();
        span.record(&mut fields);
        let id = self.next_span.fetch_add(1, Ordering::Relaxed) + 1;
        self.spans
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, (1, fields.request_id));
        Id::from_u64(id)
    }

    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let Some(rid) = fields.request_id {
            let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(entry) = spans.get_mut(&span.into_u64()) {
                entry.1 = Some(rid);
            }
        }
    }

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let record = LogRecord {
            level: *event.metadata().level(),
            target: event.metadata().target(),
            request_id: fields.request_id.or_else(|| self.span_request_id()),
            message: fields.message,
            fields: fields.rest,
        };
        match self.queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
            // The logging thread is gone (the interpreter is exiting).
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    fn enter(&self, span: &Id) {
        ENTERED.with(|entered| entered.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        let id = span.into_u64();
        ENTERED.with(|entered| {
            let mut entered = entered.borrow_mut();
            if let Some(at) = entered.iter().rposition(|&e| e == id) {
                entered.remove(at);
            }
        });
    }

    fn clone_span(&self, span: &Id) -> Id {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = spans.get_mut(&span.into_u64()) {
            entry.0 += 1;
        }
        span.clone()
    }

    fn try_close(&self, span: Id) -> bool {
        let mut spans = self.spans.lock().unwrap_or_else(|e| e.into_inner());
        let id = span.into_u64();
        let closed = match spans.get_mut(&id) {
            Some(entry) => {
                entry.0 -= 1;
                entry.0 == 0
            }
            None => false,
        };
        if closed {
            spans.remove(&id);
        }
        closed
    }
}

/// Python's level number for `level`.
fn python_level(level: Level) -> u8 {
    match level {
        Level::ERROR => 40,
        Level::WARN => 30,
        Level::INFO => 20,
        Level::DEBUG | Level::TRACE => 10,
    }
}

/// `message key=value ...`, as the axum server's log lines read.
fn text(record: &LogRecord) -> String {
    let mut line = record.message.clone();
    if let Some(rid) = &record.request_id {
        let _ = write!(line, " request_id={rid}");
    }
    for (name, value) in &record.fields {
        let _ = write!(line, " {name}={value}");
    }
    line
}

fn log(py: Python<'_>, logger: &Bound<'_, PyAny>, record: &LogRecord) -> PyResult<()> {
    let level = python_level(record.level);
    if !logger.call_method1("isEnabledFor", (level,))?.is_truthy()? {
        return Ok(());
    }
    let fields = PyDict::new(py);
    for (name, value) in &record.fields {
        fields.set_item(name, value)?;
    }
    let extra = PyDict::new(py);
    extra.set_item("request_id", record.request_id.as_deref().unwrap_or("-"))?;
    extra.set_item("fields", fields)?;
    extra.set_item("rust_target", record.target)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("extra", extra)?;
    logger.call_method("log", (level, "%s", text(record)), Some(&kwargs))?;
    Ok(())
}

/// Installs the bridge as the process's `tracing` subscriber, once; false when another
/// subscriber was there first.
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let (queue, records) = sync_channel::<LogRecord>(QUEUE);
        let bridge = Bridge {
            queue,
            next_span: AtomicU64::new(0),
            spans: Mutex::new(HashMap::new()),
        };
        if tracing::subscriber::set_global_default(bridge).is_err() {
            return false;
        }
        let spawned = std::thread::Builder::new()
            .name("deepsearch-log".into())
            .spawn(move || {
                for record in records {
                    Python::attach(|py| {
                        let logged = py
                            .import("logging")
                            .and_then(|logging| logging.call_method1("getLogger", (LOGGER,)))
                            .and_then(|logger| {
                                report_dropped(py, &logger)?;
                                log(py, &logger, &record)
                            });
                        // A failing handler is Python's to report, as `logging` does.
                        if let Err(e) = logged {
                            e.print(py);
                        }
                    });
                }
            });
        spawned.is_ok()
    })
}

/// A warning for the records that found the queue full since the last one.
fn report_dropped(py: Python<'_>, logger: &Bound<'_, PyAny>) -> PyResult<()> {
    let dropped = DROPPED.swap(0, Ordering::Relaxed);
    if dropped == 0 {
        return Ok(());
    }
    let record = LogRecord {
        level: Level::WARN,
        target: "deepsearch_stream::python::logging",
        message: format!("{dropped} log records were dropped: the log queue was full"),
        request_id: None,
        fields: Vec::new(),
    };
    log(py, logger, &record)
}
