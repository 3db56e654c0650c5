//! The streaming proxy against a local upstream: relaying, every failure code, chunking
//! anywhere, backpressure, and closing the upstream when the client goes away.

mod support;

use std::time::{Duration, Instant};

use deepsearch_stream::proxy::{self, code, ProxyError, ProxyOptions};
use deepsearch_stream::sse::{decode_all, DecodedEvent};
use deepsearch_stream::stream::{EventStream, HeartbeatFormat, StreamConfig};
use futures::StreamExt;
use serde_json::Value;
use support::{Body, Reply, Step, TestServer};

const BODY: &[u8] = br#"{"query": "rust sse", "requestId": "req-1"}"#;

fn config() -> StreamConfig {
    StreamConfig {
        heartbeat: None,
        ..StreamConfig::default()
    }
}

fn options() -> ProxyOptions {
    ProxyOptions {
        idle_timeout: Some(Duration::from_secs(5)),
        timeout: Some(Duration::from_secs(20)),
        ..ProxyOptions::default()
    }
}

fn start(server: &TestServer, options: ProxyOptions, config: StreamConfig) -> EventStream {
    proxy::spawn(
        "req-1",
        &server.url("/v1/deepsearch"),
        BODY,
        options,
        config,
    )
    .unwrap()
}

/// Everything the stream hands out, to its end.
async fn collect(stream: EventStream) -> Vec<u8> {
    let all = stream.fold(Vec::new(), |mut all, chunk| async move {
        all.extend_from_slice(&chunk);
        all
    });
    tokio::time::timeout(Duration::from_secs(15), all)
        .await
        .expect("the stream ends")
}

async fn relay(server: &TestServer, options: ProxyOptions) -> Vec<u8> {
    collect(start(server, options, config())).await
}

fn text(wire: &[u8]) -> &str {
    std::str::from_utf8(wire).unwrap()
}

