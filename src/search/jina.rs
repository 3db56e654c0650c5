//! Jina search: `GET https://s.jina.ai/?q=...` with `Accept: application/json` and a
//! bearer key. Each hit comes with the page's content already extracted.

use futures::future::BoxFuture;
use reqwest::Url;
use serde::Deserialize;

use super::http::{null_as_default, rank_score, search_json, HttpSettings, ProviderOptions};
use super::{Document, SearchEngine, SearchError};
use crate::http::Secret;

/// Variable holding the API key.
pub const JINA_API_KEY_ENV: &str = "JINA_API_KEY";
/// Variable overriding the base URL.
pub const JINA_BASE_URL_ENV: &str = "JINA_BASE_URL";
/// The public endpoint.
pub const JINA_DEFAULT_BASE_URL: &str = "https://s.jina.ai";

/// Engine backed by Jina's search endpoint.
#[derive(Debug, Clone)]
pub struct JinaEngine {
    endpoint: Url,
    key: Secret,
    http: HttpSettings,
}

impl JinaEngine {
    /// Needs `opts.api_key`; fails with `MissingConfig("JINA_API_KEY")` without it.
    pub fn new(opts: &ProviderOptions, http: HttpSettings) -> Result<Self, SearchError> {
        Ok(JinaEngine {
            key: opts.require_key(JINA_API_KEY_ENV)?,
            endpoint: opts.endpoint(Some(JINA_DEFAULT_BASE_URL), "/", JINA_BASE_URL_ENV)?,
            http,
        })
    }
}

#[derive(Deserialize)]
struct Response {
    // `null` rather than `[]` when nothing was found.
    data: Option<Vec<Hit>>,
}

#[derive(Deserialize)]
struct Hit {
    #[serde(default, deserialize_with = "null_as_default")]
    title: String,
    url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    description: String,
    #[serde(default, deserialize_with = "null_as_default")]
    content: String,
}

impl SearchEngine for JinaEngine {
    fn name(&self) -> &str {
        "jina"
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let request = move |client: &reqwest::Client| {
            let mut url = self.endpoint.clone();
            url.query_pairs_mut().append_pair("q", query);
            client
                .get(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .bearer_auth(self.key.expose())
        };
        Box::pin(search_json(
            &self.http,
            limit,
            request,
            |response: Response| response.data.unwrap_or_default(),
            |rank, hit: Hit| {
                let content = if hit.content.trim().is_empty() {
                    hit.description.clone()
                } else {
                    hit.content
                };
                Document {
                    title: hit.title,
                    url: hit.url,
                    snippet: hit.description,
                    content,
                    score: rank_score(rank),
                }
            },
        ))
    }
}
