use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;

use super::*;

fn config() -> ReplayConfig {
    ReplayConfig {
        ttl: Duration::from_secs(300),
        linger: Duration::from_secs(60),
        max_bytes: 1000,
        max_log_bytes: 500,
    }
}

fn frame(n: u64, len: usize) -> Bytes {
    let mut body = format!("data: {n}").into_bytes();
    body.resize(len.max(body.len()), b'.');
    Bytes::from(body)
}

/// Everything the reader gets until the end or an error.
async fn drain(reader: &mut Box<dyn LogReader>) -> (Vec<u64>, Result<(), ReplayError>) {
    let mut ids = Vec::new();
    loop {
        match reader.next().await {
            Ok(Entry::Frame { id, .. }) => ids.push(id),
            Ok(Entry::Done) => return (ids, Ok(())),
            Err(e) => return (ids, Err(e)),
        }
    }
}

#[tokio::test]
async fn a_reader_gets_every_frame_after_its_id_once_in_order() {
    let store = MemoryStore::new(config());
    let writer = store.create("r").await.unwrap();
    for id in 1..=5 {
        writer.append(id, frame(id, 10)).await.unwrap();
    }
    let mut from_start = store.attach("r", 0).await.unwrap();
    assert_eq!(
        from_start.next().await.unwrap(),
        Entry::Frame {
            id: 1,
            body: frame(1, 10)
        }
    );
    // A resume after 3 takes over: the first reader is told so.
    let mut resumed = store.attach("r", 3).await.unwrap();
    assert_eq!(from_start.next().await, Err(ReplayError::Superseded));
    // Live frames follow the replayed ones with no gap.
    let tail = tokio::spawn(async move { drain(&mut resumed).await });
    for id in 6..=8 {
        writer.append(id, frame(id, 10)).await.unwrap();
    }
    writer.finish(None).await.unwrap();
    assert_eq!(tail.await.unwrap(), (vec![4, 5, 6, 7, 8], Ok(())));
    // After the end, a resume past the last frame gets just the end.
    let mut late = store.attach("r", 8).await.unwrap();
    assert_eq!(late.next().await, Ok(Entry::Done));
}

