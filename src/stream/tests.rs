use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::time::Instant;

use super::*;
use crate::message::Envelope;

fn cfg() -> StreamConfig {
    StreamConfig::default()
}

fn text(b: &Bytes) -> &str {
    std::str::from_utf8(b).unwrap()
}

/// Splits a chunk into frames (each ends with a blank line).
fn frames(b: &Bytes) -> Vec<String> {
    text(b)
        .split_inclusive("\n\n")
        .map(str::to_string)
        .collect()
}

/// The ids of frames (their `id:` line is their last line).
fn ids(frames: &[String]) -> Vec<u64> {
    frames
        .iter()
        .filter_map(|f| f.lines().find_map(|l| l.strip_prefix("id: ")))
        .map(|id| id.parse().unwrap())
        .collect()
}

async fn drain(rx: &mut EventStream) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(chunk) = rx.next().await {
        out.extend(frames(&chunk));
    }
    out
}

#[tokio::test]
async fn exact_frames_for_messages_and_done() {
    let (tx, mut rx) = EventStream::new("req-1", cfg()).unwrap();
    let env = Envelope::new("status", "开始搜索...", "req-1").at(1.5);
    let body = tx.encode(&env).unwrap();
    tx.send_encoded(body).await.unwrap();
    tx.complete().unwrap();
    let all = drain(&mut rx).await;
    assert_eq!(
        all,
        vec![
            "data: {\"type\": \"status\", \"data\": \"开始搜索...\", \"requestId\": \"req-1\", \"timestamp\": 1.5}\nid: 1\n\n"
                .to_string(),
            "data: [DONE]\n\n".to_string(),
        ]
    );
}

#[tokio::test]
async fn ids_are_monotonic_and_order_is_kept() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    for i in 0..50 {
        tx.send("n", &i).await.unwrap();
    }
    tx.complete().unwrap();
    let all = drain(&mut rx).await;
    assert_eq!(ids(&all), (1..=50).collect::<Vec<_>>());
    for (i, f) in all.iter().take(50).enumerate() {
        assert!(f.contains(&format!("\"data\": {i}, ")), "{f}");
    }
    assert_eq!(all.last().unwrap(), "data: [DONE]\n\n");
}

#[tokio::test]
async fn buffered_frames_are_coalesced_up_to_the_chunk_cap() {
    let config = StreamConfig {
        max_chunk_bytes: 400,
        ..cfg()
    };
    let (tx, rx) = EventStream::new("r", config).unwrap();
    for i in 0..10 {
        tx.send("n", &i).await.unwrap();
    }
    let TryChunk::Chunk(first) = rx.try_next_chunk() else {
        panic!("expected a chunk")
    };
    assert!(first.len() <= 400, "{}", first.len());
    let got = frames(&first).len();
    assert!((2..10).contains(&got), "coalesced {got} frames");
    let mut total = got;
    while let TryChunk::Chunk(c) = rx.try_next_chunk() {
        total += frames(&c).len();
    }
    assert_eq!(total, 10);
    assert_eq!(rx.stats().messages_sent, 10);
}

