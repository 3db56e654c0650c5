//! SearXNG: a self-hosted, key-free metasearch engine.
//!
//! `GET {SEARXNG_URL}/search?q=...&format=json`. The instance must list `json` under
//! `search.formats` in its settings, otherwise it answers 403.

use futures::future::BoxFuture;
use reqwest::Url;
use serde::Deserialize;

use super::http::{null_as_default, rank_score, search_json, HttpSettings, ProviderOptions};
use super::{Document, SearchEngine, SearchError};

/// Variable naming the instance's base URL (e.g. `http://localhost:8888`).
pub const SEARXNG_URL_ENV: &str = "SEARXNG_URL";

/// Engine backed by a SearXNG instance.
#[derive(Debug, Clone)]
pub struct SearxngEngine {
    endpoint: Url,
    http: HttpSettings,
}

impl SearxngEngine {
    /// Needs `opts.base_url`; fails with `MissingConfig("SEARXNG_URL")` without it.
    pub fn new(opts: &ProviderOptions, http: HttpSettings) -> Result<Self, SearchError> {
        Ok(SearxngEngine {
            endpoint: opts.endpoint(None, "/search", SEARXNG_URL_ENV)?,
            http,
        })
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
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    score: Option<f64>,
}

impl SearchEngine for SearxngEngine {
    fn name(&self) -> &str {
        "searxng"
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
                .append_pair("format", "json");
            client.get(url)
        };
        // SearXNG has no result-count parameter: it returns a page (~20) and we cut.
        Box::pin(search_json(
            &self.http,
            limit,
            request,
            |response: Response| response.results,
            |rank, hit: Hit| {
                let text = hit.content.unwrap_or_default();
                Document {
                    title: hit.title,
                    url: hit.url,
                    snippet: text.clone(),
                    content: text,
                    score: hit.score.unwrap_or_else(|| rank_score(rank)),
                }
            },
        ))
    }
}
