//! A tiny HTTP/1.1 server for offline tests, standing in for search providers, web
//! pages and OpenAI-compatible LLM servers alike. It binds 127.0.0.1, records every
//! request, and answers through a handler closure ([`TestServer::start`]) or a script
//! of replies ([`TestServer::script`]). Hand-rolled on tokio so tests need no server
//! framework; it speaks just enough HTTP for reqwest (one request per connection,
//! `Connection: close`).
//!
//! A reply body is sent whole with a `Content-Length`, as scripted HTTP chunks
//! (pauses, a connection dropped mid-body, and holding the connection open until the
//! client hangs up, timed, included), or as endless filler.

#![allow(dead_code)] // each test binary uses a different part

pub mod frames;
pub mod hangs;
pub mod openai;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// Query string and body together, for handlers that pick a scenario by a word
    /// in the search query whatever the transport.
    pub fn mentions(&self, word: &str) -> bool {
        self.query.iter().any(|(_, v)| v.contains(word))
            || String::from_utf8_lossy(&self.body).contains(word)
    }
}

/// One thing the server does while sending a [`Body::Chunked`] body.
#[derive(Debug, Clone)]
pub enum Step {
    /// Write these bytes as one HTTP chunk.
    Send(Vec<u8>),
    /// Pause.
    Sleep(Duration),
    /// Close the connection without finishing the body.
    Abort,
    /// Send nothing more and wait (up to 30 s) until the client closes the connection;
    /// the moment it does is recorded ([`TestServer::wait_closed`]).
    HoldUntilClosed,
}

/// How a reply's body goes out.
#[derive(Debug, Clone)]
pub enum Body {
    /// All at once, with a `Content-Length`.
    Fixed(Vec<u8>),
    /// With chunked encoding, step by step (streaming tests).
    Chunked(Vec<Step>),
    /// Filler bytes until the client hangs up, without a length (size-cap tests).
    Endless,
}

/// What the server sends back.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
    /// Wait this long before answering (timeout tests).
    pub delay: Duration,
}

