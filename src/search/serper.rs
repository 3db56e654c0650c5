//! Serper (Google results): `POST https://google.serper.dev/search` with JSON
//! `{q, num}` and an `X-API-KEY` header.

use futures::future::BoxFuture;
use reqwest::Url;
use serde::Deserialize;
use serde_json::json;

use super::http::{null_as_default, rank_score, search_json, HttpSettings, ProviderOptions};
use super::{Document, SearchEngine, SearchError};
use crate::http::Secret;

/// Variable holding the API key.
pub const SERPER_API_KEY_ENV: &str = "SERPER_API_KEY";
/// Variable overriding the base URL.
pub const SERPER_BASE_URL_ENV: &str = "SERPER_BASE_URL";
/// The public endpoint.
pub const SERPER_DEFAULT_BASE_URL: &str = "https://google.serper.dev";
const MAX_NUM: usize = 100;

/// Engine backed by the Serper Google search API.
#[derive(Debug, Clone)]
pub struct SerperEngine {
    endpoint: Url,
    key: Secret,
    http: HttpSettings,
}

impl SerperEngine {
    /// Needs `opts.api_key`; fails with `MissingConfig("SERPER_API_KEY")` without it.
    pub fn new(opts: &ProviderOptions, http: HttpSettings) -> Result<Self, SearchError> {
        Ok(SerperEngine {
            key: opts.require_key(SERPER_API_KEY_ENV)?,
            endpoint: opts.endpoint(
                Some(SERPER_DEFAULT_BASE_URL),
                "/search",
                SERPER_BASE_URL_ENV,
            )?,
            http,
        })
    }
}

#[derive(Deserialize)]
struct Response {
    // Missing when Google has no organic results for the query.
    #[serde(default, deserialize_with = "null_as_default")]
    organic: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    link: String,
    #[serde(default, deserialize_with = "null_as_default")]
    snippet: String,
    #[serde(default)]
    position: Option<u32>,
}

impl SearchEngine for SerperEngine {
    fn name(&self) -> &str {
        "serper"
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let request = move |client: &reqwest::Client| {
            client
                .post(self.endpoint.clone())
                .header("X-API-KEY", self.key.expose())
                .json(&json!({ "q": query, "num": limit.min(MAX_NUM) }))
        };
        Box::pin(search_json(
            &self.http,
            limit,
            request,
            |response: Response| response.organic,
            |rank, hit: Hit| Document {
                title: hit.title,
                url: hit.link,
                snippet: hit.snippet.clone(),
                content: hit.snippet,
                // Positions are 1-based ranks; keep "higher is better".
                score: hit
                    .position
                    .filter(|p| *p > 0)
                    .map_or_else(|| rank_score(rank), |p| 1.0 / f64::from(p)),
            },
        ))
    }
}
