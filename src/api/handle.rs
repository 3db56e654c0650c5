//! The search routes, whole: a request head and body in, an [`Answer`] out. Each face
//! reads the body by the [`BodyCap`](super::BodyCap) rule, calls [`Service::handle`],
//! and writes the answer; parsing, resuming, admission, the shutdown rule, logging and
//! metrics all happen here, once.

use super::admission::count_refusal;
use super::wire::{self, Disconnect, Format};
use super::{
    ApiError, ErrorCode, RequestBody, Route, SearchRequest, Service, JSON_CONTENT_TYPE,
    SHUTDOWN_MESSAGE, SSE_HEADERS,
};
use crate::api::Reply;
use crate::stream::EventStream;

/// What [`Service::handle`] reads of a search request besides its body (header values as
/// the face decoded them; `None` when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchHead<'a> {
    /// `GET` and `HEAD` carry the request in the query string; any other, in the body.
    pub method: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub last_event_id: Option<&'a str>,
    /// The `{id}` segment of a route whose path has one ([`Route::AiSdkResume`]).
    pub path_id: Option<&'a str>,
    /// The W3C `traceparent` header: the search's trace span continues its trace.
    pub traceparent: Option<&'a str>,
    /// The `Authorization` header: a stream is resumable only with the key it was
    /// started with (the access gate has checked it already).
    pub authorization: Option<&'a [u8]>,
}

impl SearchHead<'_> {
    fn is_get(&self) -> bool {
        self.method.eq_ignore_ascii_case("GET") || self.method.eq_ignore_ascii_case("HEAD")
    }
}

/// The body of an [`Answer`].
#[derive(Debug)]
pub enum AnswerBody {
    Bytes(Vec<u8>),
    /// The SSE stream; dropping it is the client going away.
    Stream(EventStream),
}

/// A search route's response: status, headers (content type included) and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: AnswerBody,
}

impl Answer {
    fn json(status: u16, body: Vec<u8>) -> Self {
        Answer {
            status,
            headers: vec![("content-type", JSON_CONTENT_TYPE.to_string())],
            body: AnswerBody::Bytes(body),
        }
    }

    /// A refusal in the route's protocol (OpenAI's statuses and error object on `/v1`).
    fn refusal(format: Format, e: &ApiError) -> Self {
        let mut answer = Self::json(format.refusal_status(e), format.error_body(e));
        answer.headers.extend(e.headers());
        answer
    }

    /// 204: nothing to send (the AI SDK's resume of a chat with no active stream).
    fn no_content() -> Self {
        Answer {
            status: 204,
            headers: Vec::new(),
            body: AnswerBody::Bytes(Vec::new()),
        }
    }

    pub(crate) fn stream(format: Format, stream: EventStream) -> Self {
        let extra = format.headers().iter().map(|&(k, v)| (k, v.to_string()));
        Answer {
            status: 200,
            headers: SSE_HEADERS
                .iter()
                .map(|&(k, v)| (k, v.to_string()))
                .chain(extra)
                .collect(),
            body: AnswerBody::Stream(stream),
        }
    }
}

impl Service {
    /// Answers one request of a search route. Must be called on a tokio runtime.
    ///
    /// A search that does not stream runs inside this call: once the server begins
    /// shutting down it is given up with 503 `shutdown`.
    pub async fn handle(&self, route: Route, head: SearchHead<'_>, body: RequestBody) -> Answer {
        // Who started a stream: only the same API key finds it again.
        let scope = super::auth::bearer_token(head.authorization)
            .map(crate::replay::scope_of)
            .unwrap_or_default();
        match route {
            Route::OpenAiModels => return Answer::json(200, wire::models_body()),
            Route::AiSdkResume => {
                return match self.resume_chat(&scope, head.path_id.unwrap_or("")).await {
                    Some(stream) => Answer::stream(route.format(), stream),
                    None => Answer::no_content(),
                }
            }
            _ => {}
        }
        let mut req = match self.request(route, &head, body) {
            Ok(req) => req,
            Err(e) => return refused(route, None, &e),
        };
        req.search.traceparent = head.traceparent.map(str::to_owned);
        let request_id = req.request_id.clone();
        let streaming = req.stream;
        tracing::info!(
            request_id = %request_id,
            route = route.path(),
            stream = streaming,
            resume = req.resume.as_ref().map(|r| r.after),
            max_loop = req.search.max_loop,
            "search started"
        );
        let started = tokio::select! {
            reply = self.start(route, req, &scope) => reply,
            () = self.streams().closing(), if !streaming => Err(ApiError::new(
                503,
                ErrorCode::Shutdown,
                None,
                SHUTDOWN_MESSAGE,
            )),
        };
        match started {
            Ok(Reply::Stream(stream)) => {
                let handle = stream.close_handle();
                let id = request_id;
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
                Answer::stream(route.format(), stream)
            }
            Ok(Reply::NoContent) => {
                tracing::info!(request_id = %request_id, "resume after the end: 204");
                Answer::no_content()
            }
            Ok(Reply::Json { status, body }) => {
                tracing::info!(request_id = %request_id, status, "search answered");
                Answer::json(status, body)
            }
            Err(e) => refused(route, Some(&request_id), &e),
        }
    }

    /// The checked request, from the query string (a `GET`) or the body, with its resume
    /// point. A refusal is counted in the metrics here (the parsers count theirs).
    fn request(
        &self,
        route: Route,
        head: &SearchHead<'_>,
        body: RequestBody,
    ) -> Result<SearchRequest, ApiError> {
        let req = if head.is_get() {
            self.parse_query(route, head.query.unwrap_or(""))?
        } else {
            let body = match body {
                RequestBody::Read(bytes) => bytes,
                RequestBody::Absent => bytes::Bytes::new(),
                RequestBody::TooLarge => {
                    let e = ApiError::body_too_large(self.limits().max_body_bytes);
                    count_refusal(route, e.status);
                    return Err(e);
                }
                RequestBody::TimedOut(wait) => {
                    let e = ApiError::body_timeout(wait);
                    count_refusal(route, e.status);
                    return Err(e);
                }
                RequestBody::Unreadable(why) => {
                    let e = ApiError::new(
                        400,
                        ErrorCode::BadRequest,
                        None,
                        format!("the request body could not be read: {why}"),
                    );
                    count_refusal(route, e.status);
                    return Err(e);
                }
            };
            self.parse(route, head.content_type, &body)?
        };
        // Only the protocols that resume by event id read `Last-Event-ID`.
        if route.format().disconnect() != Disconnect::Linger {
            return Ok(req);
        }
        self.with_resume(route, req, head.last_event_id, head.query)
    }
}

/// Logs a refusal (status, code and field: never the body, whose text the message may
/// quote) and answers it.
fn refused(route: Route, request_id: Option<&str>, e: &ApiError) -> Answer {
    tracing::info!(
        request_id = request_id.unwrap_or("-"),
        route = route.path(),
        status = e.status,
        code = e.code.as_str(),
        field = e.field.as_deref().unwrap_or("-"),
        "request refused"
    );
    Answer::refusal(route.format(), e)
}
