//! What the crate's outgoing HTTP shares: the one client (rustls on the ring provider,
//! the platform's roots, HTTP/1.1) and [`Secret`], the redacting type of every key and
//! credential-bearing URL.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Idle connections kept per host. Each keeps its read buffer, grown with the answers
/// it carried (about 0.5 MB for large search results), and an unbounded pool kept every
/// connection a burst of concurrent searches had opened (`bench/soak.py`).
pub const POOL_MAX_IDLE_PER_HOST: usize = 8;
/// How long an idle connection is kept for reuse (reqwest's default is 90 s).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// The HTTP client could not be built (TLS setup).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

/// A secret: an API key (search providers, the LLM server, the service's own key) or a
/// URL holding credentials (Redis). `Debug` prints a placeholder so it never reaches logs.
///
/// ```
/// use deepsearch_stream::http::Secret;
/// let key = Secret::from(" sk-secret\n");
/// assert_eq!(key, Secret::new("sk-secret"));
/// assert_eq!(format!("{key:?}"), "Secret(<redacted>)");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key; surrounding whitespace (a stray newline from a secrets file) is
    /// trimmed.
    pub fn new(key: impl Into<String>) -> Self {
        Secret(key.into().trim().to_string())
    }

    /// The key itself, for the one place that must send it (an auth header) or
    /// scrub it from text. Crate-internal so that callers cannot leak it by accident.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the key is empty (after trimming), i.e. no usable credential.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(key: String) -> Self {
        Secret::new(key)
    }
}

impl From<&str> for Secret {
    fn from(key: &str) -> Self {
        Secret::new(key)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The process-wide client (one connection pool) the engines, the page reader's
/// defaults, the proxy and the relaying service share, created on first use.
pub fn shared_client() -> Result<reqwest::Client, ClientError> {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    if let Some(client) = CLIENT.get() {
        return Ok(client.clone());
    }
    let client = client_builder()?
        .build()
        .map_err(|e| ClientError(format!("building HTTP client: {}", describe(&e))))?;
    // A concurrent first call may have won the race; either client is fine.
    Ok(CLIENT.get_or_init(|| client).clone())
}

/// A client builder with rustls on the ring provider and the platform's roots.
///
/// The TLS config is handed over preconfigured rather than installing ring as the
/// process-wide default provider, which would be a surprising side effect for a
/// library embedded in a larger program.
pub(crate) fn client_builder() -> Result<reqwest::ClientBuilder, ClientError> {
    use rustls_platform_verifier::BuilderVerifierExt;

    let tls_err = |e: rustls::Error| ClientError(format!("TLS setup: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_platform_verifier()
        .map_err(tls_err)?
        .with_no_client_auth();
    // reqwest is built without HTTP/2; advertising it would break the handshake.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("deepsearch-stream/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT))
}

/// An error with its whole source chain, since reqwest's top-level message alone
/// ("error sending request") hides the cause.
pub(crate) fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
