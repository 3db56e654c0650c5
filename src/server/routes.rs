//! The handlers: search routes over [`Service`](crate::api::Service), health, metrics,
//! the static page, and the JSON 404/405 answers.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header::{ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt;

use super::App;
use crate::api::{ApiError, Reply, Route, JSON_CONTENT_TYPE, SSE_HEADERS};
use crate::metrics;
use crate::stream::EventStream;

/// The page served at `/`.
pub const INDEX_HTML: &str = include_str!("../../python/deepsearch_stream/static/index.html");
/// Content type of [`INDEX_HTML`].
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";
/// Body of `GET /healthz`.
pub const HEALTHZ_BODY: &[u8] = br#"{"status": "ok"}"#;

/// Bytes of an oversized body read (and discarded) at most before answering 413, so a
/// client still writing its body reads the answer rather than a connection reset.
const DRAIN_MAX_BYTES: usize = 1 << 20;

/// `Allow` of the genie-tool route.
pub const ALLOW_POST: &str = "POST";
/// `Allow` of `/deepsearch`.
pub const ALLOW_GET_POST: &str = "GET, HEAD, POST";
/// `Allow` of the other routes.
pub const ALLOW_GET: &str = "GET, HEAD";

/// A JSON response with `status`.
fn json(status: u16, body: impl Into<Body>) -> Response {
    let mut res = Response::new(body.into());
    *res.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(JSON_CONTENT_TYPE));
    res
}

/// The response for a refusal: its status, JSON body and extra headers.
pub fn error_response(error: &ApiError) -> Response {
    let mut res = json(error.status, error.body());
    for (name, value) in error.headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, value);
        }
    }
    res
}

/// 200 with exactly the SSE headers and `stream` as the body. Dropping the body (the
/// client went away) drops the stream: a search's connection detaches from its replay
/// log, and the search stops unless the client resumes within the linger time.
pub fn stream_response(stream: EventStream) -> Response {
    let mut res = Response::new(Body::from_stream(stream.map(Ok::<Bytes, Infallible>)));
    let headers = res.headers_mut();
    for (name, value) in SSE_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    res
}

/// The header as Starlette reads it (Latin-1), so odd bytes read the same on both servers.
fn header_text(headers: &HeaderMap, name: impl axum::http::header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|v| v.as_bytes().iter().map(|&b| char::from(b)).collect())
}

