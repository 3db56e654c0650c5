//! Tavily: `POST https://api.tavily.com/search` with a bearer key.

use futures::future::BoxFuture;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

use super::http::{null_as_default, rank_score, search_json, HttpSettings, ProviderOptions};
use super::{Document, SearchEngine, SearchError};
use crate::http::Secret;

/// Variable holding the API key.
pub const TAVILY_API_KEY_ENV: &str = "TAVILY_API_KEY";
/// Variable overriding the base URL.
pub const TAVILY_BASE_URL_ENV: &str = "TAVILY_BASE_URL";
/// The public endpoint.
pub const TAVILY_DEFAULT_BASE_URL: &str = "https://api.tavily.com";
/// Tavily rejects `max_results` above this.
const MAX_RESULTS: usize = 20;

/// Engine backed by the Tavily search API.
#[derive(Debug, Clone)]
pub struct TavilyEngine {
    endpoint: Url,
    key: Secret,
    http: HttpSettings,
    raw_content: bool,
}

impl TavilyEngine {
    /// Needs `opts.api_key`; fails with `MissingConfig("TAVILY_API_KEY")` without it.
    pub fn new(opts: &ProviderOptions, http: HttpSettings) -> Result<Self, SearchError> {
        Ok(TavilyEngine {
            key: opts.require_key(TAVILY_API_KEY_ENV)?,
            endpoint: opts.endpoint(
                Some(TAVILY_DEFAULT_BASE_URL),
                "/search",
                TAVILY_BASE_URL_ENV,
            )?,
            http,
            raw_content: false,
        })
    }

    /// Also ask for each page's full cleaned text and use it as `content`. Off by
    /// default: it makes answers much larger.
    pub fn with_raw_content(mut self, on: bool) -> Self {
        self.raw_content = on;
        self
    }
}

#[derive(Deserialize)]
struct Response {
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    content: String,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default)]
    raw_content: Option<String>,
}

impl SearchEngine for TavilyEngine {
    fn name(&self) -> &str {
        "tavily"
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let request = move |client: &reqwest::Client| {
            let body = json!({
                "query": query,
                "max_results": limit.min(MAX_RESULTS),
                "search_depth": "basic",
                "include_answer": false,
                "include_raw_content": self.raw_content,
            });
            client
                .post(self.endpoint.clone())
                .bearer_auth(self.key.expose())
                .json(&body)
        };
        Box::pin(search_json(
            &self.http,
            limit,
            request,
            |response: Response| response.results,
            |rank, hit: Hit| {
                let content = hit
                    .raw_content
                    .filter(|raw| !raw.trim().is_empty())
                    .unwrap_or_else(|| hit.content.clone());
                Document {
                    title: hit.title,
                    url: hit.url,
                    snippet: hit.content,
                    content,
                    score: hit.score.unwrap_or_else(|| rank_score(rank)),
                }
            },
        ))
    }
}
