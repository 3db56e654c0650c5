//! The streaming proxy: relays a deepsearch service's SSE answer as our own [`EventStream`].
//!
//! It replaces the seed's `MultiAgentServiceImpl`, which read the upstream body line by
//! line (so an event split over two `data:` lines, a CR line ending or a chunk boundary
//! inside a UTF-8 character broke it), passed upstream heartbeats on, answered every
//! failure with a bare `completeWithError` the client could not tell apart, and kept
//! reading the upstream after its client had gone. Here:
//!
//! - the body goes through the incremental SSE decoder ([`crate::sse::decode_stream_with`]),
//!   so events survive any chunking and line ending, and its limits bound memory;
//! - each upstream event's `data` becomes one of our events (our ids, our heartbeats,
//!   backpressure that waits rather than drops); upstream heartbeats (`data: heartbeat`
//!   and comment lines) are not relayed, and upstream `[DONE]` completes our stream;
//! - every failure ends the stream with an `error` message whose `code` says what went
//!   wrong (see [`code`]), then `[DONE]`;
//! - when the consumer goes away the relay task is aborted, which drops the upstream
//!   response and closes its connection at once.
//!
//! Event names, ids and `retry` of the upstream are not relayed: the ids would clash
//! with ours, and the seed's clients only read `data`.

use std::pin::pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT, CONTENT_TYPE};
use reqwest::{Client, Request, Response, Url};
use tokio::time::{timeout, timeout_at, Instant};

use crate::http::{describe, shared_client};
use crate::search::http::clip;
use crate::sse::{decode_stream_with, Decoder, StreamDecodeError};
use crate::stream::{EventStream, Failure, Sender, StreamConfig, StreamError};

/// The `code` of the `error` message a failed relay ends with.
///
/// ```
/// use deepsearch_stream::proxy::{self, code, ProxyOptions};
/// use futures::StreamExt;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // A port nobody listens on.
/// let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
/// let url = format!("http://127.0.0.1:{port}/v1/deepsearch");
/// let stream = proxy::spawn("req-1", &url, "{}", ProxyOptions::default(), Default::default()).unwrap();
/// let wire: Vec<u8> = stream.flat_map(|c| futures::stream::iter(c.to_vec())).collect().await;
/// let wire = String::from_utf8(wire).unwrap();
/// assert!(wire.contains(&format!(r#""code": "{}""#, code::UNREACHABLE)), "{wire}");
/// assert!(wire.ends_with("data: [DONE]\n\n"));
/// # }
/// ```
pub mod code {
    /// The upstream could not be reached: connection refused, DNS or TLS failure, or the
    /// connection closed before a response head.
    pub const UNREACHABLE: &str = "upstream_unreachable";
    /// The upstream answered with a non-2xx status; the message holds the status and
    /// the start of its body.
    pub const STATUS: &str = "upstream_status";
    /// The upstream's answer is not a well-formed event stream: wrong content type, or a
    /// line or event over the decoder's limits.
    pub const PROTOCOL: &str = "upstream_protocol";
    /// The upstream stream ended (closed, reset) without `[DONE]`.
    pub const TRUNCATED: &str = "upstream_truncated";
    /// The upstream was too slow: no response head within `connect_timeout`, silence for
    /// `idle_timeout`, or no `[DONE]` within `timeout`.
    pub const TIMEOUT: &str = "upstream_timeout";
}

/// How much of a non-2xx body is read, how long for at most, and how much of it ends up
/// in the message.
const ERROR_BODY_BYTES: usize = 2048;
const ERROR_BODY_WAIT: Duration = Duration::from_secs(2);
const ERROR_BODY_CHARS: usize = 300;

/// Headers the HTTP client manages itself; setting them by hand would corrupt framing.
const MANAGED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

/// Why a relay could not be set up. Failures after setup are not errors of this kind:
/// they reach the client as the stream's `error` message (see [`code`]).
///
/// ```
/// use deepsearch_stream::proxy::{self, ProxyError, ProxyOptions};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let options = ProxyOptions::default();
/// let err = proxy::spawn("r", "ftp://host/x", "{}", options, Default::default()).unwrap_err();
/// assert!(matches!(err, ProxyError::UnsupportedScheme(scheme) if scheme == "ftp"));
/// # }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    #[error("invalid upstream URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("upstream URL scheme must be http or https, got {0:?}")]
    UnsupportedScheme(String),
    #[error("invalid header {name:?}: {reason}")]
    InvalidHeader { name: String, reason: String },
    #[error("invalid proxy option: {0}")]
    InvalidOption(String),
    #[error("HTTP client: {0}")]
    Client(String),
    #[error("no tokio runtime: the relay must be spawned from within one")]
    NoRuntime,
    #[error(transparent)]
    Stream(#[from] StreamError),
}

