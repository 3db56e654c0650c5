//! Resuming streams at the service level (no HTTP): a client that leaves and comes back
//! with `Last-Event-ID` gets every frame it missed once, in order, then the live rest;
//! searches outlive their client for the linger time, then stop with `abandoned`;
//! unknown or evicted streams answer `expired`, and so does an id without the stream's
//! key or under another API key; an id past the log is refused without taking the
//! stream; `[DONE]`'s own id answers 204; a resume takes over from the connection
//! before it; shutdown ends the log, which stays readable; a request id a live search
//! holds is refused.

mod support;

use std::fs;
use std::sync::Arc;
use std::time::Duration;

use deepsearch_stream::api::{ApiError, Limits, Reply, Route, SearchRequest, Service};
use deepsearch_stream::deepsearch::{DeepSearch, Settings};
use deepsearch_stream::replay::{MemoryStore, ReplayConfig};
use deepsearch_stream::search::EngineConfig;
use deepsearch_stream::stream::{EventStream, StreamConfig};
use futures::StreamExt;
use serde_json::Value;
use tempfile::TempDir;
use tokio::time::Instant;

use support::frames::{frames as all_frames, raw_frames};
use support::hangs::Hangs;

fn stream_config() -> StreamConfig {
    StreamConfig {
        heartbeat: None,
        ..StreamConfig::default()
    }
}

fn replay(linger: Duration) -> Arc<MemoryStore> {
    Arc::new(MemoryStore::new(ReplayConfig {
        linger,
        ..ReplayConfig::default()
    }))
}

/// A service over a two-document corpus, offline.
fn local_service(linger: Duration) -> (TempDir, Service) {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("corpus");
    fs::create_dir_all(&root).unwrap();
    fs::write(
        root.join("tokio.md"),
        "# Tokio\n\nTokio is an asynchronous runtime for the Rust programming language. \
         It provides the building blocks for writing network applications.\n",
    )
    .unwrap();
    fs::write(
        root.join("tea.md"),
        "# Green tea\n\nSteep green tea leaves for two minutes in water below boiling.\n",
    )
    .unwrap();
    let config = EngineConfig {
        corpus_dir: Some(root),
        cache_dir: Some(tmp.path().join("cache")),
        ..EngineConfig::default()
    };
    let deepsearch =
        DeepSearch::from_config(&["local"], &config, None, Settings::default()).unwrap();
    let service =
        Service::new(deepsearch, Limits::default(), stream_config()).with_replay(replay(linger));
    (tmp, service)
}

fn hanging_service(linger: Duration) -> (Arc<Hangs>, Service) {
    let (hangs, deepsearch) = Hangs::deepsearch();
    let service =
        Service::new(deepsearch, Limits::default(), stream_config()).with_replay(replay(linger));
    (hangs, service)
}

/// Events but heartbeats (the streams here have none but the opening one), as
/// (id, data).
fn frames(body: &[u8]) -> Vec<(String, String)> {
    all_frames(body)
        .into_iter()
        .filter(|(_, data)| data != "heartbeat")
        .collect()
}

fn request(service: &Service, body: &str) -> SearchRequest {
    service
        .parse(Route::DeepSearch, Some("application/json"), body.as_bytes())
        .unwrap()
}

async fn start(
    service: &Service,
    body: &str,
    last_event_id: Option<&str>,
    scope: &str,
) -> Result<Reply, ApiError> {
    let req = service
        .with_resume(
            Route::DeepSearch,
            request(service, body),
            last_event_id,
            None,
        )
        .unwrap();
    service.start(Route::DeepSearch, req, scope).await
}

async fn open(service: &Service, body: &str, last_event_id: Option<&str>) -> EventStream {
    match start(service, body, last_event_id, "").await.unwrap() {
        Reply::Stream(stream) => stream,
        other => panic!("expected a stream, got {other:?}"),
    }
}

async fn read_all(mut stream: EventStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk);
    }
    out
}

/// Reads chunks until `n` events with ids arrived; returns all bytes read.
async fn read_at_least(stream: &mut EventStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while frames(&out).iter().filter(|(id, _)| !id.is_empty()).count() < n {
        let chunk = stream.next().await.expect("the stream ended too early");
        out.extend_from_slice(&chunk);
    }
    out
}

