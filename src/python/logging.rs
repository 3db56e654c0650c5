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

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::OnceLock;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use crate::telemetry::otlp::{self, Traces};

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

/// A span's request id, kept in the registry's extensions of that span.
struct RequestId(String);

/// The layer: keeps the request id of each span that has one, formats events, queues
/// them. The registry under it tracks the spans (and which are entered).
struct Bridge {
    queue: SyncSender<LogRecord>,
}

impl<S> Layer<S> for Bridge
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(rid), Some(span)) = (fields.request_id, ctx.span(id)) {
            span.extensions_mut().insert(RequestId(rid));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        values.record(&mut fields);
        if let (Some(rid), Some(span)) = (fields.request_id, ctx.span(id)) {
            span.extensions_mut().replace(RequestId(rid));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        // The event's own request id, else the nearest enclosing span's.
        let request_id = fields.request_id.or_else(|| {
            ctx.event_scope(event)?.find_map(|span| {
                let extensions = span.extensions();
                let found = extensions.get::<RequestId>().map(|rid| rid.0.clone());
                found
            })
        });
        let record = LogRecord {
            level: *event.metadata().level(),
            target: event.metadata().target(),
            request_id,
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
/// subscriber was there first. With `OTEL_EXPORTER_OTLP_ENDPOINT` set, the search's
/// spans are exported too ([`otlp`]); an exporter that cannot be set up is reported
/// through the bridge once it runs.
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let (queue, records) = sync_channel::<LogRecord>(QUEUE);
        // INFO and above, as the axum server logs by default; Python's levels filter on.
        // INFO and above, as the axum server logs by default; Python's levels filter on.
        let bridge = Bridge { queue }.with_filter(LevelFilter::INFO);
        // Two subscriber types rather than an `Option` layer, which when `None` would
        // make every callsite "sometimes" enabled, checked at each event.
        let mut failed = None;
        let installed = if otlp::enabled() {
            let registry = Registry::default().with(bridge);
            match otlp::layer(SERVICE_NAME) {
                Ok(Some((layer, traces))) => {
                    let _ = TRACES.set(traces);
                    tracing::subscriber::set_global_default(registry.with(layer))
                }
                Ok(None) => tracing::subscriber::set_global_default(registry),
                Err(e) => {
                    failed = Some(e);
                    tracing::subscriber::set_global_default(registry)
                }
            }
        } else {
            tracing::subscriber::set_global_default(Registry::default().with(bridge))
        };
        if installed.is_err() {
            return false;
        }
        if let Some(e) = failed {
            tracing::warn!(error = %e, "traces are not exported");
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

/// The service name traces carry unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "deepsearch-stream";

/// The trace exporter, when installed.
static TRACES: OnceLock<Traces> = OnceLock::new();

/// Whether the search's spans are exported.
pub fn exporting_traces() -> bool {
    TRACES.get().is_some()
}

/// Sends the spans not yet exported (at interpreter exit, so the last searches' spans
/// are not lost); without an exporter, nothing.
pub fn flush_traces() {
    if let Some(traces) = TRACES.get() {
        traces.flush();
    }
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