#[tokio::test]
async fn backpressure_waits_and_loses_nothing() {
    let config = StreamConfig {
        max_pending: 4,
        ..cfg()
    };
    let (tx, mut rx) = EventStream::new("r", config).unwrap();
    let peak = Arc::new(AtomicUsize::new(0));
    let producer = {
        let tx = tx.clone();
        let peak = peak.clone();
        tokio::spawn(async move {
            for i in 0..200u32 {
                tx.send("n", &i).await.unwrap();
                peak.fetch_max(tx.stats().pending as usize, Ordering::Relaxed);
            }
            tx.complete().unwrap();
        })
    };
    drop(tx);
    let mut all = Vec::new();
    while let Some(chunk) = rx.next().await {
        all.extend(frames(&chunk));
        // A slow reader: the producer must wait for us.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    producer.await.unwrap();
    assert_eq!(ids(&all), (1..=200).collect::<Vec<_>>());
    assert!(peak.load(Ordering::Relaxed) <= 4);
    assert!(rx.stats().blocked > Duration::ZERO);
}

#[tokio::test]
async fn try_send_reports_full_by_count_and_by_bytes() {
    let config = StreamConfig {
        max_pending: 3,
        max_pending_bytes: 1000,
        ..cfg()
    };
    let (tx, rx) = EventStream::new("r", config).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            tx.try_send_encoded(b"data: x\n\n".to_vec()).unwrap(),
            TrySend::Sent(_)
        ));
    }
    let TrySend::Full(back) = tx.try_send_encoded(b"data: y\n\n".to_vec()).unwrap() else {
        panic!("expected Full")
    };
    assert_eq!(back, b"data: y\n\n");
    while let TryChunk::Chunk(_) = rx.try_next_chunk() {}

    let big = vec![b'a'; 600];
    assert!(matches!(
        tx.try_send_encoded(big.clone()).unwrap(),
        TrySend::Sent(_)
    ));
    assert!(matches!(
        tx.try_send_encoded(big.clone()).unwrap(),
        TrySend::Full(_)
    ));
    while let TryChunk::Chunk(_) = rx.try_next_chunk() {}
    // Larger than the whole byte cap: accepted alone, so it can never deadlock.
    assert!(matches!(
        tx.try_send_encoded(vec![b'a'; 5000]).unwrap(),
        TrySend::Sent(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn heartbeat_only_when_idle_and_on_time() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    let start = Instant::now();
    let hb = rx.next().await.unwrap();
    assert_eq!(text(&hb), "data: heartbeat\n\n");
    assert_eq!(start.elapsed(), Duration::from_secs(10));

    // Data every 4 s for a minute: no heartbeat in between.
    let producer = tokio::spawn(async move {
        for i in 0..15 {
            tokio::time::sleep(Duration::from_secs(4)).await;
            tx.send("tick", &i).await.unwrap();
        }
        tx.complete().unwrap();
    });
    let all = drain(&mut rx).await;
    producer.await.unwrap();
    assert!(all.iter().all(|f| !f.contains("heartbeat")), "{all:?}");
    assert_eq!(ids(&all).len(), 15);
    assert_eq!(rx.stats().heartbeats, 1);
}

#[tokio::test(start_paused = true)]
async fn heartbeat_as_comment_and_disabled() {
    let config = StreamConfig {
        heartbeat: Some(Duration::from_secs(2)),
        heartbeat_format: HeartbeatFormat::Comment,
        ..cfg()
    };
    let (_tx, mut rx) = EventStream::new("r", config).unwrap();
    assert_eq!(text(&rx.next().await.unwrap()), ": heartbeat\n\n");
    assert_eq!(text(&rx.next().await.unwrap()), ": heartbeat\n\n");

    let config = StreamConfig {
        heartbeat: None,
        timeout: Some(Duration::from_secs(30)),
        ..cfg()
    };
    let (_tx, mut rx) = EventStream::new("r", config).unwrap();
    let first = rx.next().await.unwrap();
    assert!(
        text(&first).contains("\"code\": \"timeout\""),
        "{}",
        text(&first)
    );
}

#[tokio::test(start_paused = true)]
async fn timeout_sends_error_then_done_and_fires_hook() {
    let config = StreamConfig {
        timeout: Some(Duration::from_secs(5)),
        heartbeat: None,
        ..cfg()
    };
    let (tx, mut rx) = EventStream::new("r", config).unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    rx.on_timeout(move |reason| {
        assert_eq!(*reason, EndReason::TimedOut);
        f.store(true, Ordering::SeqCst);
    });
    tx.send("status", "working").await.unwrap();
    let all = drain(&mut rx).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all[1].starts_with("data: {\"type\": \"error\", \"data\": {\"message\": \"stream timed out after 5 s\", \"code\": \"timeout\"}"));
    assert!(all[1].ends_with("\"isFinal\": true}\nid: 2\n\n"));
    assert_eq!(all[2], "data: [DONE]\n\n");
    assert!(fired.load(Ordering::SeqCst));
    assert_eq!(tx.send("late", "x").await, Err(StreamError::TimedOut));
}

#[tokio::test(start_paused = true)]
async fn a_blocked_producer_sees_the_timeout() {
    let config = StreamConfig {
        timeout: Some(Duration::from_secs(5)),
        max_pending: 1,
        ..cfg()
    };
    let (tx, _rx) = EventStream::new("r", config).unwrap();
    tx.send("a", "1").await.unwrap();
    // Nobody reads: the second send waits until the deadline, then fails.
    assert_eq!(tx.send("b", "2").await, Err(StreamError::TimedOut));
}

#[tokio::test]
async fn fail_sends_error_then_done_and_fires_error_hook() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(None));
    let s = seen.clone();
    rx.on_error(move |reason| *s.lock().unwrap() = Some(reason.clone()));
    rx.on_completion(|_| panic!("not a completion"));
    tx.fail("engine exploded", "search_failed").unwrap();
    assert_eq!(tx.complete(), Err(StreamError::Ended));
    let all = drain(&mut rx).await;
    assert_eq!(all.len(), 2);
    assert!(all[0].contains("{\"message\": \"engine exploded\", \"code\": \"search_failed\"}"));
    assert!(all[0].contains("\"isFinal\": true"));
    assert_eq!(all[1], "data: [DONE]\n\n");
    assert_eq!(
        *seen.lock().unwrap(),
        Some(EndReason::Failed {
            message: "engine exploded".into(),
            code: "search_failed".into()
        })
    );
}

