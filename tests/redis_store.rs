//! The Redis Streams replay store against a real `redis-server` started here on a free
//! port (no persistence). Two stores on one Redis stand for two instances behind a load
//! balancer: a log written on one is read, live, on the other; takeover, replacement,
//! a dead writer, trimming and a Redis that goes away keep the in-memory store's
//! contract.
//!
//! `redis-server` must be installed (`apt-get install redis-server`; `.ci/run` does):
//! without it these tests fail, they are not skipped.
#![cfg(feature = "redis")]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use deepsearch_stream::replay::{
    Entry, LogReader, RedisStore, RedisStoreError, ReplayConfig, ReplayError, ReplayStore,
};
use tempfile::TempDir;
use tokio::time::{timeout, Instant};

/// A `redis-server` of this test's own, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Redis {
    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = TempDir::new().unwrap();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "these tests need a real `redis-server` on the PATH and it could not be \
                     started ({e}): install it (Debian: apt-get install redis-server; .ci/run \
                     does)"
                )
            });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            port,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn config() -> ReplayConfig {
    ReplayConfig {
        linger: Duration::from_secs(60),
        ..ReplayConfig::default()
    }
}

async fn instance(redis: &Redis, config: ReplayConfig) -> RedisStore {
    RedisStore::connect(&redis.url(), config, Duration::from_secs(5))
        .await
        .unwrap()
}

fn frame(n: u64) -> Bytes {
    Bytes::from(format!("data: {{\"n\": {n}}}\n\n"))
}

