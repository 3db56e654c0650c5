//! Plumbing shared by the HTTP engines: the one client, provider options, and the
//! request/response handling that turns every failure into a [`SearchError`].

use std::time::Duration;

use reqwest::{RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;

use super::{Document, SearchError};
use crate::http::shared_client;
use crate::http::Secret;
pub(crate) use crate::http::{client_builder, describe};

/// Per-call deadline used when none is configured.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Search API answers are a few hundred KB at most; anything bigger is not one.
const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;
/// How much of an error body is kept for the error message.
const ERROR_BODY_BYTES: usize = 2048;
const ERROR_BODY_CHARS: usize = 500;

/// Where one provider lives and how to authenticate to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Overrides the provider's public endpoint (a proxy, a test server). Required for
    /// SearXNG, which has no public default.
    pub base_url: Option<String>,
    /// Credential; unused by SearXNG.
    pub api_key: Option<Secret>,
}

impl ProviderOptions {
    /// Reads `url_var` and `key_var` through `lookup`; empty values count as unset.
    pub fn from_lookup(
        url_var: &str,
        key_var: Option<&str>,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        ProviderOptions {
            base_url: get(url_var).map(|v| v.trim().to_string()),
            api_key: key_var.and_then(get).map(Secret::new),
        }
    }

    /// Each field from `self` when set, else from `fallback`.
    pub fn or(self, fallback: ProviderOptions) -> ProviderOptions {
        ProviderOptions {
            base_url: self.base_url.or(fallback.base_url),
            api_key: self.api_key.or(fallback.api_key),
        }
    }

    /// The configured key, or `MissingConfig` naming the variable that would provide it.
    pub(crate) fn require_key(&self, var: &'static str) -> Result<Secret, SearchError> {
        self.api_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or(SearchError::MissingConfig(var))
    }

    /// `base_url` (or `default`) joined with `path`, validated as an http(s) URL.
    pub(crate) fn endpoint(
        &self,
        default: Option<&str>,
        path: &str,
        var: &'static str,
    ) -> Result<Url, SearchError> {
        let base = self
            .base_url
            .as_deref()
            .or(default)
            .ok_or(SearchError::MissingConfig(var))?;
        let joined = format!("{}{path}", base.trim_end_matches('/'));
        let url = Url::parse(&joined).map_err(|e| SearchError::InvalidConfig {
            name: var,
            reason: format!("{base:?} is not a URL: {e}"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SearchError::InvalidConfig {
                name: var,
                reason: format!("{base:?} is not an http(s) URL"),
            });
        }
        Ok(url)
    }
}

/// What every HTTP engine shares: the client (one connection pool for all engines)
/// and the per-call deadline.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Client whose connection pool the engines share.
    pub client: reqwest::Client,
    /// Deadline of one search call, from sending to the decoded body.
    pub timeout: Duration,
}

impl HttpSettings {
    /// Settings using the process-wide [`shared_client`].
    pub fn new(timeout: Duration) -> Result<Self, SearchError> {
        Ok(HttpSettings {
            client: shared_client()?,
            timeout,
        })
    }
}

/// One search call against a provider's JSON API, the part every HTTP engine
/// shares: nothing is built or sent when `limit` is 0; otherwise the request
/// `build` makes with the shared client is sent and its answer decoded as `R`
/// (see [`send_json`]), and the first `limit` of the hits `hits` takes out of it
/// become documents through `document(rank, hit)`, ranks counting from 0.
pub(crate) async fn search_json<R, H>(
    http: &HttpSettings,
    limit: usize,
    build: impl FnOnce(&reqwest::Client) -> RequestBuilder,
    hits: impl FnOnce(R) -> Vec<H>,
    mut document: impl FnMut(usize, H) -> Document,
) -> Result<Vec<Document>, SearchError>
where
    R: DeserializeOwned,
{
    if limit == 0 {
        return Ok(Vec::new());
    }
    let response: R = send_json(build(&http.client), http.timeout).await?;
    Ok(hits(response)
        .into_iter()
        .take(limit)
        .enumerate()
        .map(|(rank, hit)| document(rank, hit))
        .collect())
}

/// Sends `request` and decodes a JSON body, all within `timeout`.
pub(crate) async fn send_json<T: DeserializeOwned>(
    request: RequestBuilder,
    timeout: Duration,
) -> Result<T, SearchError> {
    let call = async {
        let mut response = request.send().await.map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            let (body, _) = read_capped(&mut response, ERROR_BODY_BYTES)
                .await
                .unwrap_or_default();
            return Err(SearchError::Status {
                status: status.as_u16(),
                body: clip(&String::from_utf8_lossy(&body), ERROR_BODY_CHARS),
            });
        }
        let (body, truncated) = read_capped(&mut response, MAX_RESPONSE_BYTES)
            .await
            .map_err(request_error)?;
        if truncated {
            return Err(SearchError::Malformed(format!(
                "response larger than {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            SearchError::Malformed(format!(
                "{e}; body starts {:?}",
                clip(&String::from_utf8_lossy(&body), 120)
            ))
        })
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| SearchError::Timeout(timeout))?
}

/// Reads the body chunk by chunk, stopping after `cap` bytes; the flag says whether
/// anything was left unread. Streaming keeps a hostile or broken server from making
/// us buffer an unbounded body.
pub(crate) async fn read_capped(
    response: &mut Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, true));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, false))
}

/// Serde helper: `null` becomes the default value. Providers send `null` for text
/// they lack as often as they omit the field, and neither should fail a search.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + serde::Deserialize<'de>,
{
    use serde::Deserialize;
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Score for providers that only give an order: 1, 1/2, 1/3, ...
pub(crate) fn rank_score(rank: usize) -> f64 {
    1.0 / (rank as f64 + 1.0)
}

fn request_error(error: reqwest::Error) -> SearchError {
    SearchError::Http(describe(&error))
}

/// The first `max` characters of `text`, marked when cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_redacted_and_trimmed() {
        let key = Secret::new(" secret\n");
        assert_eq!(key.expose(), "secret");
        let opts = ProviderOptions {
            base_url: None,
            api_key: Some(key),
        };
        assert!(!format!("{opts:?}").contains("secret"));
    }

    #[test]
    fn endpoints_join_and_validate() {
        let opts = ProviderOptions {
            base_url: Some("http://127.0.0.1:9/proxy/".into()),
            api_key: None,
        };
        let url = opts.endpoint(None, "/search", "X_URL").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9/proxy/search");
        let missing = ProviderOptions::default().endpoint(None, "/s", "X_URL");
        assert!(matches!(missing, Err(SearchError::MissingConfig("X_URL"))));
        let bad = ProviderOptions {
            base_url: Some("ftp://host".into()),
            api_key: None,
        };
        assert!(matches!(
            bad.endpoint(None, "/s", "X_URL"),
            Err(SearchError::InvalidConfig { name: "X_URL", .. })
        ));
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(rank_score(0), 1.0);
    }
}