#[tokio::test]
async fn completion_hook_fires_once_done_is_taken() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    rx.on_completion(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
    });
    tx.send("a", "1").await.unwrap();
    tx.complete().unwrap();
    assert_eq!(
        count.load(Ordering::SeqCst),
        0,
        "not before the consumer has [DONE]"
    );
    drain(&mut rx).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
    assert!(rx.next().await.is_none());
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn dropping_every_sender_ends_the_stream_with_an_error() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    let tx2 = tx.clone();
    tx.send("a", "1").await.unwrap();
    drop(tx);
    tx2.send("b", "2").await.unwrap();
    drop(tx2);
    let all = drain(&mut rx).await;
    assert_eq!(ids(&all), vec![1, 2, 3]);
    assert!(all[2].contains("\"code\": \"producer_gone\""));
    assert_eq!(all[3], "data: [DONE]\n\n");
}

#[tokio::test]
async fn consumer_gone_wakes_a_blocked_producer_and_cancels_the_task() {
    let config = StreamConfig {
        max_pending: 2,
        ..cfg()
    };
    let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<StreamError>();
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    struct OnDrop(Option<tokio::sync::oneshot::Sender<()>>);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take() {
                let _ = tx.send(());
            }
        }
    }
    let rx = EventStream::spawn("r", config, move |tx| async move {
        let _guard = OnDrop(Some(dropped_tx));
        let mut stopped = Some(stopped_tx);
        for i in 0.. {
            if let Err(e) = tx.send("n", &i).await {
                if let Some(s) = stopped.take() {
                    let _ = s.send(e);
                }
                // A misbehaving producer that ignores the error: the abort must stop it.
                std::future::pending::<()>().await;
            }
        }
        Ok(())
    })
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(
        rx.stats().pending,
        2,
        "producer is blocked on a full buffer"
    );
    drop(rx);
    let limit = Duration::from_millis(100);
    match tokio::time::timeout(limit, stopped_rx).await {
        Ok(Ok(e)) => assert_eq!(e, StreamError::ConsumerGone),
        Ok(Err(_)) => {} // the abort landed before the producer saw the error: also right
        Err(_) => panic!("the blocked producer was not woken within 100 ms"),
    }
    tokio::time::timeout(limit, dropped_rx)
        .await
        .expect("producer task cancelled within 100 ms")
        .unwrap();
}

#[tokio::test]
async fn close_is_idempotent_and_sends_fail_after_it() {
    let (tx, rx) = EventStream::new("r", cfg()).unwrap();
    tx.send("a", "1").await.unwrap();
    rx.close();
    rx.close();
    assert_eq!(rx.try_next_chunk(), TryChunk::Ended);
    assert_eq!(tx.send("b", "2").await, Err(StreamError::ConsumerGone));
    assert!(tx.is_closed());
    tokio::time::timeout(Duration::from_secs(1), tx.closed())
        .await
        .unwrap();
}

#[tokio::test]
async fn spawn_completes_or_fails_from_the_result() {
    let mut ok = EventStream::spawn("r", cfg(), |tx| async move {
        tx.send("a", "1").await?;
        Ok(())
    })
    .unwrap();
    assert_eq!(drain(&mut ok).await.last().unwrap(), "data: [DONE]\n\n");

    let mut bad = EventStream::spawn("r", cfg(), |_tx| async move {
        Err(Failure::new("no engines", "config"))
    })
    .unwrap();
    let all = drain(&mut bad).await;
    assert!(all[0].contains("{\"message\": \"no engines\", \"code\": \"config\"}"));
}

#[test]
fn bad_configuration_is_an_error() {
    for config in [
        StreamConfig {
            max_pending: 0,
            ..cfg()
        },
        StreamConfig {
            max_pending_bytes: 0,
            ..cfg()
        },
        StreamConfig {
            max_chunk_bytes: 0,
            ..cfg()
        },
        StreamConfig {
            heartbeat: Some(Duration::ZERO),
            ..cfg()
        },
        StreamConfig {
            timeout: Some(Duration::ZERO),
            ..cfg()
        },
    ] {
        assert!(matches!(
            EventStream::new("r", config),
            Err(StreamError::Config(_))
        ));
    }
}

