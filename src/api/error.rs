//! Refusals: [`ApiError`] (status, [`ErrorCode`], message, field) and its JSON body.

use serde::Serialize;

use crate::deepsearch::DeepSearchError;

macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident => $wire:literal,)+) => {
        /// The stable machine-readable `code` of an error body, one per kind of refusal.
        /// The wire strings are snake_case and never change meaning.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as sent on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                }
            }

            /// The code whose wire string is `wire`.
            pub fn from_wire(wire: &str) -> Option<Self> {
                match wire {
                    $($wire => Some(ErrorCode::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

error_codes! {
    /// A request field is missing, malformed or out of range (422; `field` names it).
    InvalidRequest => "invalid_request",
    /// The body is not UTF-8 JSON (400).
    InvalidJson => "invalid_json",
    /// The body could not be read (400).
    BadRequest => "bad_request",
    /// The body is larger than `--max-body-bytes` (413).
    BodyTooLarge => "body_too_large",
    /// The body did not arrive within `--body-timeout` (408).
    BodyTimeout => "body_timeout",
    /// The server holds `--max-connections` connections (503, `Retry-After`).
    TooManyConnections => "too_many_connections",
    /// The content type is not JSON (415).
    UnsupportedMediaType => "unsupported_media_type",
    /// `Last-Event-ID` is not an id this server sends (400).
    InvalidLastEventId => "invalid_last_event_id",
    /// `Last-Event-ID` is past the last id its stream sent (400).
    UnsentEventId => "unsent_event_id",
    /// A streamed search with this `request_id` is running (409).
    RequestIdInUse => "request_id_in_use",
    /// No valid API key (401).
    Unauthorized => "unauthorized",
    /// A CORS preflight from an origin not allowed (403).
    OriginNotAllowed => "origin_not_allowed",
    /// No route for the path (404).
    NotFound => "not_found",
    /// The path is served, not with this method (405).
    MethodNotAllowed => "method_not_allowed",
    /// `--max-streams` searches are running (503, `Retry-After`).
    Overloaded => "overloaded",
    /// The server is shutting down (503).
    Shutdown => "shutdown",
    /// A bug or an impossible state (500).
    Internal => "internal",
    /// A setting of the service is out of range.
    InvalidSetting => "invalid_setting",
    /// An engine could not be set up.
    EngineConfig => "engine_config",
    /// The language model refused the key.
    LlmUnauthorized => "llm_unauthorized",
    /// The prompt is over the model's context length.
    LlmContextLength => "llm_context_length",
    /// The language model was too slow.
    LlmTimeout => "llm_timeout",
    /// Any other failure of the language model.
    LlmError => "llm_error",
    /// The stream's consumer went away.
    Closed => "closed",
    /// The search reached its time limit (504).
    Timeout => "timeout",
    /// The replay store failed.
    ReplayStore => "replay_store",
    /// The upstream of a relaying service could not be reached (502).
    UpstreamUnreachable => "upstream_unreachable",
    /// The upstream answered something else than JSON (502).
    UpstreamProtocol => "upstream_protocol",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal, with its HTTP status and JSON body `{"error": {"code", "message", "field"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("HTTP {status} {code}: {message}")]
pub struct ApiError {
    pub status: u16,
    pub code: ErrorCode,
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
        code: ErrorCode,
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

    /// 500 `internal`: a bug or an impossible state, described by `message`.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(500, ErrorCode::Internal, None, message.to_string())
    }

    /// 413 `body_too_large`; the message does not depend on how much was read, so servers
    /// that stop reading early agree with those that read it all.
    pub fn body_too_large(limit: usize) -> Self {
        Self::new(
            413,
            ErrorCode::BodyTooLarge,
            None,
            format!("request body is larger than {limit} bytes"),
        )
    }

    /// 408 `body_timeout`: the body did not arrive within `limit`.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            408,
            ErrorCode::BodyTimeout,
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
                ErrorCode::TooManyConnections,
                None,
                format!("the server holds its maximum of {max} connections; retry later"),
            )
        }
    }

    /// 422 `invalid_request`.
    pub fn invalid(field: Option<&str>, message: impl Into<String>) -> Self {
        Self::new(422, ErrorCode::InvalidRequest, field, message)
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
                code: self.code.as_str(),
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
        // Every code of the search layer is one of ours (tested below).
        let code = ErrorCode::from_wire(e.code()).unwrap_or(ErrorCode::Internal);
        match e {
            DeepSearchError::InvalidRequest { field, .. } => {
                ApiError::invalid(Some(field), message)
            }
            DeepSearchError::Llm(_) => ApiError::new(502, code, None, message),
            DeepSearchError::TimedOut => ApiError::new(504, code, None, message),
            _ => ApiError::new(500, code, None, message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::LlmError;

    #[test]
    fn wire_strings_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            let wire = code.as_str();
            assert!(seen.insert(wire), "{wire} twice");
            assert!(
                wire.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{wire}"
            );
            assert_eq!(ErrorCode::from_wire(wire), Some(code));
        }
        assert_eq!(ErrorCode::from_wire("nope"), None);
    }

    #[test]
    fn search_errors_keep_their_codes() {
        let errors = [
            DeepSearchError::InvalidSetting {
                field: "f",
                reason: "r".into(),
            },
            DeepSearchError::Llm(LlmError::Timeout(std::time::Duration::from_secs(1))),
            DeepSearchError::Llm(LlmError::Unauthorized {
                message: String::new(),
            }),
            DeepSearchError::Llm(LlmError::ContextLength {
                status: 400,
                message: String::new(),
            }),
            DeepSearchError::Closed,
            DeepSearchError::TimedOut,
            DeepSearchError::Internal("x".into()),
        ];
        for e in errors {
            let wire = e.code();
            let api = ApiError::from(e);
            assert_eq!(api.code.as_str(), wire);
        }
        assert_eq!(
            ErrorCode::UpstreamUnreachable.as_str(),
            crate::proxy::code::UNREACHABLE
        );
        assert_eq!(
            ErrorCode::UpstreamProtocol.as_str(),
            crate::proxy::code::PROTOCOL
        );
        assert_eq!(
            ApiError::internal("boom"),
            ApiError::new(500, ErrorCode::Internal, None, "boom")
        );
    }
}
