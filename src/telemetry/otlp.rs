//! The OpenTelemetry exporter (feature `otel`): the search's spans, as OTLP/HTTP with
//! the JSON encoding, to the collector the standard variables name
//! (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` +
//! `/v1/traces`), as service `OTEL_SERVICE_NAME` (default: the face's own name).
//! Off unless one of the two endpoint variables is set.
//!
//! The SDK's batch processor exports from a thread of its own, blocking on the export;
//! the crate's reqwest client needs a tokio reactor, so `ExportClient` runs each
//! request on a one-worker runtime kept for the process. No gRPC stack is built.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The variables that turn export on.
pub const ENDPOINT_VARS: [&str; 2] = [
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
];
/// Longest an export may take; the collector is someone else's process.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("OpenTelemetry exporter: {0}")]
    Exporter(String),
}

/// The installed exporter: flushes and stops it on [`Traces::shutdown`] (or drop), so
/// the spans of the last searches are sent before the process exits.
#[derive(Debug)]
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends what is buffered and stops exporting.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "trace exporter shutdown");
        }
    }

    /// Sends what is buffered now.
    pub fn flush(&self) {
        if let Err(e) = self.provider.force_flush() {
            tracing::debug!(error = %e, "trace exporter flush");
        }
    }
}

impl Drop for Traces {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Whether the environment asks for traces.
pub fn enabled() -> bool {
    ENDPOINT_VARS
        .iter()
        .any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

/// The layer that exports the search's spans, and the handle that flushes it; `None`
/// when the environment does not ask for traces. `default_service` names the service
/// unless `OTEL_SERVICE_NAME` does.
pub fn layer<S>(
    default_service: &'static str,
) -> Result<Option<(impl Layer<S> + Send + Sync + 'static, Traces)>, TelemetryError>
where
    S: Subscriber + for<'span> LookupSpan<'span> + Send + Sync,
{
    if !enabled() {
        return Ok(None);
    }
    let client = ExportClient::new()?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(client)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let resource = if std::env::var_os("OTEL_SERVICE_NAME").is_some() {
        Resource::builder().build()
    } else {
        Resource::builder()
            .with_service_name(default_service)
            .build()
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("deepsearch-stream");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_target(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        // Only the search's spans (and the events inside them): the rest of the
        // process's spans are other libraries' internals.
        .with_filter(filter_fn(|metadata| {
            super::is_search_span(metadata)
                || (metadata.is_event() && metadata.target().starts_with("deepsearch_stream"))
        }));
    Ok(Some((layer, Traces { provider })))
}

/// Makes `span` the child of the remote span `traceparent` names; an invalid value
/// (or no exporter installed) leaves it the root of its own trace, as W3C asks.
pub(super) fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&carrier);
    use opentelemetry::trace::TraceContextExt as _;
    if context.span().span_context().is_valid() {
        // Err: no exporter layer in this subscriber; nothing to continue then.
        let _ = span.set_parent(context);
    }
}

/// The runtime the exports run on, one worker, for the life of the process (a runtime
/// may not be dropped inside another's context, which a subscriber cannot rule out).
fn export_runtime() -> Result<&'static tokio::runtime::Runtime, TelemetryError> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("deepsearch-otlp")
        .enable_all()
        .build()
        .map_err(|e| TelemetryError::Exporter(format!("starting its runtime: {e}")))?;
    Ok(RUNTIME.get_or_init(|| rt))
}

/// The OTLP exporter's HTTP client: the crate's reqwest client (rustls on ring), each
/// request run on the export runtime.
#[derive(Debug)]
struct ExportClient {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new() -> Result<Self, TelemetryError> {
        let http = crate::http::client_builder()
            .map_err(|e| TelemetryError::Exporter(e.0))?
            .timeout(EXPORT_TIMEOUT)
            // One collector, one connection kept; an idle one is closed soon.
            .pool_max_idle_per_host(1)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| TelemetryError::Exporter(crate::http::describe(&e)))?;
        Ok(ExportClient {
            http,
            runtime: export_runtime()?.handle().clone(),
        })
    }
}

#[async_trait::async_trait]
impl HttpClient for ExportClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let response = http.execute(request).await?;
            let mut answer = Response::builder().status(response.status().as_u16());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(
                    response
                        .headers()
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            }
            let body = response.bytes().await?;
            Ok::<_, HttpError>(answer.body(body)?)
        });
        sent.await?
    }
}
