//! The axum server's `tracing` subscriber: its log lines on stderr (`RUST_LOG`, else
//! `--log-level`) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` asks for them, the search's spans
//! exported over OTLP/HTTP ([`crate::telemetry::otlp`]).

use std::io::IsTerminal;

use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt as _};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use crate::telemetry::otlp::{self, Traces};

/// The service name traces carry unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "deepsearch-server";

/// Installs the subscriber as the process's default. The returned handle flushes the
/// trace exporter when dropped: keep it until the server has stopped.
pub fn init(level: &str) -> Option<Traces> {
    // Two subscriber types rather than an `Option` layer: a `None` layer would make
    // every callsite of every crate "sometimes" enabled, checked at each event.
    let logs = || {
        let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
        // The search's spans are for traces: log lines stay as they read without them.
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(env.and(filter_fn(|m| !crate::telemetry::is_search_span(m))))
    };
    let failed = if otlp::enabled() {
        let registry = tracing_subscriber::registry().with(logs());
        match otlp::layer(SERVICE_NAME) {
            Ok(Some((layer, traces))) => {
                registry.with(layer).init();
                return Some(traces);
            }
            Ok(None) => None,
            Err(e) => Some(e),
        }
    } else {
        None
    };
    tracing_subscriber::registry().with(logs()).init();
    if let Some(e) = failed {
        tracing::warn!(error = %e, "traces are not exported");
    }
    None
}