#[tokio::test]
async fn unknown_ids_are_expired_and_a_new_search_replaces_the_log() {
    let store = MemoryStore::new(config());
    assert_eq!(
        store.attach("nope", 0).await.unwrap_err(),
        ReplayError::Expired
    );
    let old = store.create("r").await.unwrap();
    old.append(1, frame(1, 10)).await.unwrap();
    let mut reader = store.attach("r", 0).await.unwrap();
    let new = store.create("r").await.unwrap();
    assert_eq!(reader.next().await, Err(ReplayError::Replaced));
    assert_eq!(
        old.append(2, frame(2, 10)).await,
        Err(ReplayError::Replaced)
    );
    // The old search's linger watch fires at once: it is cancelled.
    assert!(old.unattended().now_or_never().is_some());
    new.append(1, frame(1, 20)).await.unwrap();
    assert_eq!(store.bytes(), 20);
    assert_eq!(store.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn ended_logs_expire_after_the_ttl() {
    let store = MemoryStore::new(config());
    let writer = store.create("r").await.unwrap();
    writer.append(1, frame(1, 10)).await.unwrap();
    writer.finish(None).await.unwrap();
    tokio::time::advance(Duration::from_secs(299)).await;
    let mut reader = store.attach("r", 0).await.unwrap();
    assert_eq!(drain(&mut reader).await, (vec![1], Ok(())));
    drop(reader);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(
        store.attach("r", 0).await.unwrap_err(),
        ReplayError::Expired
    );
    assert_eq!((store.len(), store.bytes()), (0, 0));
}

#[tokio::test]
async fn the_budget_evicts_ended_logs_oldest_first() {
    let store = MemoryStore::new(config());
    for name in ["a", "b", "c"] {
        let w = store.create(name).await.unwrap();
        w.append(1, frame(1, 300)).await.unwrap();
        w.finish(None).await.unwrap();
    }
    assert_eq!(store.bytes(), 900);
    // 900 + 250 > 1000: the oldest ended log ("a") goes, and only it.
    let live = store.create("d").await.unwrap();
    live.append(1, frame(1, 250)).await.unwrap();
    assert_eq!(
        store.attach("a", 0).await.unwrap_err(),
        ReplayError::Expired
    );
    assert!(store.attach("b", 0).await.is_ok());
    assert!(store.attach("c", 0).await.is_ok());
    assert_eq!(store.bytes(), 850);
}

#[tokio::test]
async fn a_full_log_waits_for_its_reader_then_drops_what_it_passed() {
    let store = MemoryStore::new(config());
    let writer = store.create("r").await.unwrap();
    let mut reader = store.attach("r", 0).await.unwrap();
    for id in 1..=5 {
        writer.append(id, frame(id, 100)).await.unwrap();
    }
    // The log is at its 500-byte cap and the reader has passed nothing: backpressure.
    let mut sixth = writer.append(6, frame(6, 100));
    assert!((&mut sixth).now_or_never().is_none());
    drop(sixth);
    // The reader takes two; those two may go now, and the writer goes on.
    assert!(matches!(
        reader.next().await,
        Ok(Entry::Frame { id: 1, .. })
    ));
    assert!(matches!(
        reader.next().await,
        Ok(Entry::Frame { id: 2, .. })
    ));
    writer.append(6, frame(6, 100)).await.unwrap();
    writer.append(7, frame(7, 100)).await.unwrap();
    assert!(store.bytes() <= 500);
    // Frames 1 and 2 are gone: resuming before them is too late, after them is fine.
    drop(reader);
    assert_eq!(
        store.attach("r", 0).await.unwrap_err(),
        ReplayError::Expired
    );
    let mut reader = store.attach("r", 2).await.unwrap();
    writer.finish(None).await.unwrap();
    assert_eq!(drain(&mut reader).await, (vec![3, 4, 5, 6, 7], Ok(())));
}

#[tokio::test]
async fn live_logs_over_the_global_budget_wait_rather_than_lose_frames() {
    let store = MemoryStore::new(config());
    let a = store.create("a").await.unwrap();
    let b = store.create("b").await.unwrap();
    for id in 1..=5 {
        a.append(id, frame(id, 100)).await.unwrap();
        b.append(id, frame(id, 100)).await.unwrap();
    }
    // 1000 bytes, no reader has passed anything, nothing has ended: `c` must wait.
    let c = store.create("c").await.unwrap();
    let store2 = store.clone();
    let waiting = tokio::spawn(async move {
        c.append(1, frame(1, 100)).await.unwrap();
        let mut reader = store2.attach("c", 0).await.unwrap();
        reader.next().await
    });
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished());
    // `a` ends: an ended log may be evicted, so `c` gets its room.
    a.finish(None).await.unwrap();
    assert!(matches!(
        waiting.await.unwrap(),
        Ok(Entry::Frame { id: 1, .. })
    ));
    assert_eq!(
        store.attach("a", 0).await.unwrap_err(),
        ReplayError::Expired
    );
    let mut all_of_b = store.attach("b", 0).await.unwrap();
    b.finish(None).await.unwrap();
    assert_eq!(drain(&mut all_of_b).await, (vec![1, 2, 3, 4, 5], Ok(())));
}

#[tokio::test(start_paused = true)]
async fn a_search_is_unattended_after_the_linger_without_a_reader() {
    let store = MemoryStore::new(config());
    let writer = store.create("r").await.unwrap();
    let reader = store.attach("r", 0).await.unwrap();
    let watch = writer.unattended();
    tokio::pin!(watch);
    tokio::time::advance(Duration::from_secs(600)).await;
    assert!(
        (&mut watch).now_or_never().is_none(),
        "a reader is attached"
    );
    drop(reader);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!((&mut watch).now_or_never().is_none());
    // A resume within the linger resets it.
    let back = store.attach("r", 0).await.unwrap();
    tokio::time::advance(Duration::from_secs(30)).await;
    drop(back);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert!(writer.unattended().now_or_never().is_none());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert!(writer.unattended().now_or_never().is_some());
}

#[tokio::test]
async fn the_final_frame_goes_in_even_over_the_budget() {
    let store = MemoryStore::new(config());
    let writer = store.create("r").await.unwrap();
    for id in 1..=5 {
        writer.append(id, frame(id, 100)).await.unwrap();
    }
    writer.finish(Some((6, frame(6, 50)))).await.unwrap();
    let mut reader = store.attach("r", 5).await.unwrap();
    assert_eq!(
        reader.next().await,
        Ok(Entry::Frame {
            id: 6,
            body: frame(6, 50)
        })
    );
    assert_eq!(reader.next().await, Ok(Entry::Done));
}

#[test]
fn configs_are_checked() {
    assert!(ReplayConfig::default().validate().is_ok());
    let zero = ReplayConfig {
        max_bytes: 0,
        ..ReplayConfig::default()
    };
    assert!(zero.validate().is_err());
    let inverted = ReplayConfig {
        max_bytes: 10,
        max_log_bytes: 11,
        ..ReplayConfig::default()
    };
    assert!(inverted.validate().is_err());
}

#[tokio::test]
async fn a_writer_dropped_before_the_end_ends_its_log_with_an_error() {
    let store = MemoryStore::new(config());
    let writer = store.create("r").await.unwrap();
    writer.append(1, frame(1, 10)).await.unwrap();
    let mut reader = store.attach("r", 0).await.unwrap();
    drop(writer);
    assert!(matches!(
        reader.next().await,
        Ok(Entry::Frame { id: 1, .. })
    ));
    let Ok(Entry::Frame { id: 2, body }) = reader.next().await else {
        panic!("expected the error frame");
    };
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains(r#""code": "interrupted""#), "{text}");
    assert_eq!(reader.next().await, Ok(Entry::Done));
}

#[tokio::test(start_paused = true)]
async fn an_ended_log_is_dropped_when_its_ttl_is_up_with_nothing_else_happening() {
    let store = MemoryStore::new(ReplayConfig {
        ttl: Duration::from_secs(2),
        ..config()
    });
    let first = store.create("a").await.unwrap();
    first.append(1, frame(1, 10)).await.unwrap();
    first.finish(None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = store.create("b").await.unwrap();
    second.finish(None).await.unwrap();
    assert_eq!(store.len(), 2);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // `len` does not expire anything itself: the timer did.
    assert_eq!(store.len(), 1, "the first log outlived its ttl");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((store.len(), store.bytes()), (0, 0));
    // And it starts again for a log ending later.
    let third = store.create("c").await.unwrap();
    third.finish(None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(store.is_empty());
}
