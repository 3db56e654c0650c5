//! The handlers: search routes over [`Service`](crate::api::Service), health, metrics,
//! the static page, and the JSON 404/405 answers.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt;

use super::App;
use crate::api::mcp::McpHead;
use crate::api::{
    Answer, AnswerBody, ApiError, BodyCap, BodyStep, ErrorCode, RequestBody, Route, SearchHead,
    JSON_CONTENT_TYPE, SSE_HEADERS,
};
use crate::metrics;
use crate::stream::EventStream;

/// The page served at `/`.
pub const INDEX_HTML: &str = include_str!("../../python/deepsearch_stream/static/index.html");
/// Content type of [`INDEX_HTML`].
pub const HTML_CONTENT_TYPE: &str = "text/html; charset=utf-8";
/// Body of `GET /healthz`.
pub const HEALTHZ_BODY: &[u8] = br#"{"status": "ok"}"#;

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

/// Reads the body by the [`BodyCap`] rule both faces share, within `wait`.
async fn read_body(body: Body, mut cap: BodyCap, wait: Duration) -> RequestBody {
    let read = tokio::time::timeout(wait, read_capped(body, &mut cap)).await;
    read.unwrap_or_else(|_| cap.timed_out(wait))
}

async fn read_capped(body: Body, cap: &mut BodyCap) -> RequestBody {
    if !cap.worth_reading() {
        return RequestBody::TooLarge;
    }
    let mut chunks = body.into_data_stream();
    let mut buf = BytesMut::with_capacity(cap.drain_to().min(cap.limit()).min(1024));
    while let Some(chunk) = chunks.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return RequestBody::Unreadable(e.to_string()),
        };
        match cap.step(chunk.len()) {
            BodyStep::Keep => buf.extend_from_slice(&chunk),
            BodyStep::Drain => buf = BytesMut::new(),
            BodyStep::Stop => break,
        }
    }
    cap.finish(buf.freeze())
}

/// `POST /deepsearch`.
pub async fn deepsearch(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    search(app, Route::DeepSearch, "POST", uri, headers, Some(body)).await
}

/// `GET /deepsearch?query=...`: the same search for `EventSource`.
pub async fn deepsearch_get(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    search(app, Route::DeepSearch, "GET", uri, headers, None).await
}

/// `POST /v1/tool/deepsearch`.
pub async fn genie_tool(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    search(app, Route::GenieTool, "POST", uri, headers, Some(body)).await
}

/// `POST /v1/chat/completions`.
pub async fn openai_chat(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    search(app, Route::OpenAiChat, "POST", uri, headers, Some(body)).await
}

/// `GET /v1/models`.
pub async fn openai_models(State(app): State<App>, uri: Uri, headers: HeaderMap) -> Response {
    search(app, Route::OpenAiModels, "GET", uri, headers, None).await
}

/// `POST /api/chat`.
pub async fn aisdk_chat(
    State(app): State<App>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    search(app, Route::AiSdkChat, "POST", uri, headers, Some(body)).await
}

/// `GET /api/chat/{id}/stream`.
pub async fn aisdk_resume(
    State(app): State<App>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let head = Head {
        method: "GET",
        uri,
        headers,
        path_id: Some(id),
    };
    answer(app, Route::AiSdkResume, head, None).await
}

/// `POST /ag-ui`.
pub async fn agui(State(app): State<App>, uri: Uri, headers: HeaderMap, body: Body) -> Response {
    search(app, Route::AgUi, "POST", uri, headers, Some(body)).await
}

/// A search route: the body read, the rest decided by [`Service::handle`](crate::api::Service::handle).
async fn search(
    app: App,
    route: Route,
    method: &'static str,
    uri: Uri,
    headers: HeaderMap,
    body: Option<Body>,
) -> Response {
    let head = Head {
        method,
        uri,
        headers,
        path_id: None,
    };
    answer(app, route, head, body).await
}

/// What [`answer`] reads of a request besides its body.
struct Head {
    method: &'static str,
    uri: Uri,
    headers: HeaderMap,
    path_id: Option<String>,
}