impl Reply {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: Body::Fixed(body.into()),
            delay: Duration::ZERO,
        }
    }

    /// A 200 JSON body.
    pub fn json(value: &serde_json::Value) -> Reply {
        Reply::new(200, "application/json", value.to_string())
    }

    pub fn html(body: &str) -> Reply {
        Reply::new(200, "text/html; charset=utf-8", body)
    }

    pub fn redirect(location: &str) -> Reply {
        let mut reply = Reply::new(302, "text/plain", "moved");
        reply.headers.push(("Location".into(), location.into()));
        reply
    }

    pub fn endless(content_type: &str) -> Reply {
        Reply {
            body: Body::Endless,
            ..Reply::new(200, content_type, Vec::new())
        }
    }

    /// A 200 `text/event-stream` that sends each string as its own chunk.
    pub fn sse<S: AsRef<str>>(chunks: &[S]) -> Reply {
        let chunks: Vec<&[u8]> = chunks.iter().map(|c| c.as_ref().as_bytes()).collect();
        Reply::sse_bytes(&chunks)
    }

    /// [`Reply::sse`] with byte chunks, which may split a UTF-8 character.
    pub fn sse_bytes<B: AsRef<[u8]>>(chunks: &[B]) -> Reply {
        let steps = chunks
            .iter()
            .map(|c| Step::Send(c.as_ref().to_vec()))
            .collect();
        Reply {
            body: Body::Chunked(steps),
            ..Reply::new(200, "text/event-stream", Vec::new())
        }
    }

    /// Appends a step to the body, which from then on is sent chunked.
    pub fn then(mut self, step: Step) -> Reply {
        self.body = match self.body {
            Body::Chunked(mut steps) => {
                steps.push(step);
                Body::Chunked(steps)
            }
            Body::Fixed(bytes) => Body::Chunked(vec![Step::Send(bytes), step]),
            Body::Endless => panic!("nothing can follow an endless body"),
        };
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// A running server; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    closed: Arc<Mutex<Vec<Instant>>>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Answers every request with what `handler` makes of it.
    pub async fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let recorded = Arc::clone(&requests);
        let closed_at = Arc::clone(&closed);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = Arc::clone(&handler);
                let recorded = Arc::clone(&recorded);
                let closed_at = Arc::clone(&closed_at);
                tokio::spawn(async move {
                    // Errors only mean the client went away (e.g. after its timeout).
                    let _ = serve(stream, handler, recorded, closed_at).await;
                });
            }
        });
        TestServer {
            addr,
            requests,
            closed,
            task,
        }
    }

    /// Answers the requests with `replies` in order; the last one repeats.
    pub async fn script(replies: Vec<Reply>) -> TestServer {
        assert!(!replies.is_empty(), "a script needs at least one reply");
        let next = AtomicUsize::new(0);
        TestServer::start(move |_: &Request| {
            let n = next.fetch_add(1, Ordering::SeqCst);
            replies[n.min(replies.len() - 1)].clone()
        })
        .await
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// When the client closed each connection held by [`Step::HoldUntilClosed`], so far.
    pub fn closed(&self) -> Vec<Instant> {
        self.closed.lock().unwrap().clone()
    }

    /// The first time a client closed a connection held by [`Step::HoldUntilClosed`],
    /// waiting up to `limit` for it. The instant is taken by the server as it sees the
    /// close, so how often this looks does not matter.
    pub async fn wait_closed(&self, limit: Duration) -> Option<Instant> {
        let give_up = Instant::now() + limit;
        loop {
            if let Some(at) = self.closed().first() {
                return Some(*at);
            }
            if Instant::now() >= give_up {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The only request received; panics otherwise.
    pub fn single_request(&self) -> Request {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:?}");
        requests.into_iter().next().unwrap()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut stream: TcpStream,
    handler: Arc<Handler>,
    recorded: Arc<Mutex<Vec<Request>>>,
    closed: Arc<Mutex<Vec<Instant>>>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    let reply = handler(&request);
    recorded.lock().unwrap().push(request);

    tokio::time::sleep(reply.delay).await;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status)
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match &reply.body {
        Body::Fixed(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
        Body::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
        Body::Endless => {}
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    match reply.body {
        Body::Fixed(bytes) => stream.write_all(&bytes).await?,
        Body::Chunked(steps) => {
            for step in steps {
                match step {
                    Step::Send(bytes) => {
                        let chunk_head = format!("{:x}\r\n", bytes.len());
                        stream.write_all(chunk_head.as_bytes()).await?;
                        stream.write_all(&bytes).await?;
                        stream.write_all(b"\r\n").await?;
                    }
                    Step::Sleep(pause) => tokio::time::sleep(pause).await,
                    Step::Abort => return Ok(()),
                    Step::HoldUntilClosed => {
                        stream.flush().await?;
                        let mut scratch = [0u8; 512];
                        let wait = async {
                            // Ok(0) is the client's FIN, Err its reset: either way, gone.
                            while matches!(stream.read(&mut scratch).await, Ok(n) if n > 0) {}
                        };
                        if tokio::time::timeout(Duration::from_secs(30), wait)
                            .await
                            .is_ok()
                        {
                            closed.lock().unwrap().push(Instant::now());
                        }
                        return Ok(());
                    }
                }
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        Body::Endless => {
            // Bounded so a broken client cannot make the test run forever.
            let filler =
                b"<p>filler filler filler filler filler filler filler filler</p>\n".repeat(256);
            for _ in 0..4096 {
                stream.write_all(&filler).await?;
            }
        }
    }
    stream.shutdown().await
}

/// Reads one request; `None` when the client went away first or sent a head
/// too large to be one.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        if buf.len() > 64 * 1024 {
            return Ok(None);
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let target = request_line.next().unwrap_or("/").to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let content_length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < content_length {
        let mut chunk = vec![0u8; content_length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let url = Url::parse(&format!("http://test{target}")).expect("request target");
    Ok(Some(Request {
        method,
        path: url.path().to_string(),
        query: url.query_pairs().into_owned().collect(),
        headers,
        body,
    }))
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        _ => "Status",
    }
}
