//! Traces of a search: the `tracing` spans the core opens for it (the search, each
//! round's plan, each engine call, each model call, the answer) and, with feature
//! `otel`, their export as OpenTelemetry spans over OTLP/HTTP ([`otlp`]).
//!
//! The core only opens spans, under [`TARGET`], so that a face's log output can leave
//! them out and its trace exporter can take only them. A search's span continues the
//! trace of the request that asked for it when that request brought a W3C
//! `traceparent` header; without feature `otel` (or with no exporter installed) that
//! header is ignored and the spans cost what an unrecorded `tracing` span costs.

#[cfg(feature = "otel")]
pub mod otlp;

/// The `tracing` target of every span of a search.
pub const TARGET: &str = "deepsearch_stream::trace";

/// Longest `traceparent` value read (the W3C version-00 form is 55 characters; later
/// versions may append fields).
pub const MAX_TRACEPARENT: usize = 512;

/// Whether `metadata` is one of the spans this module opens.
pub fn is_search_span(metadata: &tracing::Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == TARGET
}

/// The span of one search, the child of `traceparent`'s span when it names a valid
/// remote parent (and an exporter is installed), else the root of a new trace.
pub fn search_span(traceparent: Option<&str>, max_loop: usize) -> tracing::Span {
    let span = tracing::info_span!(
        target: TARGET,
        "search",
        max_loop = int(max_loop),
        rounds = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    );
    if let Some(header) = traceparent.filter(|h| h.len() <= MAX_TRACEPARENT) {
        set_remote_parent(&span, header);
    }
    span
}

/// The span of one call to a search engine.
pub fn engine_span(engine: &str, round: usize) -> tracing::Span {
    tracing::info_span!(
        target: TARGET,
        "engine",
        engine,
        round = int(round),
        docs = tracing::field::Empty,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// The span of one request to the model server.
pub fn model_span(model: &str, stream: bool) -> tracing::Span {
    tracing::info_span!(
        target: TARGET,
        "model",
        model,
        stream,
        otel.kind = "client",
        otel.status_code = tracing::field::Empty,
        error = tracing::field::Empty,
    )
}

/// The span of round `round`'s plan (a model call when a model plans).
pub fn plan_span(round: usize) -> tracing::Span {
    tracing::info_span!(target: TARGET, "plan", round = int(round), queries = tracing::field::Empty)
}

/// The span of writing the answer (a streamed model call when a model writes it).
pub fn answer_span(sources: usize) -> tracing::Span {
    tracing::info_span!(target: TARGET, "answer", sources = int(sources), chars = tracing::field::Empty)
}

/// A count as the signed integer OpenTelemetry attributes hold (an unsigned one
/// would be exported as text).
pub fn int(count: usize) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// Marks `span` failed with `error` (the OpenTelemetry status `ERROR`).
pub fn record_error(span: &tracing::Span, error: &dyn std::fmt::Display) {
    span.record("otel.status_code", "ERROR");
    span.record("error", tracing::field::display(error));
}

#[cfg(feature = "otel")]
fn set_remote_parent(span: &tracing::Span, traceparent: &str) {
    otlp::set_remote_parent(span, traceparent);
}

#[cfg(not(feature = "otel"))]
fn set_remote_parent(_span: &tracing::Span, _traceparent: &str) {}
