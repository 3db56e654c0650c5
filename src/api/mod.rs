//! The HTTP contract both servers serve, minus the HTTP: request parsing and checks,
//! error bodies with their status codes, stream headers, limits, the genie-tool message
//! shapes, and [`Service`], which turns a request into a stream or a JSON reply.
//! Streams are logged for resuming with `Last-Event-ID` (`resume.rs`, over
//! [`crate::replay`]); what a resume gets is decided here, never in a face.
//!
//! The FastAPI service and the axum server are thin faces over this module, so their
//! status codes, error bodies and bytes agree by construction.

mod access;
mod auth;
mod cors;
mod genie;
mod open_streams;
mod request;
mod resume;
mod service;

use serde::Serialize;

pub use access::{Access, AccessError, EarlyAnswer, RequestHead};
pub use auth::{Auth, PUBLIC_PATHS};
pub use cors::Cors;
pub use genie::{GenieFormat, GenieSink};
pub use open_streams::{OpenStreams, SHUTDOWN_CODE, SHUTDOWN_MESSAGE};
pub use request::{
    new_request_id, parse_request, valid_request_id, SearchRequest, MAX_REQUEST_ID_CHARS,
};
pub use resume::{last_event_id, query_to_body, ABANDONED_CODE, MAX_LAST_EVENT_ID};
pub use service::{Reply, Service, StreamPermit};

use crate::deepsearch::DeepSearchError;

/// Headers of every SSE response. No `Connection` header: it is invalid in HTTP/2.
pub const SSE_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache, no-transform"),
    ("x-accel-buffering", "no"),
];

/// Content type of JSON replies (errors and non-streaming results).
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Which request and message shapes a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /deepsearch`: the seed's request model and envelope.
    DeepSearch,
    /// `POST /v1/tool/deepsearch`: genie-tool's request and message shapes.
    GenieTool,
}

impl Route {
    /// The path it is served at.
    pub fn path(self) -> &'static str {
        match self {
            Route::DeepSearch => "/deepsearch",
            Route::GenieTool => "/v1/tool/deepsearch",
        }
    }
}

/// What a server accepts at most.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Searches (streaming or not) in progress at once; beyond it, 503 with Retry-After.
    pub max_streams: usize,
    /// Request body size.
    pub max_body_bytes: usize,
    /// Query length in characters.
    pub max_query_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_streams: 1000,
            max_body_bytes: 64 * 1024,
            max_query_chars: crate::deepsearch::MAX_QUERY_CHARS,
        }
    }
}

/// A refusal, with its HTTP status and JSON body `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    /// Stable machine-readable code.
    pub code: &'static str,
    /// The request field at fault, when one is.
    pub field: Option<String>,
    pub message: String,
    /// Seconds a client should wait before retrying (sent as `Retry-After`).
    pub retry_after: Option<u32>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    field: Option<&'a str>,
}

impl ApiError {
    pub fn new(
        status: u16,
        code: &'static str,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            code,
            field: field.map(str::to_owned),
            message: message.into(),
            retry_after: None,
        }
    }

    /// 413 `body_too_large`; the message does not depend on how much was read, so servers
    /// that stop reading early agree with those that read it all.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            413,
            "body_too_large",
            None,
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 408 `body_timeout`: the body did not arrive within `limit`.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            408,
            "body_timeout",
            None,
            // `{}` of an f64 reads as Python's `:g` for the values a flag takes (30, 0.5).
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        )
    }

    /// 503 `too_many_connections`, to a connection past the cap, before its request is read.
    pub fn too_many_connections(max: usize) -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                503,
                "too_many_connections",
                None,
                format!("the server holds its maximum of {max} connections; retry later"),
            )
        }
    }

    /// 422 `invalid_request`.
    pub fn invalid(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(422, "invalid_request", field, message)
    }

    /// The JSON body.
    ///
    /// ```
    /// use deepsearch_stream::api::ApiError;
    /// let e = ApiError::invalid(Some("query"), "must not be empty");
    /// assert_eq!(
    ///     String::from_utf8(e.body()).unwrap(),
    ///     r#"{"error": {"code": "invalid_request", "message": "must not be empty", "field": "query"}}"#
    /// );
    /// ```
    pub fn body(&self) -> Vec<u8> {
        let body = ErrorBody {
            error: ErrorFields {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        };
        let mut out = Vec::with_capacity(128);
        // A struct of strings always serializes.
        let _ = crate::json_compat::to_python_json(&body, &mut out);
        out
    }

    /// Headers beyond the content type: `Retry-After`, the `WWW-Authenticate`
    /// challenge every 401 must carry, `Connection: close` on a 408.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let mut headers = Vec::new();
        if let Some(s) = self.retry_after {
            headers.push(("retry-after", s.to_string()));
        }
        if self.status == 401 {
            headers.push(("www-authenticate", "Bearer".to_string()));
        }
        if self.status == 408 {
            // What is left of the body is still on the connection.
            headers.push(("connection", "close".to_string()));
        }
        headers
    }
}

impl From<DeepSearchError> for ApiError {
    fn from(e: DeepSearchError) -> Self {
        let message = match &e {
            DeepSearchError::InvalidRequest { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        match e {
            DeepSearchError::InvalidRequest { field, .. } => {
                ApiError::invalid(Some(field), message)
            }
            DeepSearchError::Llm(_) => ApiError::new(502, e.code(), None, message),
            DeepSearchError::TimedOut => ApiError::new(504, e.code(), None, message),
            _ => ApiError::new(500, e.code(), None, message),
        }
    }
}
