//! The HTTP contract both servers serve, minus the HTTP: request parsing and checks,
//! error bodies with their status codes, stream headers, limits, the genie-tool message
//! shapes, and [`Service`], whose [`handle`](Service::handle) answers a search route's
//! request whole (parse, resume, admit, start, the shutdown rule, logs, metrics).
//! Streams are logged for resuming with `Last-Event-ID` (`resume.rs`, over
//! [`crate::replay`]); what a resume gets is decided here, never in a face.
//!
//! The FastAPI service and the axum server are thin faces over this module, so their
//! status codes, error bodies and bytes agree by construction: each reads the body by
//! the [`BodyCap`] rule, calls [`Service::handle`] and writes the [`Answer`].

mod access;
mod admission;
mod auth;
mod body;
mod cors;
mod error;
mod handle;
pub mod mcp;
mod open_streams;
mod query;
mod request;
mod resume;
mod service;
pub mod wire;

pub use access::{Access, AccessError, EarlyAnswer, RequestHead};
pub use admission::{Admission, StreamPermit};
pub use auth::{read_key_file, Auth, PUBLIC_PATHS};
pub use body::{BodyCap, BodyStep, RequestBody, DRAIN_MAX_BYTES};
pub use cors::Cors;
pub use error::{ApiError, ErrorCode};
pub use handle::{Answer, AnswerBody, SearchHead};
pub use open_streams::{OpenStreams, SHUTDOWN_CODE, SHUTDOWN_MESSAGE};
pub use query::{last_event_id, query_to_body, ResumePoint, MAX_LAST_EVENT_ID};
pub use request::{
    new_request_id, parse_request, valid_request_id, SearchRequest, MAX_REQUEST_ID_CHARS,
};
pub use resume::ABANDONED_CODE;
pub use service::{Reply, Service, DEFAULT_RETRY};

/// Headers of every SSE response. No `Connection` header: it is invalid in HTTP/2.
pub const SSE_HEADERS: [(&str, &str); 3] = [
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache, no-transform"),
    ("x-accel-buffering", "no"),
];

/// Content type of JSON replies (errors and non-streaming results).
pub const JSON_CONTENT_TYPE: &str = "application/json";

/// Which request and message shapes a route speaks. Every route is answered by
/// [`Service::handle`]; a face maps each path (and method) to one of these, and passes
/// the `{id}` of [`AiSdkResume`](Route::AiSdkResume)'s path as `SearchHead::path_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `POST /deepsearch` (and `GET` for `EventSource`): the seed's request model and envelope.
    DeepSearch,
    /// `POST /v1/tool/deepsearch`: genie-tool's request and message shapes.
    GenieTool,
    /// `POST /v1/chat/completions`: OpenAI Chat Completions.
    OpenAiChat,
    /// `GET /v1/models`: the OpenAI model list.
    OpenAiModels,
    /// `POST /api/chat`: the Vercel AI SDK UI message stream.
    AiSdkChat,
    /// `GET /api/chat/{id}/stream`: the AI SDK's resume of a chat's active stream.
    AiSdkResume,
    /// `POST /ag-ui`: AG-UI events for a `RunAgentInput`.
    AgUi,
}

impl Route {
    /// Every route, for the faces' tables.
    pub const ALL: [Route; 7] = [
        Route::DeepSearch,
        Route::GenieTool,
        Route::OpenAiChat,
        Route::OpenAiModels,
        Route::AiSdkChat,
        Route::AiSdkResume,
        Route::AgUi,
    ];

    /// The path it is served at (`{id}`: a path segment, see [`SearchHead::path_id`]).
    pub fn path(self) -> &'static str {
        match self {
            Route::DeepSearch => "/deepsearch",
            Route::GenieTool => "/v1/tool/deepsearch",
            Route::OpenAiChat => "/v1/chat/completions",
            Route::OpenAiModels => "/v1/models",
            Route::AiSdkChat => "/api/chat",
            Route::AiSdkResume => "/api/chat/{id}/stream",
            Route::AgUi => "/ag-ui",
        }
    }

    /// The methods it answers (`HEAD` with every `GET`), as sent in a 405's `Allow`.
    pub fn allow(self) -> &'static str {
        match self {
            Route::DeepSearch => "GET, HEAD, POST",
            Route::OpenAiModels | Route::AiSdkResume => "GET, HEAD",
            _ => "POST",
        }
    }

    /// Its name, as the Python face's `Service.start` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Route::DeepSearch => "deepsearch",
            Route::GenieTool => "genie",
            Route::OpenAiChat => "openai",
            Route::OpenAiModels => "openai_models",
            Route::AiSdkChat => "aisdk",
            Route::AiSdkResume => "aisdk_resume",
            Route::AgUi => "agui",
        }
    }

    /// The route named `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Route> {
        Route::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The protocol its streams (and refusals) speak.
    pub fn format(self) -> wire::Format {
        match self {
            Route::DeepSearch => wire::Format::Envelope,
            Route::GenieTool => wire::Format::Genie,
            Route::OpenAiChat | Route::OpenAiModels => wire::Format::OpenAi,
            Route::AiSdkChat | Route::AiSdkResume => wire::Format::AiSdk,
            Route::AgUi => wire::Format::AgUi,
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
