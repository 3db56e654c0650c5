//! The axum server over loopback: headers and frames of streams, JSON replies, every
//! refusal's status and exact body, the genie-tool route, health, metrics, 404/405,
//! cancellation when the client leaves, and graceful shutdown.
#![cfg(feature = "server")]

mod support;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use deepsearch_stream::api::{Limits, Service};
use deepsearch_stream::replay::{MemoryStore, ReplayConfig};
use deepsearch_stream::search::EngineConfig;
use deepsearch_stream::server::{App, ServerConfig};
use deepsearch_stream::sse::decode_all;
use deepsearch_stream::stream::StreamConfig;
use futures::StreamExt;
use serde_json::Value;
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use support::frames::events;
use support::hangs::Hangs;

/// A server running on a loopback port, stopped by `stop`.
struct Running {
    base: String,
    app: App,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start(app: App, shutdown_timeout: Duration) -> Running {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(app.clone().serve(
            listener,
            async move {
                let _ = rx.await;
            },
            shutdown_timeout,
        ));
        Running {
            base,
            app,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn post(&self, path: &str, body: &str) -> reqwest::Response {
        client()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap()
    }

    /// Stops the server; `Ok(elapsed)` when its future finished within `within`.
    async fn stop(mut self, within: Duration) -> Result<Duration, ()> {
        let started = Instant::now();
        let _ = self.stop.take().unwrap().send(());
        match tokio::time::timeout(within, &mut self.task).await {
            Ok(result) => {
                result.unwrap().unwrap();
                Ok(started.elapsed())
            }
            Err(_) => Err(()),
        }
    }
}

fn client() -> reqwest::Client {
    deepsearch_stream::http::shared_client().unwrap()
}

/// A small corpus on disk, and a server over it built from a [`ServerConfig`].
struct Corpus {
    _tmp: TempDir,
    config: ServerConfig,
}

fn corpus(limits: Limits) -> Corpus {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("corpus");
    fs::create_dir_all(&root).unwrap();
    fs::write(
        root.join("tokio.md"),
        "# Tokio\n\nTokio is an asynchronous runtime for the Rust programming language. \
         It provides the building blocks for writing network applications.\n\n\
         ## Tasks\n\nA Tokio task is a lightweight, non-blocking unit of execution.\n",
    )
    .unwrap();
    fs::write(
        root.join("serde.md"),
        "# Serde\n\nSerde is a framework for serializing and deserializing Rust data \
         structures efficiently and generically.\n",
    )
    .unwrap();
    let config = ServerConfig {
        engine_config: EngineConfig {
            corpus_dir: Some(root),
            cache_dir: Some(tmp.path().join("cache")),
            ..EngineConfig::default()
        },
        limits,
        ..ServerConfig::default()
    };
    Corpus { _tmp: tmp, config }
}

async fn local_server(limits: Limits) -> (Corpus, Running) {
    let corpus = corpus(limits);
    let app = App::from_config(&corpus.config).await.unwrap();
    let running = Running::start(app, Duration::from_secs(5)).await;
    (corpus, running)
}

fn json_of(data: &str) -> Value {
    serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_has_exactly_the_sse_headers_and_ends_with_done() {
    let (_corpus, server) = local_server(Limits::default()).await;
    let res = server
        .post(
            "/deepsearch",
            r#"{"query": "What is Tokio?", "request_id": "t-1"}"#,
        )
        .await;
    assert_eq!(res.status(), 200);
    let headers = res.headers().clone();
    assert_eq!(
        headers["content-type"], "text/event-stream; charset=utf-8",
        "{headers:?}"
    );
    assert_eq!(headers["cache-control"], "no-cache, no-transform");
    assert_eq!(headers["x-accel-buffering"], "no");
    for name in headers.keys() {
        assert!(
            [
                "content-type",
                "cache-control",
                "x-accel-buffering",
                "date",
                "transfer-encoding"
            ]
            .contains(&name.as_str()),
            "unexpected header {name}"
        );
    }
    let body = res.bytes().await.unwrap();
    // [DONE] has an id of its own (its last line): a reconnect with it is answered 204.
    let done = std::str::from_utf8(&body)
        .unwrap()
        .rsplit_once("data: [DONE]\nid: ");
    assert!(done.is_some_and(|(_, id)| id.ends_with("\n\n")), "{body:?}");
    let data = events(&body);
    assert_eq!(data.last().unwrap(), "[DONE]");
    let messages: Vec<Value> = data[..data.len() - 1].iter().map(|d| json_of(d)).collect();
    assert_eq!(messages[0]["type"], "status");
    let last = messages.last().unwrap();
    assert_eq!(last["type"], "final");
    assert!(messages.iter().all(|m| m["requestId"] == "t-1"));
    assert!(last["data"]["answer"].as_str().unwrap().contains("Tokio"));
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camel_case_aliases_and_json_replies() {
    let (_corpus, server) = local_server(Limits::default()).await;
    let res = server
        .post(
            "/deepsearch",
            r#"{"query": "What is Serde?", "requestId": "camel", "maxLoop": 1,
                "streamMode": {"mode": "general"}, "searchEngines": ["LOCAL"]}"#,
        )
        .await;
    assert_eq!(res.status(), 200);
    let data = events(&res.bytes().await.unwrap());
    let plans = data
        .iter()
        .filter(|d| d.contains(r#""type": "plan""#))
        .count();
    assert_eq!(plans, 1, "maxLoop 1: one round");
    assert!(data[..data.len() - 1]
        .iter()
        .all(|d| json_of(d)["requestId"] == "camel"));

    let res = server
        .post(
            "/deepsearch",
            r#"{"query": "What is Serde?", "stream": false}"#,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = json_of(&res.text().await.unwrap());
    assert!(body["answer"].as_str().unwrap().contains("Serde"), "{body}");
    server.stop(Duration::from_secs(5)).await.unwrap();
}

/// Status, content type and exact body of a refusal.
async fn refusal(res: reqwest::Response) -> (u16, String) {
    let status = res.status().as_u16();
    assert_eq!(res.headers()["content-type"], "application/json");
    (status, res.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_status_and_exact_body() {
    let limits = Limits {
        max_body_bytes: 200,
        ..Limits::default()
    };
    let (_corpus, server) = local_server(limits).await;
    let cases: [(&str, u16, &str); 5] = [
        (
            r#"{"query": "  "}"#,
            422,
            r#"{"error": {"code": "invalid_request", "message": "must not be empty", "field": "query"}}"#,
        ),
        (
            r#"{"query": "q", "max_loop": 0}"#,
            422,
            r#"{"error": {"code": "invalid_request", "message": "must be a whole number from 1 to 10, got 0", "field": "max_loop"}}"#,
        ),
        (
            r#"{"query": "q", "max_loop": "3"}"#,
            422,
            r#"{"error": {"code": "invalid_request", "message": "must be an integer", "field": "max_loop"}}"#,
        ),
        (
            r#"{"query": "q", "search_engines": ["bing"]}"#,
            422,
            r#"{"error": {"code": "invalid_request", "message": "engine \"bing\" is not configured here; available: local", "field": "search_engines"}}"#,
        ),
        (
            "{not json",
            400,
            r#"{"error": {"code": "invalid_json", "message": "request body is not JSON: key must be a string at line 1 column 2", "field": null}}"#,
        ),
    ];
    for route in ["/deepsearch", "/v1/tool/deepsearch"] {
        for (body, status, expected) in cases {
            let got = refusal(server.post(route, body).await).await;
            assert_eq!(got, (status, expected.to_string()), "{route} {body}");
        }
    }

    let res = client()
        .post(server.url("/deepsearch"))
        .header("content-type", "text/plain")
        .body(r#"{"query": "q"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        refusal(res).await,
        (
            415,
            r#"{"error": {"code": "unsupported_media_type", "message": "expected Content-Type: application/json, got \"text/plain\"", "field": null}}"#
                .to_string()
        )
    );
    let res = client()
        .post(server.url("/deepsearch"))
        .body(r#"{"query": "q"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await.0, 415, "no content type");

    // Too big, with a Content-Length and chunked: the parser's own 413.
    let big = format!(r#"{{"query": "{}"}}"#, "x".repeat(300));
    let too_large = r#"{"error": {"code": "body_too_large", "message": "request body is larger than 200 bytes", "field": null}}"#
        .to_string();
    assert_eq!(
        refusal(server.post("/deepsearch", &big).await).await,
        (413, too_large.clone())
    );
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        big.as_bytes().chunks(64).map(|c| Ok(c.to_vec())).collect();
    let res = client()
        .post(server.url("/deepsearch"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .unwrap();
    assert_eq!(refusal(res).await, (413, too_large));
    server.stop(Duration::from_secs(5)).await.unwrap();
}

fn hanging_app(limits: Limits) -> (Arc<Hangs>, App) {
    let (hangs, deepsearch) = Hangs::deepsearch();
    // No linger: a search stops as soon as its client leaves (tests/resume.rs covers
    // searches that wait for their client to come back).
    let replay = ReplayConfig {
        linger: Duration::ZERO,
        ..ReplayConfig::default()
    };
    let service = Service::new(deepsearch, limits, StreamConfig::default())
        .with_replay(Arc::new(MemoryStore::new(replay)));
    (hangs, App::new(service))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_stream_limit_is_503_with_retry_after() {
    let (hangs, app) = hanging_app(Limits {
        max_streams: 1,
        ..Limits::default()
    });
    let server = Running::start(app, Duration::from_secs(5)).await;
    let held = server.post("/deepsearch", r#"{"query": "held"}"#).await;
    assert_eq!(held.status(), 200);
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    let res = server
        .post("/v1/tool/deepsearch", r#"{"query": "q"}"#)
        .await;
    assert_eq!(res.headers()["retry-after"], "1");
    assert_eq!(
        refusal(res).await,
        (
            503,
            r#"{"error": {"code": "overloaded", "message": "1 searches are in progress, the most this server runs at once; retry shortly", "field": null}}"#
                .to_string()
        )
    );
    drop(held);
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_genie_route_speaks_genie_shapes() {
    let (_corpus, server) = local_server(Limits::default()).await;
    let res = server
        .post(
            "/v1/tool/deepsearch",
            r#"{"query": "What is Tokio?", "requestId": "g-1", "maxLoop": 2}"#,
        )
        .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let data = events(&res.bytes().await.unwrap());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let messages: Vec<Value> = data[..data.len() - 1].iter().map(|d| json_of(d)).collect();
    let kinds: Vec<&str> = messages
        .iter()
        .map(|m| m["messageType"].as_str().unwrap())
        .collect();
    assert_eq!(kinds[0], "extend", "{kinds:?}");
    assert!(kinds.contains(&"search"), "{kinds:?}");
    assert_eq!(*kinds.last().unwrap(), "report");
    assert!(messages.iter().all(|m| m["requestId"] == "g-1"));
    let finals: Vec<bool> = messages
        .iter()
        .map(|m| m["isFinal"].as_bool().unwrap())
        .collect();
    assert_eq!(finals.iter().filter(|f| **f).count(), 1);
    assert!(finals.last().unwrap());

    let res = server
        .post(
            "/v1/tool/deepsearch",
            r#"{"query": "What is Tokio?", "request_id": "g-2", "stream": false}"#,
        )
        .await;
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = json_of(&res.text().await.unwrap());
    assert_eq!(
        (&body["messageType"], &body["isFinal"]),
        (&Value::from("report"), &Value::from(true))
    );
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_page_and_json_404_405() {
    let (_corpus, server) = local_server(Limits::default()).await;
    let get = |path: &str| client().get(server.url(path)).send();

    let res = get("/healthz").await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(res.text().await.unwrap(), r#"{"status": "ok"}"#);

    let res = get("/metrics").await.unwrap();
    assert_eq!(
        res.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("deepsearch_streams_total"));

    let res = get("/").await.unwrap();
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        res.text().await.unwrap(),
        deepsearch_stream::server::INDEX_HTML
    );

    let res = get("/nope?x=1").await.unwrap();
    assert_eq!(
        refusal(res).await,
        (
            404,
            r#"{"error": {"code": "not_found", "message": "no route for GET /nope", "field": null}}"#
                .to_string()
        )
    );
    let res = client()
        .put(server.url("/deepsearch"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, HEAD, POST");
    assert_eq!(
        refusal(res).await,
        (
            405,
            r#"{"error": {"code": "method_not_allowed", "message": "method PUT is not allowed for /deepsearch; allowed: GET, HEAD, POST", "field": null}}"#
                .to_string()
        )
    );
    let res = get("/v1/tool/deepsearch").await.unwrap();
    assert_eq!(res.headers()["allow"], "POST");
    // GET /deepsearch is the search, its fields in the query string.
    let res = get("/deepsearch?request_id=g").await.unwrap();
    assert_eq!(refusal(res).await.0, 422);
    let res = client()
        .delete(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["allow"], "GET, HEAD");
    assert_eq!(refusal(res).await.0, 405);
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_cancels_its_search() {
    let (hangs, app) = hanging_app(Limits::default());
    let server = Running::start(app, Duration::from_secs(5)).await;
    let res = server
        .post("/deepsearch", r#"{"query": "What is Tokio?"}"#)
        .await;
    let mut body = res.bytes_stream();
    let first = body.next().await.unwrap().unwrap();
    // The opening frame: `retry:`, and a heartbeat with the stream's key as its id.
    assert!(
        first.starts_with(b"retry: 3000\ndata: heartbeat\nid: "),
        "{first:?}"
    );
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .expect("the search reached the engine");
    assert_eq!(server.app.streams().len(), 1);
    let left_at = Instant::now();
    drop(body);
    let deadline = left_at + Duration::from_secs(5);
    loop {
        if let Some(at) = hangs.dropped_at() {
            assert!(at >= left_at);
            break;
        }
        assert!(Instant::now() < deadline, "the engine call was not dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    while !server.app.streams().is_empty() {
        assert!(Instant::now() < deadline, "the stream is still tracked");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(server.app.service().open_streams(), 0);
    server.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_with_a_shutdown_error() {
    let (hangs, app) = hanging_app(Limits::default());
    let server = Running::start(app, Duration::from_secs(5)).await;
    let res = server
        .post(
            "/deepsearch",
            r#"{"query": "What is Tokio?", "request_id": "s-1"}"#,
        )
        .await;
    let mut body = res.bytes_stream();
    let mut seen = body.next().await.unwrap().unwrap().to_vec();
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    let stopping = tokio::spawn(server.stop(Duration::from_secs(3)));
    while let Some(chunk) = body.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    let elapsed = stopping.await.unwrap().expect("the server stopped in time");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(
        std::str::from_utf8(&seen)
            .unwrap()
            .contains("data: [DONE]\nid: "),
        "{seen:?}"
    );
    let data = events(&seen);
    let error = json_of(&data[data.len() - 2]);
    assert_eq!(error["type"], "error");
    assert_eq!(error["requestId"], "s-1");
    assert_eq!(error["isFinal"], true);
    assert_eq!(
        error["data"],
        serde_json::json!({"message": "server is shutting down", "code": "shutdown"})
    );
    assert!(hangs.dropped_at().is_some(), "search cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_when_a_client_stalls() {
    let (_hangs, app) = hanging_app(Limits::default());
    let server = Running::start(app, Duration::from_millis(300)).await;
    // A request whose body never arrives in full holds its connection open.
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&addr).await.unwrap();
    stalled
        .write_all(
            b"POST /deepsearch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"query\":",
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let elapsed = server
        .stop(Duration::from_secs(5))
        .await
        .expect("the server future completed");
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    // Nothing new is accepted once stopped.
    let mut probe = [0u8; 1];
    let refused = match TcpStream::connect(&addr).await {
        Err(_) => true,
        Ok(mut s) => {
            let _ = s
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
                .await;
            matches!(s.read(&mut probe).await, Ok(0) | Err(_))
        }
    };
    assert!(refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_routes_only_when_asked_and_per_the_contract() {
    let (_corpus, plain) = local_server(Limits::default()).await;
    assert_eq!(plain.post("/bench/stream", "{}").await.status(), 404);
    plain.stop(Duration::from_secs(5)).await.unwrap();

    let corpus = corpus(Limits::default());
    let app = App::from_config(&corpus.config)
        .await
        .unwrap()
        .with_bench_routes();
    let server = Running::start(app, Duration::from_secs(5)).await;
    let res = server
        .post(
            "/bench/stream",
            r#"{"id": "b1", "count": 3, "payload_bytes": 4}"#,
        )
        .await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    let events = decode_all(&body);
    let datas: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert_eq!(datas.len(), 4, "{datas:?}");
    for (seq, data) in datas[..3].iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["data"]["seq"], seq);
        assert_eq!(v["data"]["text"], "xxxx");
        assert_eq!(v["requestId"], "b1");
    }
    assert_eq!(datas[3], "[DONE]");
    let state: serde_json::Value = client()
        .get(server.url("/bench/producer?id=b1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["sent"], 3);
    assert_eq!(state["stopped"], true);
    assert_eq!(state["reason"], "done");
    let unknown = client()
        .get(server.url("/bench/producer?id=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    server.stop(Duration::from_secs(5)).await.unwrap();
}