#[tokio::test]
async fn memory_stays_bounded_under_a_fast_producer() {
    let config = StreamConfig {
        max_pending: 1000,
        max_pending_bytes: 16 << 10,
        ..cfg()
    };
    let (tx, mut rx) = EventStream::new("r", config).unwrap();
    let producer = tokio::spawn(async move {
        let payload = "x".repeat(200);
        for _ in 0..2000 {
            tx.send("n", &payload).await.unwrap();
            assert!(tx.shared.lock().pending_bytes <= 16 << 10);
        }
        tx.complete().unwrap();
    });
    let all = drain(&mut rx).await;
    producer.await.unwrap();
    assert_eq!(ids(&all).len(), 2000);
}

#[tokio::test(start_paused = true)]
async fn closing_from_another_task_ends_a_pending_read_at_once() {
    let config = StreamConfig {
        heartbeat: Some(Duration::from_secs(3600)),
        ..cfg()
    };
    let (_tx, mut rx) = EventStream::new("r", config).unwrap();
    let close = rx.close_handle();
    let started = Instant::now();
    let reader = tokio::spawn(async move { rx.next().await });
    tokio::task::yield_now().await;
    assert!(!reader.is_finished(), "nothing to read yet");
    close.close();
    let got = tokio::time::timeout(Duration::from_secs(1), reader)
        .await
        .expect("the pending read ended when the stream was closed")
        .unwrap();
    assert!(got.is_none());
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn frames_come_out_typed_one_by_one_without_heartbeats() {
    let config = StreamConfig {
        heartbeat: Some(Duration::from_millis(10)),
        timeout: Some(Duration::from_secs(1)),
        ..cfg()
    };
    let (tx, mut rx) = EventStream::new("r", config).unwrap();
    tx.send("status", "a").await.unwrap();
    tx.send("status", "b").await.unwrap();
    for want in [1, 2] {
        let Some(QueuedFrame::Numbered { id, body }) = rx.next_frame().await else {
            panic!("expected frame {want}");
        };
        assert_eq!(id, want);
        assert!(
            text(&body).starts_with("data: {\"type\": \"status\""),
            "{body:?}"
        );
        assert!(text(&body).ends_with("}\n\n"));
    }
    // Idle past many heartbeat intervals: nothing but the timeout's frames comes out.
    let Some(QueuedFrame::Numbered { id, body }) = rx.next_frame().await else {
        panic!("expected the timeout's error");
    };
    assert_eq!(id, 3);
    assert!(text(&body).contains(r#""code": "timeout""#), "{body:?}");
    assert_eq!(rx.next_frame().await, Some(QueuedFrame::Done));
    assert_eq!(rx.next_frame().await, None);
    assert!(rx.is_finished());
    assert_eq!(rx.stats().heartbeats, 0);
    assert_eq!(rx.stats().messages_sent, 3);
}

#[tokio::test]
async fn without_the_done_frame_a_stream_ends_with_its_last_frame() {
    let config = StreamConfig {
        done_frame: false,
        ..cfg()
    };
    let (tx, rx) = EventStream::new("r", config).unwrap();
    tx.send_frame(FrameId::Unnumbered, b"data: {}\n\n".to_vec())
        .await
        .unwrap();
    tx.complete().unwrap();
    let body: Vec<u8> = rx.collect::<Vec<_>>().await.concat();
    assert_eq!(body, b"data: {}\n\n");
}

#[tokio::test]
async fn a_resumable_stream_opens_with_retry_and_numbers_its_done() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    rx.make_resumable("k".into(), 0, Some(Duration::from_millis(2500)));
    tx.send("status", "one").await.unwrap();
    tx.complete_numbered().unwrap();
    let all = drain(&mut rx).await;
    assert_eq!(all.len(), 3, "{all:?}");
    assert_eq!(all[0], "retry: 2500\ndata: heartbeat\nid: k.0\n\n");
    assert!(all[1].starts_with("data: {") && all[1].ends_with("}\nid: k.1\n\n"));
    assert_eq!(all[2], "data: [DONE]\nid: k.2\n\n");
    let stats = rx.stats();
    assert_eq!((stats.messages_sent, stats.heartbeats), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn a_failed_resumable_stream_ends_with_an_unnumbered_done() {
    let (tx, mut rx) = EventStream::new("r", cfg()).unwrap();
    rx.make_resumable("k".into(), 3, None);
    tx.fail("broke", "x").unwrap();
    let all = drain(&mut rx).await;
    assert_eq!(all[0], "data: heartbeat\nid: k.3\n\n");
    assert!(
        all[1].ends_with("\nid: k.4\n\n"),
        "ids go on after 3: {all:?}"
    );
    assert_eq!(all[2], "data: [DONE]\n\n");
}
