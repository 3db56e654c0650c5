//! `PageReader`: fetch a URL a search hit pointed to and extract its text, without
//! letting that URL reach the machine's own network.
//!
//! URLs come from search results and ultimately from model output, so they are
//! untrusted. Every hop (the first request and each redirect) is checked: only
//! http/https, IP literals against the [`AddressPolicy`], and host names through a
//! resolver that only ever hands the connector addresses that passed the policy.
//! Redirects are followed by hand for that reason; bodies are streamed and cut at a
//! byte cap; the whole fetch, redirects included, runs under one deadline.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use reqwest::Url;

use super::html;
use super::http::{client_builder, describe, read_capped};
use super::ssrf::{AddressPolicy, BlockedAddress, GuardedResolver};

/// Why a page could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The URL (or a redirect's `Location`) does not parse or has no host.
    #[error("invalid URL {url:?}: {reason}")]
    InvalidUrl {
        /// The offending text.
        url: String,
        /// Parser's complaint.
        reason: String,
    },
    /// Not http or https.
    #[error("unsupported URL scheme {0:?}: only http and https are fetched")]
    UnsupportedScheme(String),
    /// The SSRF guard refused the address.
    #[error(transparent)]
    Blocked(#[from] BlockedAddress),
    /// The redirect chain was longer than `max_redirects`.
    #[error("more than {0} redirects")]
    TooManyRedirects(usize),
    /// Connecting, TLS or reading failed.
    #[error("request failed: {0}")]
    Http(String),
    /// A non-success, non-redirect status.
    #[error("page answered HTTP {0}")]
    Status(u16),
    /// The whole fetch took longer than `timeout`.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A type that has no text to extract (images, PDFs, archives, ...).
    #[error("unsupported content type {0:?}")]
    UnsupportedContentType(String),
    /// The HTTP client could not be set up (e.g. no CA certificates on the system).
    #[error("building HTTP client: {0}")]
    Client(String),
}

/// Limits and address policy of a [`PageReader`].
#[derive(Debug, Clone)]
pub struct ReaderOptions {
    /// Allow loopback, private, link-local and CGNAT addresses (an intranet
    /// deployment). Metadata endpoints stay refused unless listed in `allowed_addrs`.
    pub allow_private: bool,
    /// Individual addresses allowed whatever their class.
    pub allowed_addrs: Vec<IpAddr>,
    /// Deadline for the whole fetch, redirects included.
    pub timeout: Duration,
    /// Bytes of body read at most; the rest is dropped and `truncated` set.
    pub max_bytes: usize,
    /// Redirects followed at most.
    pub max_redirects: usize,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            allow_private: false,
            allowed_addrs: Vec::new(),
            timeout: Duration::from_secs(15),
            max_bytes: 2 * 1024 * 1024,
            max_redirects: 5,
        }
    }
}

/// Text of a fetched page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageText {
    /// Final URL, after redirects.
    pub url: String,
    /// `<title>` of an HTML page.
    pub title: Option<String>,
    /// Visible text (see [`html::extract`]) or the body of a plain-text page.
    pub text: String,
    /// The body was longer than `max_bytes` and was cut.
    pub truncated: bool,
}

/// Fetches pages and extracts their text behind an SSRF guard.
#[derive(Debug, Clone)]
pub struct PageReader {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    opts: ReaderOptions,
}

impl PageReader {
    /// A reader with its own client: it needs the guarded resolver, no automatic
    /// redirects and no proxy (a proxy would resolve names where we cannot check them).
    pub fn new(opts: ReaderOptions) -> Result<Self, ReaderError> {
        let policy = Arc::new(AddressPolicy {
            allow_private: opts.allow_private,
            allowed: opts.allowed_addrs.clone(),
        });
        let client = client_builder()
            .map_err(|e| ReaderError::Client(e.to_string()))?
            .dns_resolver(GuardedResolver::new(Arc::clone(&policy)))
            .redirect(Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| ReaderError::Client(describe(&e)))?;
        Ok(PageReader {
            client,
            policy,
            opts,
        })
    }