/// Reads the body, at most `limit` bytes of it. A bigger body is the parser's 413; it is
/// read and dropped up to [`DRAIN_MAX_BYTES`] first, so the client gets to read the answer.
async fn read_body(body: Body, limit: usize, declared: Option<usize>) -> Result<Bytes, ApiError> {
    if declared.is_some_and(|len| len > limit.max(DRAIN_MAX_BYTES)) {
        // Too big to be worth reading even to discard it.
        return Err(ApiError::body_too_large(limit));
    }
    let mut chunks = body.into_data_stream();
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                400,
                "bad_request",
                None,
                format!("the request body could not be read: {e}"),
            )
        })?;
        if buf.len() + chunk.len() > limit {
            let mut seen = buf.len() + chunk.len();
            drop(buf);
            while seen < DRAIN_MAX_BYTES && declared.is_none_or(|d| seen < d) {
                match chunks.next().await {
                    Some(Ok(more)) => seen += more.len(),
                    _ => break,
                }
            }
            return Err(ApiError::body_too_large(limit));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// `POST /deepsearch`.
pub async fn deepsearch(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    search(app, Route::DeepSearch, uri, headers, Some(body)).await
}

/// `GET /deepsearch?query=...`: the same search for `EventSource`.
pub async fn deepsearch_get(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    search(app, Route::DeepSearch, uri, headers, None).await
}

/// `POST /v1/tool/deepsearch`.
pub async fn genie_tool(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    search(app, Route::GenieTool, uri, headers, Some(body)).await
}

/// The request of a search: from the query string (`body: None`, a GET) or the body.
async fn parse(
    app: &App,
    route: Route,
    uri: &Uri,
    headers: &HeaderMap,
    body: Option<Body>,
) -> Result<crate::api::SearchRequest, ApiError> {
    let service = app.service();
    let req = match body {
        None => service.parse_query(route, uri.query().unwrap_or(""))?,
        Some(body) => {
            let limit = service.limits().max_body_bytes;
            let declared = header_text(headers, CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
            let wait = app.connection_limits().body_timeout;
            let body = tokio::time::timeout(wait, read_body(body, limit, declared))
                .await
                .unwrap_or_else(|_| Err(ApiError::body_timeout(wait)))
                .inspect_err(|e| {
                    metrics::global().request(route.path(), e.status, Duration::ZERO);
                })?;
            let content_type = header_text(headers, CONTENT_TYPE);
            service.parse(route, content_type.as_deref(), &body)?
        }
    };
    let last_event_id = header_text(headers, "last-event-id");
    service.with_resume(route, req, last_event_id.as_deref(), uri.query())
}

async fn search(
    app: App,
    route: Route,
    uri: Uri,
    headers: HeaderMap,
    body: Option<Body>,
) -> Response {
    let service = app.service();
    let req = match parse(&app, route, &uri, &headers, body).await {
        Ok(req) => req,
        Err(e) => return refused(route, None, &e),
    };
    let request_id = req.request_id.clone();
    let streaming = req.stream;
    tracing::info!(
        request_id = %request_id,
        route = route.path(),
        stream = streaming,
        resume = req.resume,
        max_loop = req.search.max_loop,
        "search started"
    );
    // A search that does not stream runs here, in the handler: stop waiting for it when
    // the server shuts down.
    let started = tokio::select! {
        reply = service.start(route, req) => reply,
        () = app.streams().closing(), if !streaming => Err(ApiError::new(
            503,
            crate::api::SHUTDOWN_CODE,
            None,
            crate::api::SHUTDOWN_MESSAGE,
        )),
    };
    match started {
        Ok(Reply::Stream(stream)) => {
            let handle = stream.close_handle();
            let id = request_id.clone();
            stream.on_close_cancel(move || {
                let stats = handle.stats();
                tracing::info!(
                    request_id = %id,
                    messages = stats.messages_sent,
                    bytes = stats.bytes_sent,
                    heartbeats = stats.heartbeats,
                    "stream ended"
                );
            });
            stream_response(stream)
        }
        Ok(Reply::Json { status, body }) => {
            tracing::info!(request_id = %request_id, status, "search answered");
            json(status, body)
        }
        Err(e) => refused(route, Some(&request_id), &e),
    }
}

/// Logs a refusal (status, code and field: never the body, whose text the message may
/// quote) and answers it.
fn refused(route: Route, request_id: Option<&str>, e: &ApiError) -> Response {
    tracing::info!(
        request_id = request_id.unwrap_or("-"),
        route = route.path(),
        status = e.status,
        code = e.code,
        field = e.field.as_deref().unwrap_or("-"),
        "request refused"
    );
    error_response(e)
}

/// `GET /healthz`.
pub async fn healthz() -> Response {
    json(200, HEALTHZ_BODY)
}

/// `GET /metrics`.
pub async fn metrics() -> Response {
    (
        [(
            CONTENT_TYPE,
            HeaderValue::from_static(metrics::CONTENT_TYPE),
        )],
        metrics::global().render(),
    )
        .into_response()
}

/// `GET /`.
pub async fn index() -> Response {
    (
        [(CONTENT_TYPE, HeaderValue::from_static(HTML_CONTENT_TYPE))],
        INDEX_HTML,
    )
        .into_response()
}

/// Any route not served: 404.
pub async fn not_found(method: Method, uri: Uri) -> Response {
    error_response(&ApiError::new(
        404,
        "not_found",
        None,
        format!("no route for {method} {}", uri.path()),
    ))
}

/// A served route asked with another method: 405 with `Allow`.
pub fn method_not_allowed(method: &Method, uri: &Uri, allow: &'static str) -> Response {
    let mut res = error_response(&ApiError::new(
        405,
        "method_not_allowed",
        None,
        format!(
            "method {method} is not allowed for {}; allowed: {allow}",
            uri.path()
        ),
    ));
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunked(parts: &[&'static [u8]]) -> Body {
        let parts: Vec<Result<Bytes, Infallible>> =
            parts.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Body::from_stream(futures::stream::iter(parts))
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_limit() {
        let body = read_body(chunked(&[b"ab", b"cd"]), 4, None).await.unwrap();
        assert_eq!(&body[..], b"abcd");
        let e = read_body(chunked(&[b"ab", b"cd", b"ef"]), 4, None)
            .await
            .unwrap_err();
        assert_eq!(e, ApiError::body_too_large(4));
        assert_eq!(e.message, "request body is larger than 4 bytes");
        // A declared length too big to drain is refused without reading.
        let huge = DRAIN_MAX_BYTES + 1;
        let e = read_body(chunked(&[b"x"]), 4, Some(huge))
            .await
            .unwrap_err();
        assert_eq!(e, ApiError::body_too_large(4));
        // A declared length within the drain budget is read (and reported) as declared.
        let e = read_body(chunked(&[b"abcdef"]), 4, Some(6))
            .await
            .unwrap_err();
        assert_eq!(e, ApiError::body_too_large(4));
    }
}