/// Reads until `n` events with ids arrived; returns the bytes up to the end of the n-th
/// (what a client saw before its connection broke: chunks may hold more).
async fn read_frames(stream: &mut EventStream, n: usize) -> Vec<u8> {
    let out = read_at_least(stream, n).await;
    let mut kept = Vec::new();
    let mut numbered = 0;
    for frame in raw_frames(&out) {
        if numbered == n {
            break;
        }
        numbered +=
            usize::from(!frames(&frame).is_empty() && frame.windows(4).any(|w| w == b"id: "));
        kept.extend_from_slice(&frame);
    }
    kept
}

/// The stream's key, from its opening frame (`retry: 3000`, a heartbeat, `id: <key>.0`).
fn key_of(body: &[u8]) -> String {
    let text = std::str::from_utf8(body).unwrap();
    let open = text.split("\n\n").next().unwrap();
    assert!(
        open.starts_with("retry: 3000\ndata: heartbeat\nid: "),
        "{open}"
    );
    let id = open.lines().find_map(|l| l.strip_prefix("id: ")).unwrap();
    let (key, n) = id.rsplit_once('.').unwrap();
    assert_eq!((key.len(), n), (32, "0"), "{id}");
    key.to_string()
}

/// The number of an event id `<key>.<n>`.
fn number(id: &str) -> u64 {
    id.rsplit_once('.').unwrap().1.parse().unwrap()
}