/// Everything the reader gets until the end or an error, within 20 s.
async fn drain(reader: &mut Box<dyn LogReader>) -> (Vec<(u64, Bytes)>, Result<(), ReplayError>) {
    let mut got = Vec::new();
    let read = async {
        loop {
            match reader.next().await {
                Ok(Entry::Frame { id, body }) => got.push((id, body)),
                Ok(Entry::Done) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    };
    let end = timeout(Duration::from_secs(20), read)
        .await
        .expect("the reader hung");
    (got, end)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_another_instance_gets_the_log_then_the_live_rest() {
    let redis = Redis::start();
    let (a, b) = (
        instance(&redis, config()).await,
        instance(&redis, config()).await,
    );
    let writer = a.create("r1").await.unwrap();
    for id in 1..=3 {
        writer.append(id, frame(id)).await.unwrap();
    }
    let mut reader = b.attach("r1", 1).await.unwrap();
    let tail = tokio::spawn(async move { drain(&mut reader).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    for id in 4..=5 {
        writer.append(id, frame(id)).await.unwrap();
    }
    writer.finish(None).await.unwrap();
    let (got, end) = tail.await.unwrap();
    assert_eq!(end, Ok(()));
    let expected: Vec<(u64, Bytes)> = (2..=5).map(|id| (id, frame(id))).collect();
    assert_eq!(got, expected, "byte for byte, in order, once");
    // After the end: from the last frame, just the end; from the start, everything.
    let mut late = b.attach("r1", 5).await.unwrap();
    assert_eq!(late.next().await, Ok(Entry::Done));
    let mut again = b.attach("r1", 0).await.unwrap();
    assert_eq!(drain(&mut again).await.0.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_replaced_and_trimmed_logs() {
    let redis = Redis::start();
    let small = ReplayConfig {
        max_log_bytes: 3 * frame(1).len(),
        ..config()
    };
    let (a, b) = (
        instance(&redis, small.clone()).await,
        instance(&redis, small).await,
    );
    let e = b.attach("nope", 0).await.unwrap_err();
    assert_eq!((e.clone(), e.code()), (ReplayError::Expired, "expired"));

    let writer = a.create("r2").await.unwrap();
    for id in 1..=5 {
        writer.append(id, frame(id)).await.unwrap();
    }
    // Frames 1 and 2 were deleted for room: from before them is too late.
    assert_eq!(b.attach("r2", 0).await.unwrap_err(), ReplayError::Expired);
    let mut reader = b.attach("r2", 2).await.unwrap();
    for id in 3..=5 {
        assert_eq!(
            reader.next().await,
            Ok(Entry::Frame {
                id,
                body: frame(id)
            })
        );
    }
    // A new search of the same id, on the other instance: the reader and the old
    // writer learn they were replaced.
    let _new = b.create("r2").await.unwrap();
    assert_eq!(
        timeout(Duration::from_secs(5), reader.next())
            .await
            .unwrap(),
        Err(ReplayError::Replaced)
    );
    assert_eq!(writer.append(6, frame(6)).await, Err(ReplayError::Replaced));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_past_the_log_are_refused_without_a_takeover_on_either_instance() {
    let redis = Redis::start();
    let (a, b) = (
        instance(&redis, config()).await,
        instance(&redis, config()).await,
    );
    let writer = a.create("past").await.unwrap();
    for id in 1..=3 {
        writer.append(id, frame(id)).await.unwrap();
    }
    let mut reader = b.attach("past", 1).await.unwrap();
    for store in [&a, &b] {
        let e = store.attach("past", 4).await.unwrap_err();
        assert_eq!(e, ReplayError::Unsent { after: 4, last: 3 });
        assert_eq!(e.code(), "unsent_event_id");
    }
    // The reader attached before was not taken over.
    assert_eq!(
        reader.next().await,
        Ok(Entry::Frame {
            id: 2,
            body: frame(2)
        })
    );
    writer.finish(None).await.unwrap();
    // [DONE]'s id (last + 1) of an ended log: its end was read; past it, never sent.
    for store in [&a, &b] {
        assert_eq!(
            store.attach("past", 4).await.unwrap_err(),
            ReplayError::Finished
        );
        let e = store.attach("past", 5).await.unwrap_err();
        assert_eq!(e, ReplayError::Unsent { after: 5, last: 3 });
    }
    assert_eq!(
        reader.next().await,
        Ok(Entry::Frame {
            id: 3,
            body: frame(3)
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_on_one_instance_takes_over_from_a_reader_on_the_other() {
    let redis = Redis::start();
    let (a, b) = (
        instance(&redis, config()).await,
        instance(&redis, config()).await,
    );
    let writer = a.create("r3").await.unwrap();
    writer.append(1, frame(1)).await.unwrap();
    let mut on_a = a.attach("r3", 0).await.unwrap();
    assert_eq!(
        on_a.next().await.unwrap(),
        Entry::Frame {
            id: 1,
            body: frame(1)
        }
    );
    let mut on_b = b.attach("r3", 1).await.unwrap();
    let took = Instant::now();
    assert_eq!(
        timeout(Duration::from_secs(5), on_a.next()).await.unwrap(),
        Err(ReplayError::Superseded)
    );
    assert!(took.elapsed() < Duration::from_secs(3));
    // And back: a resume on A takes over from B.
    let mut back_on_a = a.attach("r3", 1).await.unwrap();
    assert_eq!(
        timeout(Duration::from_secs(5), on_b.next()).await.unwrap(),
        Err(ReplayError::Superseded)
    );
    writer.append(2, frame(2)).await.unwrap();
    assert_eq!(
        back_on_a.next().await.unwrap(),
        Entry::Frame {
            id: 2,
            body: frame(2)
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_whose_client_reads_on_another_instance_is_not_abandoned() {
    let redis = Redis::start();
    let lingering = ReplayConfig {
        linger: Duration::from_millis(500),
        ..config()
    };
    let (a, b) = (
        instance(&redis, lingering.clone()).await,
        instance(&redis, lingering).await,
    );
    let writer = a.create("r4").await.unwrap();
    writer.append(1, frame(1)).await.unwrap();
    drop(a.attach("r4", 0).await.unwrap());
    let mut on_b = b.attach("r4", 0).await.unwrap();
    let reading = tokio::spawn(async move {
        let _ = drain(&mut on_b).await;
    });
    // Three lingers long, the client reads on B: the search goes on.
    let unattended = writer.unattended();
    tokio::pin!(unattended);
    assert!(
        timeout(Duration::from_millis(1500), &mut unattended)
            .await
            .is_err(),
        "abandoned while its client read on another instance"
    );
    // It leaves: the linger runs out.
    reading.abort();
    let _ = reading.await;
    // Its last beat counts for the longer of the linger and the staleness limit (5 s).
    timeout(Duration::from_secs(10), unattended)
        .await
        .expect("never abandoned after its client left");
}

#[test]
fn a_killed_writer_ends_in_interrupted_for_a_reader_elsewhere_not_a_hang() {
    let redis = Redis::start();
    // Instance A on a runtime of its own: dropping the runtime stops its heartbeat
    // without the writer ending its log, as a SIGKILL would.
    let a_runtime = tokio::runtime::Runtime::new().unwrap();
    a_runtime.block_on(async {
        let a = instance(&redis, config()).await;
        let writer = a.create("r5").await.unwrap();
        for id in 1..=2 {
            writer.append(id, frame(id)).await.unwrap();
        }
        std::mem::forget(writer);
    });
    drop(a_runtime);
    let b_runtime = tokio::runtime::Runtime::new().unwrap();
    b_runtime.block_on(async {
        let b = instance(&redis, config()).await;
        let started = Instant::now();
        let mut reader = b.attach("r5", 0).await.unwrap();
        let (got, end) = drain(&mut reader).await;
        assert_eq!(end, Ok(()));
        let ids: Vec<u64> = got.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, [1, 2, 3]);
        let last = String::from_utf8(got[2].1.to_vec()).unwrap();
        assert!(last.contains(r#""code": "interrupted""#), "{last}");
        assert!(started.elapsed() < Duration::from_secs(10));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_dropped_mid_search_ends_the_shared_log_at_once() {
    let redis = Redis::start();
    let (a, b) = (
        instance(&redis, config()).await,
        instance(&redis, config()).await,
    );
    let writer = a.create("r6").await.unwrap();
    writer.append(1, frame(1)).await.unwrap();
    drop(writer);
    let started = Instant::now();
    let mut reader = b.attach("r6", 1).await.unwrap();
    let (got, end) = drain(&mut reader).await;
    assert_eq!(end, Ok(()));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, 2);
    assert!(String::from_utf8_lossy(&got[0].1).contains("interrupted"));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "waited for the heartbeat"
    );
}

fn store_errors() -> u64 {
    let text = deepsearch_stream::metrics::global().render();
    text.lines()
        .find_map(|l| l.strip_prefix("deepsearch_replay_store_errors_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_mid_stream_spares_the_live_stream() {
    let mut redis = Redis::start();
    let (a, b) = (
        instance(&redis, config()).await,
        instance(&redis, config()).await,
    );
    let errors_before = store_errors();
    let writer = a.create("r7").await.unwrap();
    let mut live = a.attach("r7", 0).await.unwrap();
    writer.append(1, frame(1)).await.unwrap();
    redis.kill();
    let started = Instant::now();
    for id in 2..=4 {
        writer.append(id, frame(id)).await.unwrap();
    }
    writer.finish(None).await.unwrap();
    let (got, end) = drain(&mut live).await;
    assert_eq!(end, Ok(()));
    assert_eq!(
        got.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the live path waited on Redis"
    );
    assert_eq!(store_errors(), errors_before + 1, "counted once per stream");
    // Resuming on the same instance still works (its own copy); elsewhere it cannot.
    let mut here = a.attach("r7", 2).await.unwrap();
    assert_eq!(drain(&mut here).await.0.len(), 2);
    let e = b.attach("r7", 2).await.unwrap_err();
    assert_eq!(e.code(), "resume_unavailable", "{e}");
}

#[tokio::test]
async fn an_unreachable_redis_is_a_clear_error_at_start() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://:secret@127.0.0.1:{port}/0");
    let started = Instant::now();
    let e = RedisStore::connect(&url, config(), Duration::from_secs(3))
        .await
        .unwrap_err();
    assert!(matches!(e, RedisStoreError::Unreachable { .. }), "{e:?}");
    let message = e.to_string();
    assert!(message.contains("cannot reach Redis"), "{message}");
    assert!(message.contains(&port.to_string()), "{message}");
    assert!(!message.contains("secret"), "{message}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let bad = RedisStore::connect("http://x", config(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(bad, RedisStoreError::InvalidUrl { .. }), "{bad:?}");
}

#[tokio::test]
async fn a_redis_password_is_never_in_an_error_however_the_url_is_written() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for url in [
        format!("redis://127.0.0.1:{port}/0?pass=s3cr3t"),
        format!("redis://127.0.0.1:{port}/0?db=0&password=s3cr3t"),
        format!("redis+unix:///tmp/none-{port}.sock?pass=s3cr3t"),
        format!("redis://u:s3cr3t@127.0.0.1:{port}:7/0"),
        "redis//:s3cr3t@127.0.0.1/0".to_string(),
        "redis://:s3cr3t@[::1/0".to_string(),
    ] {
        let e = RedisStore::connect(&url, config(), Duration::from_secs(2))
            .await
            .unwrap_err();
        let message = e.to_string();
        assert!(!message.contains("s3cr3t"), "{url}: {message}");
        assert!(!format!("{e:?}").contains("s3cr3t"), "{url}: {e:?}");
    }
}

/// Holds every client's commands for `ms` (`CLIENT PAUSE`): to the stores, Redis is away.
fn pause(redis: &Redis, ms: u64) {
    use std::io::{Read, Write};
    let mut conn = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
    conn.write_all(format!("CLIENT PAUSE {ms} ALL\r\n").as_bytes())
        .unwrap();
    let mut answer = [0u8; 5];
    conn.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"+OK\r\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_started_while_redis_is_away_is_never_served_an_older_log() {
    let redis = Redis::start();
    let (a, b) = (
        instance(&redis, config()).await,
        instance(&redis, config()).await,
    );
    // An earlier search of the same id, ended and logged.
    let old = a.create("r8").await.unwrap();
    old.append(1, frame(1)).await.unwrap();
    old.finish(None).await.unwrap();
    drop(old);
    // Redis stops answering longer than a command may wait: the new search's log
    // cannot be created there (its `create` reaches Redis only once the pause ends).
    pause(&redis, 2500);
    let writer = a.create("r8").await.unwrap();
    writer.append(1, frame(101)).await.unwrap();
    writer.finish(None).await.unwrap();
    // Here, the new search's own copy.
    let mut here = a.attach("r8", 0).await.unwrap();
    assert_eq!(drain(&mut here).await, (vec![(1, frame(101))], Ok(())));
    // Elsewhere, once Redis answers again (and the late `create` has run): told the
    // log is broken; never the older search's log, nor an empty one that ends in
    // `interrupted` after a wait.
    tokio::time::sleep(Duration::from_millis(2500 + 2500)).await;
    let started = Instant::now();
    let e = b.attach("r8", 0).await.unwrap_err();
    assert_eq!(e.code(), "resume_unavailable", "{e}");
    assert!(e.to_string().contains("lost its connection"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(1));
}