    /// Fetches `url` and returns its text.
    pub async fn fetch(&self, url: &str) -> Result<PageText, ReaderError> {
        let deadline = self.opts.timeout;
        tokio::time::timeout(deadline, self.fetch_within_deadline(url))
            .await
            .map_err(|_| ReaderError::Timeout(deadline))?
    }

    async fn fetch_within_deadline(&self, url: &str) -> Result<PageText, ReaderError> {
        let mut url = Url::parse(url).map_err(|e| ReaderError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        for _ in 0..=self.opts.max_redirects {
            self.check(&url)?;
            let mut response = self
                .client
                .get(url.clone())
                .header(
                    ACCEPT,
                    "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.1",
                )
                .send()
                .await
                .map_err(fetch_error)?;
            let status = response.status();
            if status.is_redirection() {
                if let Some(location) = response.headers().get(LOCATION) {
                    let location = location.to_str().unwrap_or_default();
                    url = url.join(location).map_err(|e| ReaderError::InvalidUrl {
                        url: location.to_string(),
                        reason: e.to_string(),
                    })?;
                    continue;
                }
            }
            if !status.is_success() {
                return Err(ReaderError::Status(status.as_u16()));
            }
            let content_type = response
                .headers()
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(|v| {
                    v.split(';')
                        .next()
                        .unwrap_or("")
                        .trim()
                        .to_ascii_lowercase()
                });
            let kind = classify_content(content_type.as_deref())?;
            let (body, truncated) = read_capped(&mut response, self.opts.max_bytes)
                .await
                .map_err(fetch_error)?;
            let body = String::from_utf8_lossy(&body);
            let is_html = match kind {
                Content::Html => true,
                Content::Text => false,
                Content::Unknown => body.trim_start().starts_with('<'),
            };
            let (title, text) = if is_html {
                let page = html::extract(&body);
                (page.title, page.text)
            } else {
                (None, body.trim().to_string())
            };
            return Ok(PageText {
                url: url.to_string(),
                title,
                text,
                truncated,
            });
        }
        Err(ReaderError::TooManyRedirects(self.opts.max_redirects))
    }

    /// Checks what can be checked before connecting. IP literals never reach the
    /// resolver, so they are judged here; names are judged by the resolver.
    fn check(&self, url: &Url) -> Result<(), ReaderError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ReaderError::UnsupportedScheme(url.scheme().to_string()));
        }
        let host = url.host_str().ok_or_else(|| ReaderError::InvalidUrl {
            url: url.to_string(),
            reason: "no host".into(),
        })?;
        // The URL parser already normalised odd IPv4 spellings (`0x7f.1`, `2130706433`)
        // to dotted form, so parsing the host finds every literal.
        if let Ok(ip) = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            self.policy.check(host, ip)?;
        }
        Ok(())
    }
}

enum Content {
    Html,
    Text,
    Unknown,
}

/// Refuses binary types before their body is downloaded.
fn classify_content(content_type: Option<&str>) -> Result<Content, ReaderError> {
    let Some(ct) = content_type.filter(|ct| !ct.is_empty()) else {
        return Ok(Content::Unknown);
    };
    if ct.contains("html") || ct == "application/xml" || ct == "text/xml" {
        Ok(Content::Html)
    } else if ct.starts_with("text/") || ct == "application/json" || ct.ends_with("+json") {
        Ok(Content::Text)
    } else {
        Err(ReaderError::UnsupportedContentType(ct.to_string()))
    }
}

/// Maps a reqwest failure, surfacing a refusal from the guarded resolver as
/// `Blocked` rather than as an opaque connection error.
fn fetch_error(error: reqwest::Error) -> ReaderError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(blocked) = e.downcast_ref::<BlockedAddress>() {
            return ReaderError::Blocked(blocked.clone());
        }
        source = e.source();
    }
    ReaderError::Http(describe(&error))
}