async fn answer(app: App, route: Route, head: Head, body: Option<Body>) -> Response {
    let Head {
        method,
        uri,
        headers,
        path_id,
    } = head;
    let service = app.service();
    let body = match body {
        None => RequestBody::Absent,
        Some(body) => {
            let declared =
                header_text(&headers, CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
            read_body(
                body,
                BodyCap::new(service.limits().max_body_bytes, declared),
                app.connection_limits().body_timeout,
            )
            .await
        }
    };
    let content_type = header_text(&headers, CONTENT_TYPE);
    let last_event_id = header_text(&headers, "last-event-id");
    let traceparent = header_text(&headers, "traceparent");
    let head = SearchHead {
        method,
        query: uri.query(),
        content_type: content_type.as_deref(),
        last_event_id: last_event_id.as_deref(),
        path_id: path_id.as_deref(),
        traceparent: traceparent.as_deref(),
        authorization: headers.get(AUTHORIZATION).map(|v| v.as_bytes()),
    };
    answer_response(service.handle(route, head, body).await)
}

/// `POST /mcp`: MCP over Streamable HTTP, decided by [`Service::mcp`](crate::api::Service::mcp).
pub async fn mcp(State(app): State<App>, headers: HeaderMap, body: Body) -> Response {
    let service = app.service();
    let declared = header_text(&headers, CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
    let cap = BodyCap::new(service.limits().max_body_bytes, declared);
    let body = read_body(body, cap, app.connection_limits().body_timeout).await;
    let text = |name: &str| header_text(&headers, name);
    let (content_type, accept, version) = (
        text("content-type"),
        text("accept"),
        text("mcp-protocol-version"),
    );
    let (session, method, name) = (text("mcp-session-id"), text("mcp-method"), text("mcp-name"));
    let head = McpHead {
        content_type: content_type.as_deref(),
        accept: accept.as_deref(),
        protocol_version: version.as_deref(),
        session_id: session.as_deref(),
        method: method.as_deref(),
        name: name.as_deref(),
    };
    answer_response(service.mcp(head, body).await)
}

/// The response for a route's [`Answer`].
fn answer_response(answer: Answer) -> Response {
    let mut res = match answer.body {
        AnswerBody::Stream(stream) => stream_response(stream),
        AnswerBody::Bytes(bytes) => Response::new(Body::from(bytes)),
    };
    *res.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            res.headers_mut().insert(name, value);
        }
    }
    res
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
        ErrorCode::NotFound,
        None,
        format!("no route for {method} {}", uri.path()),
    ))
}

/// A served route asked with another method: 405 with `Allow`.
pub fn method_not_allowed(method: &Method, uri: &Uri, allow: &'static str) -> Response {
    let mut res = error_response(&ApiError::new(
        405,
        ErrorCode::MethodNotAllowed,
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
        let cap = |declared| BodyCap::new(4, declared);
        let wait = Duration::from_secs(5);
        let body = read_body(chunked(&[b"ab", b"cd"]), cap(None), wait).await;
        assert_eq!(body, RequestBody::Read(Bytes::from_static(b"abcd")));
        let body = read_body(chunked(&[b"ab", b"cd", b"ef"]), cap(None), wait).await;
        assert_eq!(body, RequestBody::TooLarge);
        // A declared length too big to drain is refused without reading.
        let huge = crate::api::DRAIN_MAX_BYTES + 1;
        let body = read_body(chunked(&[b"x"]), cap(Some(huge)), wait).await;
        assert_eq!(body, RequestBody::TooLarge);
        // A declared length within the drain budget is read (and reported) as declared.
        let body = read_body(chunked(&[b"abcdef"]), cap(Some(6)), wait).await;
        assert_eq!(body, RequestBody::TooLarge);
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_stalls_ends_at_the_timeout() {
        let wait = Duration::from_secs(2);
        let stalled = || Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>());
        let body = read_body(stalled(), BodyCap::new(4, Some(3)), wait).await;
        assert_eq!(body, RequestBody::TimedOut(wait));
        // Declared over the cap, within the drain budget: still the 413.
        let body = read_body(stalled(), BodyCap::new(4, Some(5)), wait).await;
        assert_eq!(body, RequestBody::TooLarge);
    }
}