/// Options of one relay besides its URL and body. `Default` gives the shared client,
/// a 10 s connect timeout, a 60 s idle timeout, no total timeout of its own (the
/// [`StreamConfig::timeout`] of the stream still applies) and the decoder's default limits.
///
/// ```
/// use std::time::Duration;
/// use deepsearch_stream::proxy::ProxyOptions;
///
/// let options = ProxyOptions {
///     headers: vec![("Authorization".into(), "Bearer token".into())],
///     idle_timeout: Some(Duration::from_secs(30)),
///     ..ProxyOptions::default()
/// };
/// assert_eq!(options.connect_timeout, Some(Duration::from_secs(10)));
/// ```
#[derive(Debug, Clone)]
pub struct ProxyOptions {
    /// Extra request headers, e.g. `Authorization` or `Last-Event-ID`. They replace the
    /// defaults `Content-Type: application/json` and `Accept: text/event-stream` when
    /// they name the same header; hop-by-hop headers (`Host`, `Content-Length`, ...) are
    /// refused.
    pub headers: Vec<(String, String)>,
    /// The client to send with; `None` means [`shared_client`] (one pool per process).
    pub client: Option<Client>,
    /// Deadline for connecting and receiving the response head.
    pub connect_timeout: Option<Duration>,
    /// Longest silence (no bytes at all, comments and heartbeats included) tolerated
    /// while waiting for the upstream. Time spent waiting for our own consumer does not
    /// count.
    pub idle_timeout: Option<Duration>,
    /// Deadline for the whole relay, from sending the request to the upstream `[DONE]`.
    pub timeout: Option<Duration>,
    /// Longest upstream line, in bytes.
    pub max_line_bytes: usize,
    /// Largest `data` of one upstream event, in bytes.
    pub max_event_bytes: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            headers: Vec::new(),
            client: None,
            connect_timeout: Some(Duration::from_secs(10)),
            idle_timeout: Some(Duration::from_secs(60)),
            timeout: None,
            max_line_bytes: Decoder::DEFAULT_MAX_LINE_BYTES,
            max_event_bytes: Decoder::DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// Sends `body` as a POST to `url` and relays the upstream's SSE answer as a new
/// [`EventStream`] (spawned on the current tokio runtime).
///
/// The request carries `Content-Type: application/json` and `Accept: text/event-stream`
/// unless `options.headers` says otherwise. It is sent when the relay task first runs;
/// everything that can be checked before (URL, headers, options, `config`) is, and
/// fails with a [`ProxyError`]. Everything after ends the stream with an `error`
/// message (see [`code`]) and `[DONE]`.
///
/// ```no_run
/// use deepsearch_stream::proxy::{self, ProxyOptions};
/// use deepsearch_stream::stream::StreamConfig;
/// use futures::StreamExt;
///
/// # #[tokio::main] async fn main() -> Result<(), proxy::ProxyError> {
/// let options = ProxyOptions {
///     headers: vec![("Last-Event-ID".into(), "41".into())],
///     ..ProxyOptions::default()
/// };
/// let body = br#"{"query": "rust sse", "requestId": "req-1"}"#.to_vec();
/// let mut stream = proxy::spawn(
///     "req-1",
///     "http://127.0.0.1:8000/v1/deepsearch",
///     body,
///     options,
///     StreamConfig::default(),
/// )?;
/// while let Some(chunk) = stream.next().await {
///     // Whole SSE frames (`id: n` + `data: ...`), heartbeats, `data: [DONE]` last.
///     print!("{}", String::from_utf8_lossy(&chunk));
/// }
/// # Ok(()) }
/// ```
pub fn spawn(
    request_id: &str,
    url: &str,
    body: impl Into<Bytes>,
    options: ProxyOptions,
    config: StreamConfig,
) -> Result<EventStream, ProxyError> {
    config.validate()?;
    let upstream = Upstream::prepare(url, body.into(), options)?;
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(ProxyError::NoRuntime);
    }
    Ok(EventStream::spawn(request_id, config, move |tx| {
        upstream.relay(tx)
    })?)
}

