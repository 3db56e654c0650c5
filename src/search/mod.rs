//! Search engines: the embedded BM25 engine over a local corpus and the HTTP
//! engines (SearXNG, Tavily, Brave, Serper, Jina). Knows nothing of Python or HTTP serving.

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub mod brave;
mod corpus;
pub mod html;
pub mod http;
pub mod jina;
pub mod local;
mod passages;
pub mod reader;
pub mod registry;
pub mod searxng;
pub mod serper;
pub mod ssrf;
pub mod stem;
mod symbols;
pub mod tavily;

pub use brave::BraveEngine;
pub use http::{HttpSettings, ProviderOptions};
pub use jina::JinaEngine;
pub use local::LocalEngine;
pub use reader::{PageReader, PageText, ReaderError, ReaderOptions};
pub use registry::{build_engine, EngineConfig, ENGINE_NAMES};
pub use searxng::SearxngEngine;
pub use serper::SerperEngine;
pub use tavily::TavilyEngine;

/// One search hit, as every engine reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub title: String,
    pub url: String,
    /// Short text shown in results.
    pub snippet: String,
    /// Longer text the answer is built from; the snippet when the engine gives nothing more.
    pub content: String,
    /// Engine-specific relevance, higher is better.
    pub score: f64,
}

impl Document {
    /// The text the document stands for: its content, else its snippet.
    ///
    /// ```
    /// use deepsearch_stream::search::Document;
    /// let d = Document { title: "T".into(), url: String::new(), snippet: "short".into(), content: " ".into(), score: 0.0 };
    /// assert_eq!(d.text(), "short");
    /// ```
    pub fn text(&self) -> &str {
        if self.content.trim().is_empty() {
            &self.snippet
        } else {
            &self.content
        }
    }
}

/// Why one engine call failed. The DeepSearch loop turns this into a `warning` message.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("missing configuration: set {0}")]
    MissingConfig(&'static str),
    /// A setting is present but unusable (e.g. a base URL that does not parse).
    #[error("invalid configuration {name}: {reason}")]
    InvalidConfig {
        /// Variable (or field) holding the bad value.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    #[error("request failed: {0}")]
    Http(String),
    #[error("engine answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("local index: {0}")]
    Index(String),
    #[error("unknown engine {0:?}")]
    UnknownEngine(String),
}

impl From<crate::http::ClientError> for SearchError {
    fn from(e: crate::http::ClientError) -> Self {
        SearchError::Http(e.0)
    }
}

/// A search backend. Object safe so the loop can hold `Arc<dyn SearchEngine>`.
pub trait SearchEngine: Send + Sync + std::fmt::Debug {
    /// Stable short name (`local`, `searxng`, ...), used in messages.
    fn name(&self) -> &str;
    /// Up to `limit` documents for `query`, best first.
    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>>;
}