/// The relayed data before the `error` message, and the error's (message, code). Checks
/// the stream ends with an `error` (`isFinal`) and `[DONE]`, and ids count from 1.
fn failure(wire: &[u8]) -> (Vec<String>, String, String) {
    let mut events = decode_all(wire);
    let done = events.pop().expect("a [DONE] event");
    assert_eq!(done.data, "[DONE]", "{}", text(wire));
    let error = events.pop().expect("an error event");
    let envelope: Value = serde_json::from_str(&error.data).unwrap();
    assert_eq!(envelope["type"], "error", "{}", text(wire));
    assert_eq!(envelope["isFinal"], true);
    assert_eq!(envelope["requestId"], "req-1");
    assert_eq!(
        &*error.last_event_id,
        (events.len() + 1).to_string(),
        "ids count from 1"
    );
    let data = &envelope["data"];
    let relayed = events.into_iter().map(|e: DecodedEvent| e.data).collect();
    (
        relayed,
        data["message"].as_str().unwrap().to_string(),
        data["code"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn relays_data_in_order_under_our_ids_and_stops_at_done() {
    let server = TestServer::script(vec![Reply::sse(&[
        ": stream start\n\n",
        "data: heartbeat\n\n",
        "id: 77\nevent: delta\ndata: {\"n\": 1}\n\n",
        "retry: 500\ndata: line one\ndata: line two\n\n",
        ":keepalive\n\n",
        "data: {\"n\": 3}\n\ndata: [DONE]\n\n",
        "data: after done\n\n",
    ])
    .then(Step::HoldUntilClosed)])
    .await;
    let options = ProxyOptions {
        headers: vec![
            ("Authorization".into(), "Bearer t0ken".into()),
            ("Last-Event-ID".into(), "41".into()),
        ],
        ..options()
    };
    let wire = relay(&server, options).await;
    assert_eq!(
        text(&wire),
        "data: {\"n\": 1}\nid: 1\n\n\
         data: line one\ndata: line two\nid: 2\n\n\
         data: {\"n\": 3}\nid: 3\n\n\
         data: [DONE]\n\n"
    );

    let request = server.single_request();
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/deepsearch");
    assert_eq!(request.body, BODY);
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("accept"), Some("text/event-stream"));
    assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(request.header("last-event-id"), Some("41"));
    // Upstream [DONE] ends the relay: its connection is not kept open for the rest.
    assert!(server.wait_closed(Duration::from_secs(2)).await.is_some());
}

#[tokio::test]
async fn our_heartbeats_replace_the_upstreams_and_its_heartbeats_keep_it_alive() {
    let mut reply = Reply::sse(&["data: first\n\n"]);
    for _ in 0..8 {
        reply = reply
            .then(Step::Sleep(Duration::from_millis(50)))
            .then(Step::Send(b"data: heartbeat\n\n: ping\n\n".to_vec()));
    }
    let reply = reply.then(Step::Send(b"data: last\n\ndata: [DONE]\n\n".to_vec()));
    let server = TestServer::script(vec![reply]).await;
    let config = StreamConfig {
        heartbeat: Some(Duration::from_millis(30)),
        heartbeat_format: HeartbeatFormat::Comment,
        ..StreamConfig::default()
    };
    let options = ProxyOptions {
        idle_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let wire = collect(start(&server, options, config)).await;
    let wire = text(&wire);
    assert!(wire.contains(": heartbeat\n\n"), "ours: {wire}");
    assert!(
        !wire.contains("data: heartbeat"),
        "upstream's relayed: {wire}"
    );
    assert!(!wire.contains("ping"), "{wire}");
    let data: Vec<_> = decode_all(wire.as_bytes())
        .into_iter()
        .map(|e| e.data)
        .collect();
    assert_eq!(data, ["first", "last", "[DONE]"]);
}

#[tokio::test]
async fn status_500_with_a_json_body() {
    let body = r#"{"error": {"message": "model overloaded", "type": "server_error"}}"#;
    let server = TestServer::script(vec![Reply::new(500, "application/json", body)]).await;
    let (relayed, message, code) = failure(&relay(&server, options()).await);
    assert!(relayed.is_empty());
    assert_eq!(code, code::STATUS);
    assert!(message.contains("500"), "{message}");
    assert!(message.contains("model overloaded"), "{message}");
}

#[tokio::test]
async fn status_404() {
    let server = TestServer::script(vec![Reply::new(404, "text/plain", "no such route")]).await;
    let (_, message, code) = failure(&relay(&server, options()).await);
    assert_eq!(code, code::STATUS);
    assert_eq!(message, "upstream answered 404 Not Found: no such route");
}

#[tokio::test]
async fn error_bodies_are_clipped_and_not_read_to_the_end() {
    let big = "x".repeat(100_000);
    let endless = Reply {
        status: 503,
        ..Reply::endless("text/html")
    };
    let server =
        TestServer::script(vec![Reply::new(502, "text/html", big.as_str()), endless]).await;
    for status in ["502", "503"] {
        let started = Instant::now();
        let (_, message, code) = failure(&relay(&server, options()).await);
        assert_eq!(code, code::STATUS);
        assert!(message.contains(status), "{message}");
        assert!(message.chars().count() < 400, "{} chars", message.len());
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}

#[tokio::test]
async fn an_error_body_that_stalls_is_quoted_as_far_as_it_came() {
    let stalled = Reply::new(500, "text/plain", "half an expl").then(Step::HoldUntilClosed);
    let cut_in_char = Reply::new(500, "text/plain", "é".repeat(2000));
    let server = TestServer::script(vec![stalled, cut_in_char]).await;
    let started = Instant::now();
    let (_, message, code) = failure(&relay(&server, options()).await);
    assert_eq!(code, code::STATUS);
    assert_eq!(
        message,
        "upstream answered 500 Internal Server Error: half an expl"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    let (_, message, _) = failure(&relay(&server, options()).await);
    assert!(message.ends_with("éé…"), "{message}");
}

#[tokio::test]
async fn a_2xx_that_is_not_an_event_stream() {
    let mut odd_but_fine = Reply::sse(&["data: ok\n\ndata: [DONE]\n\n"]);
    odd_but_fine.headers = vec![(
        "Content-Type".into(),
        "Text/Event-Stream; charset=utf-8".into(),
    )];
    let server = TestServer::script(vec![
        Reply::json(&serde_json::json!({"answer": "42"})),
        odd_but_fine,
    ])
    .await;
    let (_, message, code) = failure(&relay(&server, options()).await);
    assert_eq!(code, code::PROTOCOL);
    assert!(message.contains("application/json"), "{message}");
    // Parameters and case do not matter.
    let wire = relay(&server, options()).await;
    assert_eq!(text(&wire), "data: ok\nid: 1\n\ndata: [DONE]\n\n");
}

#[tokio::test]
async fn connection_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://{addr}/v1/deepsearch?token=s3cret");
    let stream = proxy::spawn("req-1", &url, BODY, options(), config()).unwrap();
    let (_, message, code) = failure(&collect(stream).await);
    assert_eq!(code, code::UNREACHABLE);
    assert!(message.starts_with("cannot reach upstream"), "{message}");
    assert!(!message.contains("s3cret"), "the URL leaked: {message}");
}

#[tokio::test]
async fn a_stream_that_ends_without_done() {
    let clean_end = Reply::sse(&["data: one\n\n", "data: two\n\n", "data: incomplete"]);
    let dropped = Reply::sse(&["data: one\n\n"]).then(Step::Abort);
    let server = TestServer::script(vec![clean_end, dropped]).await;

    let (relayed, message, code) = failure(&relay(&server, options()).await);
    assert_eq!(relayed, ["one", "two"]);
    assert_eq!(code, code::TRUNCATED);
    assert_eq!(message, "upstream closed the stream without [DONE]");

    let (relayed, message, code) = failure(&relay(&server, options()).await);
    assert_eq!(relayed, ["one"]);
    assert_eq!(code, code::TRUNCATED);
    assert!(
        message.starts_with("upstream connection failed mid-stream"),
        "{message}"
    );
}

#[tokio::test]
async fn a_stalled_upstream_hits_the_idle_timeout_and_is_hung_up_on() {
    let server = TestServer::script(vec![
        Reply::sse(&["data: one\n\n"]).then(Step::HoldUntilClosed)
    ])
    .await;
    let options = ProxyOptions {
        idle_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let started = Instant::now();
    let (relayed, message, code) = failure(&relay(&server, options).await);
    let elapsed = started.elapsed();
    assert_eq!(relayed, ["one"]);
    assert_eq!(code, code::TIMEOUT);
    assert_eq!(message, "upstream sent nothing for 0.2 s");
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    assert!(server.wait_closed(Duration::from_secs(2)).await.is_some());
}

#[tokio::test]
async fn slow_response_head_and_total_deadline() {
    let slow_head = Reply::sse(&["data: [DONE]\n\n"]).delayed(Duration::from_secs(3));
    let mut chatty = Reply::sse(&["data: one\n\n"]);
    for _ in 0..40 {
        chatty = chatty
            .then(Step::Sleep(Duration::from_millis(50)))
            .then(Step::Send(b": still here\n\n".to_vec()));
    }
    let server = TestServer::script(vec![slow_head, chatty]).await;

    let head = ProxyOptions {
        connect_timeout: Some(Duration::from_millis(200)),
        ..options()
    };
    let (_, message, code) = failure(&relay(&server, head).await);
    assert_eq!(code, code::TIMEOUT);
    assert_eq!(message, "no response from upstream within 0.2 s");

    let total = ProxyOptions {
        idle_timeout: Some(Duration::from_millis(500)),
        timeout: Some(Duration::from_millis(300)),
        ..options()
    };
    let (relayed, message, code) = failure(&relay(&server, total).await);
    assert_eq!(relayed, ["one"]);
    assert_eq!(code, code::TIMEOUT);
    assert_eq!(message, "upstream did not finish within 0.3 s");
}

#[tokio::test]
async fn oversized_events_and_lines_are_protocol_errors() {
    let big_event = format!("data: ok\n\n{}", "data: 0123456789\n".repeat(10));
    let long_line = format!("data: ok\n\ndata: {}\n\n", "y".repeat(200));
    let server = TestServer::script(vec![Reply::sse(&[big_event]), Reply::sse(&[long_line])]).await;
    let limits = || ProxyOptions {
        max_line_bytes: 100,
        max_event_bytes: 64,
        ..options()
    };
    for limit in ["64 bytes", "100 bytes"] {
        let (relayed, message, code) = failure(&relay(&server, limits()).await);
        assert_eq!(relayed, ["ok"]);
        assert_eq!(code, code::PROTOCOL);
        assert!(message.contains(limit), "{message}");
    }
}

/// An upstream body sent as `pieces`, each its own HTTP chunk with a pause between, so
/// the proxy reads them apart.
fn chunked(pieces: &[&[u8]]) -> Reply {
    let mut steps = Vec::new();
    for piece in pieces {
        steps.push(Step::Send(piece.to_vec()));
        steps.push(Step::Sleep(Duration::from_millis(1)));
    }
    Reply {
        body: Body::Chunked(steps),
        ..Reply::sse_bytes::<&[u8]>(&[])
    }
}

#[tokio::test]
async fn events_split_anywhere_come_through_whole() {
    let wire = "\u{feff}data: héllo 世界\r\n\r\nid: 9\r\ndata: 😀 two\r\ndata: lines\r\n\r\n: c\r\ndata: [DONE]\r\n\r\n";
    let wire = wire.as_bytes();
    let expected =
        "data: héllo 世界\nid: 1\n\ndata: 😀 two\ndata: lines\nid: 2\n\ndata: [DONE]\n\n";
    let mut replies: Vec<Reply> = (1..wire.len())
        .map(|cut| chunked(&[&wire[..cut], &wire[cut..]]))
        .collect();
    let bytes: Vec<&[u8]> = wire.chunks(1).collect();
    replies.push(chunked(&bytes));
    let count = replies.len();
    let server = TestServer::script(replies).await;
    for n in 0..count {
        let out = relay(&server, options()).await;
        assert_eq!(text(&out), expected, "reply {n}");
    }
}

#[tokio::test]
async fn a_slow_consumer_slows_the_relay_and_loses_nothing() {
    let events: String = (0..300).map(|n| format!("data: {n}\n\n")).collect();
    let server = TestServer::script(vec![Reply::sse(&[events, "data: [DONE]\n\n".into()])]).await;
    let config = StreamConfig {
        max_pending: 2,
        ..config()
    };
    let mut stream = start(&server, options(), config);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut wire = Vec::new();
    while let Some(chunk) = stream.next().await {
        wire.extend_from_slice(&chunk);
        tokio::task::yield_now().await;
    }
    assert!(stream.stats().blocked > Duration::ZERO, "the relay waited");
    let events = decode_all(&wire);
    assert_eq!(events.len(), 301);
    for (n, event) in events[..300].iter().enumerate() {
        assert_eq!(event.data, n.to_string());
        assert_eq!(&*event.last_event_id, (n + 1).to_string());
    }
    assert_eq!(events[300].data, "[DONE]");
}

/// Drops the stream after its first chunk and returns how long the upstream took to
/// see its connection closed, as measured by the upstream.
async fn disconnect_after_first_chunk(reply: Reply, config: StreamConfig) -> Duration {
    let server = TestServer::script(vec![reply]).await;
    let mut stream = start(&server, options(), config);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        text(&first).starts_with("data: 0\nid: 1\n\n"),
        "{}",
        text(&first)
    );
    // Let the relay get back to waiting (on the upstream, or on the full buffer).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dropped = Instant::now();
    drop(stream);
    let closed = server
        .wait_closed(Duration::from_secs(5))
        .await
        .expect("the upstream connection is closed");
    closed.saturating_duration_since(dropped)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_closes_the_upstream_connection_at_once() {
    let reply = Reply::sse(&["data: 0\n\n"]).then(Step::HoldUntilClosed);
    let took = disconnect_after_first_chunk(reply, config()).await;
    eprintln!("upstream saw the close {took:?} after the drop (waiting on upstream)");
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_stream_while_the_relay_is_blocked_closes_the_upstream_too() {
    let events: String = (0..50).map(|n| format!("data: {n}\n\n")).collect();
    let reply = Reply::sse(&[events]).then(Step::HoldUntilClosed);
    let config = StreamConfig {
        max_pending: 1,
        max_chunk_bytes: 10,
        ..config()
    };
    let took = disconnect_after_first_chunk(reply, config).await;
    eprintln!("upstream saw the close {took:?} after the drop (blocked on backpressure)");
    assert!(took < Duration::from_millis(100), "{took:?}");
}

#[test]
fn setup_errors() {
    let spawn = |url: &str, options: ProxyOptions, config: StreamConfig| {
        proxy::spawn("r", url, BODY, options, config).unwrap_err()
    };
    let url = "http://127.0.0.1:9/x";
    // Outside a runtime, once everything else is fine.
    assert!(matches!(
        spawn(url, options(), config()),
        ProxyError::NoRuntime
    ));
    assert!(matches!(
        spawn("not a url", options(), config()),
        ProxyError::InvalidUrl { .. }
    ));
    let err = spawn("ftp://127.0.0.1/x", options(), config());
    assert_eq!(
        err.to_string(),
        "upstream URL scheme must be http or https, got \"ftp\""
    );
    let header = |name: &str, value: &str| ProxyOptions {
        headers: vec![(name.into(), value.into())],
        ..options()
    };
    for (name, value) in [("Host", "evil"), ("bad header", "x"), ("X-Ok", "a\r\nb")] {
        let err = spawn(url, header(name, value), config());
        assert!(
            matches!(&err, ProxyError::InvalidHeader { name: n, .. } if n == name),
            "{err}"
        );
    }
    let zero_idle = ProxyOptions {
        idle_timeout: Some(Duration::ZERO),
        ..options()
    };
    assert!(matches!(
        spawn(url, zero_idle, config()),
        ProxyError::InvalidOption(_)
    ));
    let bad_config = StreamConfig {
        max_pending: 0,
        ..config()
    };
    assert!(matches!(
        spawn(url, options(), bad_config),
        ProxyError::Stream(_)
    ));
}
