//! `Service::handle`, the search routes whole and without HTTP: what each face gets for
//! a head and a body it read, the shutdown rule included.

mod support;

use std::time::Duration;

use bytes::Bytes;
use deepsearch_stream::api::{Answer, AnswerBody, Limits, RequestBody, Route, SearchHead, Service};
use deepsearch_stream::stream::StreamConfig;
use futures::StreamExt;
use serde_json::Value;

use support::frames::events;
use support::hangs::Hangs;

fn service() -> (std::sync::Arc<Hangs>, Service) {
    let (hangs, deepsearch) = Hangs::deepsearch();
    let config = StreamConfig {
        heartbeat: None,
        ..StreamConfig::default()
    };
    (hangs, Service::new(deepsearch, Limits::default(), config))
}

fn post(body: &str) -> (SearchHead<'static>, RequestBody) {
    let head = SearchHead {
        method: "POST",
        content_type: Some("application/json"),
        ..SearchHead::default()
    };
    (
        head,
        RequestBody::Read(Bytes::copy_from_slice(body.as_bytes())),
    )
}

/// Status, headers and the JSON body of an answer that is not a stream.
fn json(answer: Answer) -> (u16, Vec<(&'static str, String)>, Value) {
    let AnswerBody::Bytes(body) = answer.body else {
        panic!("expected a JSON body, got a stream");
    };
    (
        answer.status,
        answer.headers,
        serde_json::from_slice(&body).unwrap(),
    )
}

#[tokio::test]
async fn refusals_carry_their_status_code_and_headers() {
    let (_hangs, service) = service();
    let (head, _) = post("");
    let (status, headers, body) = json(
        service
            .handle(Route::DeepSearch, head, RequestBody::TooLarge)
            .await,
    );
    assert_eq!(status, 413);
    assert_eq!(headers, [("content-type", "application/json".to_string())]);
    assert_eq!(body["error"]["code"], "body_too_large");
    assert_eq!(
        body["error"]["message"],
        "request body is larger than 65536 bytes"
    );

    let unreadable = RequestBody::Unreadable("connection reset".into());
    let (status, _, body) = json(service.handle(Route::DeepSearch, head, unreadable).await);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("connection reset"));

    let (head, body) = post(r#"{"query": "q", "request_id": "h-1"}"#);
    let head = SearchHead {
        last_event_id: Some("x"),
        ..head
    };
    let (status, _, body) = json(service.handle(Route::DeepSearch, head, body).await);
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid_last_event_id");
    assert_eq!(body["error"]["field"], "Last-Event-ID");
}

#[tokio::test]
async fn a_get_reads_its_request_from_the_query_string() {
    let (_hangs, service) = service();
    let head = SearchHead {
        method: "GET",
        query: Some("query=What+is+Tokio%3F&request_id=g-1&max_loop=0"),
        ..SearchHead::default()
    };
    // The body a GET may carry is never read.
    let answer = service
        .handle(Route::DeepSearch, head, RequestBody::TooLarge)
        .await;
    let (status, _, body) = json(answer);
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("max_loop"))
    );
}

#[tokio::test]
async fn a_stream_has_the_sse_headers() {
    let (hangs, service) = service();
    let (head, body) = post(r#"{"query": "What is Tokio?", "request_id": "s-1"}"#);
    let answer = service.handle(Route::DeepSearch, head, body).await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.headers[0],
        (
            "content-type",
            "text/event-stream; charset=utf-8".to_string()
        )
    );
    let AnswerBody::Stream(mut stream) = answer.body else {
        panic!("expected a stream");
    };
    hangs.started.notified().await;
    service.streams().begin_shutdown();
    let mut wire = Vec::new();
    while let Some(chunk) = stream.next().await {
        wire.extend_from_slice(&chunk);
    }
    let events = events(&wire);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    assert!(
        events.iter().any(|e| e.contains(r#""code": "shutdown""#)),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_search_that_does_not_stream_is_given_up_at_shutdown() {
    let (hangs, service) = service();
    let (head, body) = post(r#"{"query": "What is Tokio?", "request_id": "j-1", "stream": false}"#);
    let answering = {
        let service = service.clone();
        tokio::spawn(async move { json(service.handle(Route::DeepSearch, head, body).await) })
    };
    hangs.started.notified().await;
    assert_eq!(service.open_streams(), 1);
    service.streams().begin_shutdown();
    let (status, _, body) = tokio::time::timeout(Duration::from_secs(10), answering)
        .await
        .expect("answered at once")
        .unwrap();
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "shutdown");
    assert_eq!(body["error"]["message"], "server is shutting down");
    assert_eq!(service.open_streams(), 0, "its slot is released");
}
