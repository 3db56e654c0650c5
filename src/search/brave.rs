//! Brave Search: `GET https://api.search.brave.com/res/v1/web/search?q=..&count=..`
//! with an `X-Subscription-Token` header.

use futures::future::BoxFuture;
use reqwest::Url;
use serde::Deserialize;

use super::html::inline_text;
use super::http::{null_as_default, rank_score, search_json, HttpSettings, ProviderOptions};
use super::{Document, SearchEngine, SearchError};
use crate::http::Secret;

/// Variable holding the subscription token.
pub const BRAVE_API_KEY_ENV: &str = "BRAVE_API_KEY";
/// Variable overriding the base URL.
pub const BRAVE_BASE_URL_ENV: &str = "BRAVE_BASE_URL";
/// The public endpoint.
pub const BRAVE_DEFAULT_BASE_URL: &str = "https://api.search.brave.com";
/// Brave's maximum `count`.
const MAX_COUNT: usize = 20;

/// Engine backed by the Brave web search API.
#[derive(Debug, Clone)]
pub struct BraveEngine {
    endpoint: Url,
    key: Secret,
    http: HttpSettings,
}

impl BraveEngine {
    /// Needs `opts.api_key`; fails with `MissingConfig("BRAVE_API_KEY")` without it.
    pub fn new(opts: &ProviderOptions, http: HttpSettings) -> Result<Self, SearchError> {
        Ok(BraveEngine {
            key: opts.require_key(BRAVE_API_KEY_ENV)?,
            endpoint: opts.endpoint(
                Some(BRAVE_DEFAULT_BASE_URL),
                "/res/v1/web/search",
                BRAVE_BASE_URL_ENV,
            )?,
            http,
        })
    }
}

#[derive(Deserialize)]
struct Response {
    // Absent when the query has no web results (e.g. only news or nothing at all).
    #[serde(default)]
    web: Option<Web>,
}

#[derive(Deserialize)]
struct Web {
    #[serde(default, deserialize_with = "null_as_default")]
    results: Vec<Hit>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
    #[serde(default, deserialize_with = "null_as_default")]
    extra_snippets: Vec<String>,
}

impl SearchEngine for BraveEngine {
    fn name(&self) -> &str {
        "brave"
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let request = move |client: &reqwest::Client| {
            let mut url = self.endpoint.clone();
            url.query_pairs_mut()
                .append_pair("q", query)
                .append_pair("count", &limit.min(MAX_COUNT).to_string());
            client
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .header("X-Subscription-Token", self.key.expose())
        };
        Box::pin(search_json(
            &self.http,
            limit,
            request,
            |response: Response| response.web.map(|w| w.results).unwrap_or_default(),
            |rank, hit: Hit| {
                // Brave marks query words with <strong> and escapes entities.
                let snippet = inline_text(&hit.description);
                let mut content = snippet.clone();
                for extra in &hit.extra_snippets {
                    content.push_str("\n\n");
                    content.push_str(&inline_text(extra));
                }
                Document {
                    title: inline_text(&hit.title),
                    url: hit.url,
                    snippet,
                    content: content.trim().to_string(),
                    score: rank_score(rank),
                }
            },
        ))
    }
}