fn without_times(data: &str) -> Value {
    let mut msg: Value = serde_json::from_str(data).unwrap_or(Value::String(data.into()));
    if let Some(obj) = msg.as_object_mut() {
        obj.remove("timestamp");
        if let Some(d) = obj.get_mut("data").and_then(Value::as_object_mut) {
            d.remove("elapsed_ms");
            if let Some(u) = d.get_mut("usage").and_then(Value::as_object_mut) {
                u.remove("elapsed_ms");
            }
        }
    }
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_drops_and_resumes_misses_nothing_and_gets_nothing_twice() {
    let (_tmp, service) = local_service(Duration::from_secs(60));
    let whole = read_all(
        open(
            &service,
            r#"{"query": "What is Tokio?", "request_id": "whole"}"#,
            None,
        )
        .await,
    )
    .await;
    let whole_key = key_of(&whole);
    let whole = frames(&whole);
    assert!(whole.len() > 6, "{whole:?}");

    let body = r#"{"query": "What is Tokio?", "request_id": "cut"}"#;
    let mut first = open(&service, body, None).await;
    let seen = read_frames(&mut first, 3).await;
    drop(first);
    let key = key_of(&seen);
    assert_ne!(key, whole_key, "each stream has a key of its own");
    let seen_frames = frames(&seen);
    let last_id = seen_frames
        .iter()
        .rev()
        .find(|(id, _)| !id.is_empty())
        .unwrap()
        .0
        .clone();
    assert_eq!(last_id, format!("{key}.3"));
    let rest = read_all(open(&service, body, Some(&last_id)).await).await;
    assert!(rest.starts_with(format!("retry: 3000\ndata: heartbeat\nid: {last_id}\n\n").as_bytes()));
    let mut joined = seen_frames.clone();
    joined.extend(frames(&rest));
    let ids: Vec<u64> = joined
        .iter()
        .filter(|(id, _)| !id.is_empty())
        .map(|(id, _)| number(id))
        .collect();
    assert_eq!(
        ids,
        (1..=ids.len() as u64).collect::<Vec<_>>(),
        "no gap, no duplicate; [DONE] has the last id"
    );
    assert_eq!(joined.last().unwrap().1, "[DONE]");
    let same = |f: &[(String, String)], key: &str| {
        f.iter()
            .map(|(id, d)| {
                (
                    id.replace(key, "<key>"),
                    without_times(&d.replace("\"cut\"", "\"whole\"")),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(same(&joined, &key), same(&whole, &whole_key));

    // A replay is byte for byte what went out the first time, but the opening frame.
    let again = read_all(open(&service, body, Some(&format!("{key}.0"))).await).await;
    let again = raw_frames(&again);
    let before = raw_frames(&seen);
    assert_eq!(&again[..before.len()], &before[..]);
    assert_eq!(&again[before.len()..], &raw_frames(&rest)[1..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_streams_are_expired_without_moving_the_client_id() {
    let (_tmp, service) = local_service(Duration::from_secs(60));
    let body = read_all(
        open(
            &service,
            r#"{"query": "q", "request_id": "never"}"#,
            Some("00112233445566778899aabbccddeeff.4"),
        )
        .await,
    )
    .await;
    let text = String::from_utf8(body).unwrap();
    assert!(!text.contains("id:"), "{text}");
    let got = frames(text.as_bytes());
    assert_eq!(got.len(), 2, "{got:?}");
    let error: Value = serde_json::from_str(&got[0].1).unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["data"]["code"], "expired");
    assert_eq!(error["isFinal"], true);
    assert_eq!(got[1].1, "[DONE]");
}

/// What a stranger gets for a live stream's request id: `expired`, as for a stream that
/// does not exist, and the stream's own reader keeps it.
async fn assert_refused_as_unknown(
    service: &Service,
    body: &str,
    last_event_id: &str,
    scope: &str,
) {
    let Reply::Stream(stream) = start(service, body, Some(last_event_id), scope)
        .await
        .unwrap()
    else {
        panic!("expected a stream");
    };
    let text = String::from_utf8(read_all(stream).await).unwrap();
    assert!(!text.contains("id:"), "{last_event_id}: {text}");
    assert!(
        text.contains(r#""code": "expired""#),
        "{last_event_id}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_key_of_a_stream_resumes_it() {
    let (hangs, service) = hanging_service(Duration::from_secs(60));
    let body = r#"{"query": "What is Tokio?", "request_id": "mine"}"#;
    let mut live = open(&service, body, None).await;
    let seen = read_frames(&mut live, 1).await;
    let key = key_of(&seen);
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    let mut wrong = key.clone().into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    let wrong = String::from_utf8(wrong).unwrap();
    for guess in ["0", "1", &format!("{wrong}.0"), "mine.0"] {
        assert_refused_as_unknown(&service, body, guess, "").await;
    }
    // The right key under another API key's scope finds nothing either.
    assert_refused_as_unknown(&service, body, &format!("{key}.0"), "other").await;
    // None of them took the stream: its reader is still the live one.
    assert!(hangs.dropped_at().is_none());
    let back = open(&service, body, Some(&format!("{key}.1"))).await;
    drop(live);
    drop(back);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_request_id_is_not_taken_by_a_new_search() {
    // A short linger: once its client has left, the search stops soon and frees its id.
    let (hangs, service) = hanging_service(Duration::from_millis(300));
    let body = r#"{"query": "What is Tokio?", "request_id": "busy"}"#;
    let mut live = open(&service, body, None).await;
    read_frames(&mut live, 1).await;
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    let e = start(&service, body, None, "").await.unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (409, "request_id_in_use"));
    assert!(hangs.dropped_at().is_none(), "the live search was stopped");
    // In another scope the id is free.
    let other = start(&service, body, None, "other").await.unwrap();
    assert!(matches!(other, Reply::Stream(_)));
    drop(other);
    // Once the search is over, the id is free again.
    live.close();
    drop(live);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match start(&service, body, None, "").await {
            Ok(Reply::Stream(_)) => break,
            Err(e) if e.status == 409 => {}
            other => panic!("{other:?}"),
        }
        assert!(Instant::now() < deadline, "the request id was never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_past_the_log_is_refused_and_the_live_reader_keeps_the_stream() {
    let (hangs, service) = hanging_service(Duration::from_secs(60));
    let body = r#"{"query": "What is Tokio?", "request_id": "ahead"}"#;
    let mut live = open(&service, body, None).await;
    let seen = read_frames(&mut live, 1).await;
    let key = key_of(&seen);
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    let e = start(&service, body, Some(&format!("{key}.99")), "")
        .await
        .unwrap_err();
    assert_eq!((e.status, e.code.as_str()), (400, "unsent_event_id"));
    assert!(e.message.contains("99"), "{}", e.message);
    // The live connection was not superseded: it still gets the search's end.
    service.streams().begin_shutdown();
    let rest = String::from_utf8(read_all(live).await).unwrap();
    assert!(rest.contains(r#""code": "shutdown""#), "{rest}");
    assert!(!rest.contains("superseded"), "{rest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_id_of_done_answers_204_and_a_missed_done_is_sent_again() {
    let (_tmp, service) = local_service(Duration::from_secs(60));
    let body = r#"{"query": "What is Tokio?", "request_id": "ended"}"#;
    let whole = read_all(open(&service, body, None).await).await;
    let key = key_of(&whole);
    let got = frames(&whole);
    let (done_id, done) = got.last().unwrap();
    assert_eq!(done, "[DONE]");
    let (last_id, _) = &got[got.len() - 2];
    assert_eq!(
        number(done_id),
        number(last_id) + 1,
        "[DONE] has an id of its own"
    );
    // A client that read [DONE] and reconnects (EventSource does) is told to stop.
    let reply = start(&service, body, Some(done_id), "").await.unwrap();
    assert!(matches!(reply, Reply::NoContent), "{reply:?}");
    // One that missed it gets it.
    let again = read_all(open(&service, body, Some(last_id)).await).await;
    assert_eq!(
        String::from_utf8(again).unwrap(),
        format!("retry: 3000\ndata: heartbeat\nid: {last_id}\n\ndata: [DONE]\nid: {done_id}\n\n")
    );
    assert!(done_id.starts_with(&key));
    // Past [DONE]'s id is an id never sent.
    let past = format!("{key}.{}", number(done_id) + 1);
    let e = start(&service, body, Some(&past), "").await.unwrap_err();
    assert_eq!(e.code.as_str(), "unsent_event_id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_waits_for_its_client_for_the_linger_then_is_abandoned() {
    let (hangs, service) = hanging_service(Duration::from_millis(300));
    let body = r#"{"query": "What is Tokio?", "request_id": "gone"}"#;
    let mut first = open(&service, body, None).await;
    let seen = read_frames(&mut first, 1).await;
    let key = key_of(&seen);
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    drop(first);
    // Back before the linger is over: the same search, still running.
    let mut back = open(&service, body, Some(&format!("{key}.1"))).await;
    assert!(
        hangs.dropped_at().is_none(),
        "the search went on without its client"
    );
    let more = read_frames(&mut back, 1).await;
    assert_eq!(frames(&more)[0].0, format!("{key}.2"));
    assert_eq!(service.open_streams(), 1);
    drop(back);
    // Nobody comes back: the search is cancelled and its log ends with `abandoned`.
    let deadline = Instant::now() + Duration::from_secs(10);
    while hangs.dropped_at().is_none() {
        assert!(Instant::now() < deadline, "the search was never cancelled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rest = read_all(open(&service, body, Some(&format!("{key}.2"))).await).await;
    let rest = frames(&rest);
    let error: Value = serde_json::from_str(&rest[rest.len() - 2].1).unwrap();
    assert_eq!(error["data"]["code"], "abandoned");
    assert_eq!(rest.last().unwrap().1, "[DONE]");
    let ids: Vec<u64> = rest
        .iter()
        .filter(|(id, _)| !id.is_empty())
        .map(|(id, _)| number(id))
        .collect();
    assert_eq!(ids.first(), Some(&3));
    assert!(frames(&seen)[0].1.contains("status"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while service.open_streams() != 0 {
        assert!(
            Instant::now() < deadline,
            "the search's slot was never freed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_takes_over_from_the_connection_before_it() {
    let (hangs, service) = hanging_service(Duration::from_secs(60));
    let body = r#"{"query": "What is Tokio?", "request_id": "twice"}"#;
    let mut old = open(&service, body, None).await;
    let key = key_of(&read_frames(&mut old, 1).await);
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    let mut new = open(&service, body, Some(&format!("{key}.1"))).await;
    let rest = read_all(old).await;
    let rest = frames(&rest);
    let error: Value = serde_json::from_str(&rest[rest.len() - 2].1).unwrap();
    assert_eq!(error["data"]["code"], "superseded");
    assert!(rest
        .iter()
        .all(|(id, data)| id.is_empty() || !data.contains("superseded")));
    assert_eq!(rest.last().unwrap(), &(String::new(), "[DONE]".to_string()));
    assert!(hangs.dropped_at().is_none());
    assert_eq!(
        frames(&read_frames(&mut new, 1).await)[0].0,
        format!("{key}.2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_log_which_stays_resumable() {
    let (hangs, service) = hanging_service(Duration::from_secs(60));
    let body = r#"{"query": "What is Tokio?", "request_id": "stop"}"#;
    let mut live = open(&service, body, None).await;
    let mut seen = read_at_least(&mut live, 1).await;
    let key = key_of(&seen);
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .unwrap();
    assert_eq!(service.streams().begin_shutdown(), 1);
    seen.extend(read_all(live).await);
    let got = frames(&seen);
    let error: Value = serde_json::from_str(&got[got.len() - 2].1).unwrap();
    assert_eq!(error["data"]["code"], "shutdown");
    let error_id = got[got.len() - 2].0.clone();
    assert!(
        !error_id.is_empty(),
        "the shutdown error is part of the log"
    );
    // Read again from the start: the same frames, the shutdown error included.
    let again = read_all(open(&service, body, Some(&format!("{key}.0"))).await).await;
    assert_eq!(raw_frames(&again), raw_frames(&seen));
}