/// Everything the relay task needs, checked and built before it is spawned.
struct Upstream {
    client: Client,
    request: Request,
    connect_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    timeout: Option<Duration>,
    decoder: Decoder,
}

impl Upstream {
    fn prepare(url: &str, body: Bytes, options: ProxyOptions) -> Result<Upstream, ProxyError> {
        let parsed = Url::parse(url).map_err(|e| ProxyError::InvalidUrl {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ProxyError::UnsupportedScheme(parsed.scheme().to_string()));
        }
        for (name, value) in [
            ("connect_timeout", options.connect_timeout),
            ("idle_timeout", options.idle_timeout),
            ("timeout", options.timeout),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(ProxyError::InvalidOption(format!(
                    "{name} must be positive (or None)"
                )));
            }
        }
        if options.max_line_bytes == 0 || options.max_event_bytes == 0 {
            return Err(ProxyError::InvalidOption(
                "max_line_bytes and max_event_bytes must be at least 1".into(),
            ));
        }
        let headers = request_headers(&options.headers)?;
        let client = match options.client {
            Some(client) => client,
            None => shared_client().map_err(|e| ProxyError::Client(e.to_string()))?,
        };
        let request = client
            .post(parsed)
            .headers(headers)
            .body(body)
            .build()
            .map_err(|e| ProxyError::Client(describe(&e)))?;
        Ok(Upstream {
            client,
            request,
            connect_timeout: options.connect_timeout,
            idle_timeout: options.idle_timeout,
            timeout: options.timeout,
            decoder: Decoder::with_limits(options.max_line_bytes, options.max_event_bytes),
        })
    }

    async fn relay(self, tx: Sender) -> Result<(), Failure> {
        let url = self.request.url().clone();
        let result = match self.timeout {
            Some(limit) => {
                let deadline = Instant::now() + limit;
                timeout_at(deadline, self.run(&tx))
                    .await
                    .unwrap_or_else(|_| {
                        Err(Failure::new(
                            format!("upstream did not finish within {}", seconds(limit)),
                            code::TIMEOUT,
                        ))
                    })
            }
            None => self.run(&tx).await,
        };
        if let Err(failure) = &result {
            tracing::debug!(%url, code = %failure.code, message = %failure.message, "proxy relay failed");
        }
        result
    }

    async fn run(self, tx: &Sender) -> Result<(), Failure> {
        let response = open(&self.client, self.request, self.connect_timeout).await?;
        let body = idle_limited(response.bytes_stream(), self.idle_timeout);
        let mut events = pin!(decode_stream_with(self.decoder, body));
        while let Some(item) = events.next().await {
            let event = match item {
                Ok(event) => event,
                Err(StreamDecodeError::Decode(e)) => {
                    return Err(Failure::new(
                        format!("upstream sent a malformed event stream: {e}"),
                        code::PROTOCOL,
                    ))
                }
                Err(StreamDecodeError::Transport(BodyError::Idle(limit))) => {
                    return Err(Failure::new(
                        format!("upstream sent nothing for {}", seconds(limit)),
                        code::TIMEOUT,
                    ))
                }
                Err(StreamDecodeError::Transport(BodyError::Http(e))) => {
                    return Err(Failure::new(
                        format!(
                            "upstream connection failed mid-stream: {}",
                            describe(&e.without_url())
                        ),
                        code::TRUNCATED,
                    ))
                }
            };
            match event.data.trim() {
                "[DONE]" => return Ok(()),
                // Our stream makes its own heartbeats, timed by its own consumer.
                "heartbeat" => continue,
                _ => {
                    tx.send_encoded(tx.encode_data(&event.data)).await?;
                }
            }
        }
        Err(Failure::new(
            "upstream closed the stream without [DONE]",
            code::TRUNCATED,
        ))
    }
}

