//! Just enough HTTP/1.1 for loopback benchmarks: one request per connection, a response
//! head, then the body decoded incrementally (see `sse::Body`). No TLS, no proxies.

use std::io;
use std::time::Duration;

use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::sse::Body;

/// `http://host:port` → `host:port`.
pub fn authority(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// URLs are supported, got {url:?}"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok(authority.to_string())
}

pub fn post_request(authority: &str, path: &str, json: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\n\
         Accept: text/event-stream\r\nContent-Length: {}\r\n\r\n{json}",
        json.len()
    )
    .into_bytes()
}

pub fn get_request(authority: &str, path_and_query: &str) -> Vec<u8> {
    format!("GET {path_and_query} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

/// A response whose head has been read: the rest of the body comes through `read_body`.
#[derive(Debug)]
pub struct Response {
    pub stream: TcpStream,
    pub status: u16,
    pub body: Body,
    /// Body bytes that arrived with the head.
    pub leftover: Vec<u8>,
}

/// Connects, sends `request`, reads the response head.
pub async fn send(authority: &str, request: &[u8]) -> io::Result<Response> {
    let mut stream = TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    stream.write_all(request).await?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the response head",
            ));
        }
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(i) = memmem::find(&head[from..], b"\r\n\r\n") {
            break from + i + 4;
        }
        if head.len() > 64 * 1024 {
            return Err(io::Error::other("response head larger than 64 KiB"));
        }
    };
    let leftover = head.split_off(end);
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other("malformed status line"))?;
    let mut body = Body::UntilEof;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            body = Body::chunked();
        } else if name.eq_ignore_ascii_case("content-length") && !matches!(body, Body::Chunked(_)) {
            body = Body::Length(value.parse().map_err(io::Error::other)?);
        }
    }
    Ok(Response {
        stream,
        status,
        body,
        leftover,
    })
}

/// GET with `Connection: close`: the status and the whole body.
pub async fn get(
    authority: &str,
    path_and_query: &str,
    limit: Duration,
) -> io::Result<(u16, Vec<u8>)> {
    let work = async {
        let mut r = send(authority, &get_request(authority, path_and_query)).await?;
        let mut body = Vec::new();
        let mut done = r
            .body
            .feed(&r.leftover, &mut |b| body.extend_from_slice(b))
            .map_err(io::Error::other)?;
        let mut buf = [0u8; 4096];
        while !done {
            let n = r.stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            done = r
                .body
                .feed(&buf[..n], &mut |b| body.extend_from_slice(b))
                .map_err(io::Error::other)?;
        }
        Ok((r.status, body))
    };
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "GET timed out"))?
}
