//! DeepSearch: plan → parallel search on several engines → reason, round after round,
//! then a streamed answer whose `[n]` citations name only documents actually retrieved.
//!
//! The loop writes [`Message`]s into a [`Sink`]: an [`EventStream`]'s sender for SSE
//! ([`DeepSearch::stream`]), a `Vec` to collect them, or [`Discard`] when only the result
//! matters ([`DeepSearch::search`]). Knows nothing of Python or HTTP serving.
//!
//! ```
//! # tokio_test_block(async {
//! use std::sync::Arc;
//! use deepsearch_stream::deepsearch::{Brain, DeepSearch, Message, Request, Settings};
//! use deepsearch_stream::search::{Document, SearchEngine, SearchError};
//! use futures::future::BoxFuture;
//!
//! #[derive(Debug)]
//! struct OneDoc;
//! impl SearchEngine for OneDoc {
//!     fn name(&self) -> &str { "one" }
//!     fn search<'a>(&'a self, _q: &'a str, _n: usize) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
//!         Box::pin(async {
//!             Ok(vec![Document {
//!                 title: "Tokio".into(),
//!                 url: "https://tokio.rs/".into(),
//!                 snippet: String::new(),
//!                 content: "Tokio is an asynchronous runtime for Rust.".into(),
//!                 score: 1.0,
//!             }])
//!         })
//!     }
//! }
//!
//! let ds = DeepSearch::new(vec![Arc::new(OneDoc)], Brain::Offline, Settings::default()).unwrap();
//! let mut messages: Vec<Message> = Vec::new();
//! let result = ds.run(&Request::new("What is Tokio?"), &mut messages).await.unwrap();
//! assert_eq!(result.answer, "Tokio is an asynchronous runtime for Rust. [1]");
//! assert_eq!(result.sources[0].url, "https://tokio.rs/");
//! assert_eq!(messages.first().unwrap().kind(), "status");
//! assert_eq!(messages.last().unwrap().kind(), "final");
//! # });
//! # fn tokio_test_block(f: impl std::future::Future<Output = ()>) {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

mod brain;
mod breaker;
mod budget;
pub mod citations;
mod dedup;
mod fanout;
mod history;
mod messages;
pub mod offline;
mod options;
mod run;
mod sink;

use std::sync::Arc;

pub use brain::Brain;
pub use breaker::BreakerSettings;
pub use budget::{Budget, Usage};
pub use dedup::normalize_url;
pub use history::PlanHistory;
pub use messages::{
    DocData, FinalData, IntermediateData, Message, PlanData, QueryResults, SourceRef, WarningData,
};
// The loop's human-readable lines, for a protocol that reports its phases by them (MCP).
pub(crate) use messages::Texts;
pub use options::{
    Batching, Filter, Locale, Request, Settings, StreamMode, DEFAULT_BATCH_SECONDS,
    DEFAULT_BATCH_TOKENS, MAX_LOOP_RANGE, MAX_QUERY_CHARS,
};
pub use sink::{Discard, Sink};

use crate::llm::{LlmClient, LlmConfig, LlmError};
use crate::search::{build_engine, EngineConfig, PageReader, SearchEngine, SearchError};
use crate::stream::{EventStream, Failure, StreamConfig, StreamError};