/// Sends the request and checks the response head: a 2xx `text/event-stream`, or a
/// failure naming what came instead.
async fn open(
    client: &Client,
    request: Request,
    connect_timeout: Option<Duration>,
) -> Result<Response, Failure> {
    let sent = match connect_timeout {
        Some(limit) => timeout(limit, client.execute(request)).await.map_err(|_| {
            Failure::new(
                format!("no response from upstream within {}", seconds(limit)),
                code::TIMEOUT,
            )
        })?,
        None => client.execute(request).await,
    };
    // The URL is the operator's, not the client's business: keep it out of the message.
    let mut response = sent.map_err(|e| {
        let kind = if e.is_timeout() {
            code::TIMEOUT
        } else {
            code::UNREACHABLE
        };
        Failure::new(
            format!("cannot reach upstream: {}", describe(&e.without_url())),
            kind,
        )
    })?;
    let status = response.status();
    if !status.is_success() {
        let body = error_body(&mut response).await;
        // Cut at the byte cap, the body may end inside a character: drop that one.
        let whole = match std::str::from_utf8(&body) {
            Err(e) if e.error_len().is_none() => &body[..e.valid_up_to()],
            _ => &body[..],
        };
        let snippet = clip(String::from_utf8_lossy(whole).trim(), ERROR_BODY_CHARS);
        let message = if snippet.is_empty() {
            format!("upstream answered {status}")
        } else {
            format!("upstream answered {status}: {snippet}")
        };
        return Err(Failure::new(message, code::STATUS));
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let is_sse = content_type.as_deref().is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("text/event-stream")
    });
    if !is_sse {
        let found = content_type.map_or_else(|| "none".to_string(), |v| format!("{v:?}"));
        return Err(Failure::new(
            format!("upstream answered {status} with content type {found}, not text/event-stream"),
            code::PROTOCOL,
        ));
    }
    Ok(response)
}

/// The start of an error body: what arrives before it ends, fails, passes
/// [`ERROR_BODY_BYTES`] or [`ERROR_BODY_WAIT`], whichever comes first.
async fn error_body(response: &mut Response) -> Vec<u8> {
    let mut body = Vec::new();
    let give_up = Instant::now() + ERROR_BODY_WAIT;
    while body.len() < ERROR_BODY_BYTES {
        match timeout_at(give_up, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let room = ERROR_BODY_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    body
}

/// An error item of the upstream body: the transport's, or silence for too long.
#[derive(Debug)]
enum BodyError {
    Http(reqwest::Error),
    Idle(Duration),
}

/// The body's chunks, with silence longer than `idle` turned into an error item. The
/// timer runs only while the decoder waits for bytes, never while we wait for our
/// consumer.
fn idle_limited(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    idle: Option<Duration>,
) -> impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static {
    futures::stream::unfold(Box::pin(body), move |mut body| async move {
        let next = match idle {
            Some(limit) => match timeout(limit, body.next()).await {
                Ok(next) => next.map(|r| r.map_err(BodyError::Http)),
                Err(_) => Some(Err(BodyError::Idle(limit))),
            },
            None => body.next().await.map(|r| r.map_err(BodyError::Http)),
        };
        next.map(|item| (item, body))
    })
}

fn request_headers(extra: &[(String, String)]) -> Result<HeaderMap, ProxyError> {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static("text/event-stream"));
    let invalid = |name: &str, reason: String| ProxyError::InvalidHeader {
        name: name.to_string(),
        reason,
    };
    // Extra headers replace a default of the same name, but repeat among themselves.
    let mut replaced: Vec<HeaderName> = Vec::new();
    for (name, value) in extra {
        let header =
            HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(name, e.to_string()))?;
        if MANAGED_HEADERS.contains(&header.as_str()) {
            return Err(invalid(name, "set by the HTTP client itself".into()));
        }
        let value = HeaderValue::from_str(value).map_err(|e| invalid(name, e.to_string()))?;
        if !replaced.contains(&header) {
            headers.remove(&header);
            replaced.push(header.clone());
        }
        headers.append(header, value);
    }
    Ok(headers)
}

fn seconds(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_headers_replace_defaults_and_repeat() {
        let h = request_headers(&[
            ("accept".into(), "application/x-ndjson".into()),
            ("X-Tag".into(), "a".into()),
            ("x-tag".into(), "b".into()),
        ])
        .unwrap();
        assert_eq!(h[ACCEPT], "application/x-ndjson");
        assert_eq!(h[CONTENT_TYPE], "application/json");
        let tags: Vec<_> = h.get_all("x-tag").iter().collect();
        assert_eq!(tags, ["a", "b"]);
    }

    #[test]
    fn managed_and_malformed_headers_are_refused() {
        for (name, value) in [("Content-Length", "3"), ("bad name", "x"), ("X-Ok", "a\nb")] {
            let err = request_headers(&[(name.into(), value.into())]).unwrap_err();
            assert!(
                matches!(err, ProxyError::InvalidHeader { .. }),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn durations_read_as_seconds() {
        assert_eq!(seconds(Duration::from_millis(250)), "0.25 s");
        assert_eq!(seconds(Duration::from_secs(60)), "60 s");
    }
}
