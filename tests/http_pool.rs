//! The shared client's connection pool is bounded: after a burst of concurrent engine
//! calls to one keep-alive server, at most `POOL_MAX_IDLE_PER_HOST` connections stay
//! open (each idle one keeps a read buffer as large as the answers it carried).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deepsearch_stream::http::POOL_MAX_IDLE_PER_HOST;
use deepsearch_stream::search::{build_engine, EngineConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A SearXNG JSON API that keeps connections alive and counts the open ones; each
/// answer comes after `delay`, so concurrent calls need connections of their own.
async fn keep_alive_engine(delay: Duration) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (open, accepted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (open_count, accepted_count) = (Arc::clone(&open), Arc::clone(&accepted));
    let results: Vec<serde_json::Value> = (0..20)
        .map(|n| {
            serde_json::json!({
                "title": format!("Result {n}"),
                "url": format!("https://example.org/{n}"),
                "content": "tokio ".repeat(500),
            })
        })
        .collect();
    let body = serde_json::to_vec(&serde_json::json!({ "results": results })).unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            open_count.fetch_add(1, Ordering::SeqCst);
            accepted_count.fetch_add(1, Ordering::SeqCst);
            let (open, body) = (Arc::clone(&open_count), body.clone());
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = conn.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    head.extend_from_slice(&buf[..n]);
                    // One GET at a time (no body): answer each head in full.
                    while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                        head.drain(..end + 4);
                        tokio::time::sleep(delay).await;
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                             Content-Length: {}\r\n\r\n",
                            body.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err()
                            || conn.write_all(&body).await.is_err()
                        {
                            break;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (url, open, accepted)
}

#[tokio::test]
async fn idle_engine_connections_are_capped_per_host() {
    let (url, open, accepted) = keep_alive_engine(Duration::from_millis(200)).await;
    let vars = HashMap::from([("SEARXNG_URL".to_string(), url)]);
    let mut cfg = EngineConfig::from_lookup(|name| vars.get(name).cloned());
    cfg.timeout = Some(Duration::from_secs(30));
    let engine = build_engine("searxng", &cfg).unwrap();
    let burst = 4 * POOL_MAX_IDLE_PER_HOST;
    let calls = (0..burst).map(|n| {
        let engine = Arc::clone(&engine);
        async move { engine.search(&format!("q{n}"), 5).await }
    });
    for result in futures::future::join_all(calls).await {
        assert_eq!(result.unwrap().len(), 5);
    }
    // The burst did open a connection per concurrent call...
    assert!(
        accepted.load(Ordering::SeqCst) > POOL_MAX_IDLE_PER_HOST,
        "only {} connections were opened: the burst did not overlap",
        accepted.load(Ordering::SeqCst)
    );
    // ...and the pool kept only its cap of them once they were idle.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while open.load(Ordering::SeqCst) > POOL_MAX_IDLE_PER_HOST
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        open.load(Ordering::SeqCst) <= POOL_MAX_IDLE_PER_HOST,
        "{} idle connections kept open, more than {POOL_MAX_IDLE_PER_HOST}",
        open.load(Ordering::SeqCst)
    );
}