/// Why a search could not start or did not finish.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeepSearchError {
    /// A request field is missing, malformed or out of range.
    #[error("invalid {field}: {reason}")]
    InvalidRequest { field: &'static str, reason: String },
    /// A setting of the search service is out of range.
    #[error("invalid setting {field}: {reason}")]
    InvalidSetting { field: &'static str, reason: String },
    /// An engine could not be set up (unknown name, missing key, unreadable corpus).
    #[error("search engine {engine}: {source}")]
    Engine {
        engine: String,
        #[source]
        source: SearchError,
    },
    /// The language model failed; the search cannot go on without it.
    #[error(transparent)]
    Llm(#[from] LlmError),
    /// The consumer went away; nobody is left to send to.
    #[error("the stream was closed by its consumer")]
    Closed,
    /// The stream reached its time limit.
    #[error("the stream reached its timeout")]
    TimedOut,
    /// A bug: a message could not be encoded.
    #[error("internal error: {0}")]
    Internal(String),
}

impl DeepSearchError {
    /// Stable machine-readable code, used as the `code` of `error` messages.
    ///
    /// ```
    /// use deepsearch_stream::deepsearch::DeepSearchError;
    /// assert_eq!(DeepSearchError::Closed.code(), "closed");
    /// ```
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. } => "invalid_request",
            Self::InvalidSetting { .. } => "invalid_setting",
            Self::Engine { .. } => "engine_config",
            Self::Llm(LlmError::Unauthorized { .. }) => "llm_unauthorized",
            Self::Llm(LlmError::ContextLength { .. }) => "llm_context_length",
            Self::Llm(LlmError::Timeout(_) | LlmError::IdleTimeout(_)) => "llm_timeout",
            Self::Llm(_) => "llm_error",
            Self::Closed => "closed",
            Self::TimedOut => "timeout",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<DeepSearchError> for Failure {
    fn from(e: DeepSearchError) -> Self {
        Failure::new(e.to_string(), e.code())
    }
}

/// A configured search service: engines, brain and limits. Cheap to share behind an
/// `Arc`; every search runs independently.
#[derive(Debug)]
pub struct DeepSearch {
    engines: Vec<Arc<dyn SearchEngine>>,
    brain: Brain,
    reader: Option<PageReader>,
    settings: Settings,
    /// Per engine, shared with every [`DeepSearch::with_engines`] copy.
    breakers: Arc<breaker::Breakers>,
}

impl DeepSearch {
    /// A service over `engines` (at least one).
    pub fn new(
        engines: Vec<Arc<dyn SearchEngine>>,
        brain: Brain,
        settings: Settings,
    ) -> Result<Self, DeepSearchError> {
        settings.validate()?;
        if engines.is_empty() {
            return Err(DeepSearchError::InvalidSetting {
                field: "engines",
                reason: "at least one search engine is needed".into(),
            });
        }
        Ok(DeepSearch {
            engines,
            brain,
            reader: None,
            breakers: Arc::new(breaker::Breakers::new(settings.breaker)),
            settings,
        })
    }

    /// Builds the engines named in `engine_names` (none: `local`) from `engines`, and the
    /// model client from `llm` (`None`: offline). Blocking when `local` is among them: its
    /// index may have to be built.
    pub fn from_config<S: AsRef<str>>(
        engine_names: &[S],
        engines: &EngineConfig,
        llm: Option<LlmConfig>,
        settings: Settings,
    ) -> Result<Self, DeepSearchError> {
        settings.validate()?;
        let mut names: Vec<String> = Vec::new();
        for name in engine_names {
            let name = name.as_ref().trim().to_ascii_lowercase();
            if !names.contains(&name) {
                names.push(name);
            }
        }
        if names.is_empty() {
            names.push("local".into());
        }
        let built = names
            .iter()
            .map(|name| {
                build_engine(name, engines).map_err(|source| DeepSearchError::Engine {
                    engine: name.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let brain = match llm {
            Some(config) => Brain::Llm(LlmClient::new(config)?),
            None => Brain::Offline,
        };
        Self::new(built, brain, settings)
    }

    /// The same service restricted to the engines named in `names` (all when empty);
    /// unknown names are an `InvalidRequest` for field `search_engines`.
    pub fn with_engines<S: AsRef<str>>(&self, names: &[S]) -> Result<Self, DeepSearchError> {
        let mut engines = Vec::new();
        for name in names {
            let name = name.as_ref().trim();
            let engine = self
                .engines
                .iter()
                .find(|e| e.name().eq_ignore_ascii_case(name))
                .ok_or_else(|| DeepSearchError::InvalidRequest {
                    field: "search_engines",
                    reason: format!(
                        "engine {name:?} is not configured here; available: {}",
                        self.engine_names().join(", ")
                    ),
                })?;
            if !engines
                .iter()
                .any(|e: &Arc<dyn SearchEngine>| Arc::ptr_eq(e, engine))
            {
                engines.push(Arc::clone(engine));
            }
        }
        if engines.is_empty() {
            engines = self.engines.clone();
        }
        Ok(DeepSearch {
            engines,
            brain: self.brain.clone(),
            reader: self.reader.clone(),
            settings: self.settings.clone(),
            breakers: Arc::clone(&self.breakers),
        })
    }

    /// Fetches the top `settings.read_pages` documents' pages before answering.
    pub fn with_reader(mut self, reader: PageReader) -> Self {
        self.reader = Some(reader);
        self
    }

    /// Names of the engines, in the order results are merged.
    pub fn engine_names(&self) -> Vec<&str> {
        self.engines.iter().map(|e| e.name()).collect()
    }

    pub fn brain(&self) -> &Brain {
        &self.brain
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Runs `req` on a task feeding a new [`EventStream`]: the messages as SSE frames,
    /// an `error` message on failure, `[DONE]` at the end. Dropping or closing the stream
    /// aborts the search, and with it every engine and model request in flight.
    ///
    /// The request is checked first, so bad input is an error here, before any stream.
    /// Must be called on a tokio runtime.
    pub fn stream(
        self: &Arc<Self>,
        request_id: &str,
        req: Request,
        config: StreamConfig,
    ) -> Result<EventStream, DeepSearchError> {
        req.validate()?;
        let this = Arc::clone(self);
        EventStream::spawn(request_id, config, move |mut tx| async move {
            this.run(&req, &mut tx)
                .await
                .map(drop)
                .map_err(Failure::from)
        })
        .map_err(|e| match e {
            StreamError::Config(reason) => DeepSearchError::InvalidSetting {
                field: "stream",
                reason,
            },
            other => DeepSearchError::Internal(other.to_string()),
        })
    }

    /// Runs `req` to the end without streaming and returns the final result.
    pub async fn search(&self, req: &Request) -> Result<FinalData, DeepSearchError> {
        self.run(req, &mut Discard).await
    }
}
