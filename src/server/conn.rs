//! The connection layer's bounds (see [`ConnectionLimits`]): the HTTP/1 settings every
//! connection is served with, the cap on open connections and the answer past it, and
//! the request-head checks hyper leaves to the server. The FastAPI face applies the same
//! ones (python/deepsearch_stream/_serve.py).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::header::{CONNECTION, CONTENT_LENGTH, HOST};
use axum::http::{HeaderValue, StatusCode, Version};
use axum::middleware::Next;
use axum::response::Response;
use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::config::ConnectionLimits;
use crate::api::ApiError;

/// Request headers at most; past it, 431.
pub const MAX_HEADERS: usize = 100;
/// Bytes of a request head at most; past it, 431.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// How long a refused connection is read (and dropped) after its answer, so the client
/// reads the answer rather than a reset caused by its own unread bytes.
const LINGER: Duration = Duration::from_secs(2);

/// hyper's HTTP/1 settings under `limits`.
pub fn http1_builder(limits: &ConnectionLimits) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_headers(MAX_HEADERS)
        .max_header_size(MAX_HEAD_BYTES);
    http
}

/// Counts open connections against the cap.
#[derive(Debug)]
pub struct Gate {
    open: Arc<AtomicUsize>,
    max: usize,
}

/// One counted connection; dropping it frees its place.
#[derive(Debug)]
pub struct Admitted(Arc<AtomicUsize>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(max: usize) -> Self {
        Gate {
            open: Arc::default(),
            max,
        }
    }

    /// A place for one more connection, or `None` at the cap.
    pub fn admit(&self) -> Option<Admitted> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Admitted(Arc::clone(&self.open)))
    }

    /// Answers a connection past the cap with [`refusal`] and closes it; in a task of
    /// its own, so the accept loop goes on.
    pub fn refuse(&self, mut tcp: TcpStream) {
        let answer = refusal(self.max);
        tokio::spawn(async move {
            if tcp.write_all(&answer).await.is_err() || tcp.shutdown().await.is_err() {
                return;
            }
            let mut sink = [0u8; 4096];
            let _ = tokio::time::timeout(LINGER, async {
                while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            })
            .await;
        });
    }
}

/// The whole answer to a connection past the cap: the same bytes as the FastAPI face's.
pub fn refusal(max: usize) -> Vec<u8> {
    let error = ApiError::too_many_connections(max);
    let body = error.body();
    let mut out = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// Refuses what hyper reads but RFC 9112 §3.2 makes a 400: an HTTP/1.1 request without
/// exactly one `Host`. Answered as hyper answers a head it cannot parse (and as the
/// FastAPI face does): the status, no body, the connection closed.
pub async fn check_head(req: Request, next: Next) -> Response {
    if req.version() == Version::HTTP_11 && req.headers().get_all(HOST).iter().count() != 1 {
        let mut res = Response::new(Body::empty());
        *res.status_mut() = StatusCode::BAD_REQUEST;
        let headers = res.headers_mut();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_admits_up_to_its_cap_and_frees_places() {
        let gate = Gate::new(2);
        let a = gate.admit().unwrap();
        let _b = gate.admit().unwrap();
        assert!(gate.admit().is_none());
        drop(a);
        assert!(gate.admit().is_some());
    }

    #[test]
    fn the_refusal_is_a_whole_json_503() {
        let text = String::from_utf8(refusal(7)).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("content-length: {}", body.len())));
        assert!(head.contains("connection: close"));
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"]["code"], "too_many_connections");
        assert!(json["error"]["message"].as_str().unwrap().contains('7'));
    }
}
