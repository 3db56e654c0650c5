//! The language-model side of DeepSearch.
//!
//! - [`LlmClient`]: a streaming client for any OpenAI-compatible
//!   `/chat/completions` server (OpenAI, Ollama's `/v1`, llama.cpp server,
//!   vLLM), with think-block separation ([`think`]) and lenient JSON
//!   extraction ([`json`]) for the planner and reasoner calls;
//! - [`prompts`]: the prompts for those calls and the citation post-filter.
//!
//! Knows nothing of Python or HTTP serving.

pub mod client;
pub mod config;
pub mod json;
pub mod prompts;
pub mod think;
pub mod usage;
mod wire;

use std::time::Duration;

/// The key type of [`LlmConfig::api_key`], shared with the search engines.
pub use client::LlmClient;
pub use config::{ChatMessage, LlmConfig, LlmOptions, Role};
pub use json::parse_json_lenient;
pub use think::{split_think, Delta, ThinkSplitter};
pub use usage::{TokenUsage, UsageReport};

/// Why an LLM call failed. Messages never contain the API key.
///
/// ```
/// use deepsearch_stream::llm::LlmError;
/// let e = LlmError::ContextLength { status: 400, message: "too long".into() };
/// assert_eq!(e.to_string(), "prompt exceeds the model's context length (HTTP 400): too long");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The configuration is unusable (bad URL, missing model, ...).
    #[error("invalid LLM configuration: {0}")]
    Config(String),
    /// The server could not be reached at all.
    #[error("could not connect to the LLM server at {url}: {message}")]
    Connect { url: String, message: String },
    /// The whole request took longer than the configured `timeout`.
    #[error("LLM request timed out after {0:?}")]
    Timeout(Duration),
    /// The stream went quiet for longer than the configured `idle_timeout`.
    #[error("LLM stream stalled: nothing received for {0:?}")]
    IdleTimeout(Duration),
    /// HTTP 401: the API key is missing or wrong.
    #[error("LLM server rejected the credentials (HTTP 401): {message}")]
    Unauthorized { message: String },
    /// The prompt (plus `max_tokens`) does not fit the model's context window.
    #[error("prompt exceeds the model's context length (HTTP {status}): {message}")]
    ContextLength { status: u16, message: String },
    /// Any other 4xx/5xx, with the provider's own error fields.
    #[error("LLM server answered HTTP {status}: {message}")]
    Api {
        status: u16,
        message: String,
        /// The provider's `error.type`, e.g. `invalid_request_error`.
        kind: Option<String>,
        /// The provider's `error.code`, as text.
        code: Option<String>,
    },
    /// The server reported an error inside an otherwise successful stream.
    #[error("LLM server reported an error mid-stream: {message}")]
    StreamError {
        message: String,
        kind: Option<String>,
        code: Option<String>,
    },
    /// A stream chunk that is not the JSON it should be.
    #[error("malformed LLM stream chunk: {0}")]
    MalformedChunk(String),
    /// A non-streaming response that is not the JSON it should be.
    #[error("malformed LLM response: {0}")]
    Malformed(String),
    /// The stream ended (or the connection dropped) before the server said
    /// it was done; what was received may be incomplete.
    #[error("LLM stream ended early: {0}")]
    Truncated(String),
    /// Model output did not contain the JSON asked for.
    #[error("{0}")]
    Json(String),
    /// Any other transport failure.
    #[error("LLM request failed: {0}")]
    Http(String),
}

impl LlmError {
    /// True for failures worth retrying later (network, timeouts, 429, 5xx).
    ///
    /// ```
    /// use deepsearch_stream::llm::LlmError;
    /// use std::time::Duration;
    /// assert!(LlmError::Timeout(Duration::from_secs(1)).is_transient());
    /// assert!(!LlmError::Unauthorized { message: String::new() }.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect { .. }
            | Self::Timeout(_)
            | Self::IdleTimeout(_)
            | Self::Truncated(_)
            | Self::Http(_) => true,
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
