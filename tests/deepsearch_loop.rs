//! Semantics of the DeepSearch loop on scripted engines: rounds, early stop, dedup,
//! order, warnings, cancellation, stream_mode and citations.

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deepsearch_stream::deepsearch::{
    Batching, Brain, DeepSearch, DeepSearchError, Filter, Locale, Message, Request, Settings,
    StreamMode,
};
use deepsearch_stream::search::{Document, SearchEngine, SearchError};
use deepsearch_stream::sse::decode_all;
use deepsearch_stream::stream::StreamConfig;
use futures::future::BoxFuture;
use futures::StreamExt;
use tokio::time::Instant;

use support::hangs::Hangs;

type Script = dyn Fn(&str) -> Result<Vec<Document>, SearchError> + Send + Sync;

/// An engine answering from a closure after a delay, recording every query it is asked.
struct Scripted {
    name: String,
    delay: Box<dyn Fn(&str) -> Duration + Send + Sync>,
    script: Box<Script>,
    calls: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Scripted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripted")
            .field("name", &self.name)
            .finish()
    }
}

impl Scripted {
    fn new(
        name: &str,
        script: impl Fn(&str) -> Result<Vec<Document>, SearchError> + Send + Sync + 'static,
    ) -> Arc<Scripted> {
        Self::slow(name, |_| Duration::ZERO, script)
    }

    fn slow(
        name: &str,
        delay: impl Fn(&str) -> Duration + Send + Sync + 'static,
        script: impl Fn(&str) -> Result<Vec<Document>, SearchError> + Send + Sync + 'static,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            name: name.into(),
            delay: Box::new(delay),
            script: Box::new(script),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl SearchEngine for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        _limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        self.calls.lock().unwrap().push(query.to_string());
        Box::pin(async move {
            let delay = (self.delay)(query);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            (self.script)(query)
        })
    }
}

fn doc(title: &str, url: &str, content: &str) -> Document {
    Document {
        title: title.into(),
        url: url.into(),
        snippet: content.chars().take(80).collect(),
        content: content.into(),
        score: 1.0,
    }
}

fn service(engines: Vec<Arc<Scripted>>, settings: Settings) -> DeepSearch {
    let engines = engines
        .into_iter()
        .map(|e| e as Arc<dyn SearchEngine>)
        .collect();
    DeepSearch::new(engines, Brain::Offline, settings).unwrap()
}

async fn collect(ds: &DeepSearch, req: Request) -> Vec<Message> {
    let mut out = Vec::new();
    ds.run(&req, &mut out).await.unwrap();
    out
}

fn kinds(messages: &[Message]) -> Vec<&'static str> {
    messages.iter().map(Message::kind).collect()
}

fn plans(messages: &[Message]) -> Vec<Vec<String>> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Plan(p) => Some(p.queries.clone()),
            _ => None,
        })
        .collect()
}

fn final_of(messages: &[Message]) -> &deepsearch_stream::deepsearch::FinalData {
    match messages.last() {
        Some(Message::Final(f)) => f,
        other => panic!("last message is not final: {other:?}"),
    }
}

const TOKIO: &str = "Tokio is an asynchronous runtime for the Rust programming language. \
                     It provides the building blocks for writing network applications.";

#[tokio::test]
async fn stops_early_when_the_first_round_answers() {
    let engine = Scripted::new("web", |_| {
        Ok(vec![doc("Tokio", "https://tokio.rs/", TOKIO)])
    });
    let ds = service(vec![engine.clone()], Settings::default());
    let messages = collect(&ds, Request::new("What is Tokio?").max_loop(5)).await;
    let k = kinds(&messages);
    assert_eq!(k.first(), Some(&"status"));
    assert_eq!(plans(&messages).len(), 1, "{k:?}");
    let fin = final_of(&messages);
    assert_eq!(fin.loops, 1);
    assert!(
        fin.answer.contains("asynchronous runtime"),
        "{}",
        fin.answer
    );
    assert_eq!(fin.sources.len(), 1);
    let answer: String = messages
        .iter()
        .filter_map(|m| match m {
            Message::Answer(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(answer, fin.answer, "the pieces add up to the final answer");
}

#[tokio::test]
async fn runs_at_most_max_loop_rounds_and_never_repeats_a_query() {
    // Every page covers one term of the question only, so every round plans gap queries.
    let engine = Scripted::new("web", |q| {
        Ok(vec![doc(
            "Partial",
            &format!("https://example.com/{}", q.len()),
            &format!(
                "Kubernetes runs containers on cluster number {} of many.",
                q.len()
            ),
        )])
    });
    let ds = service(vec![engine.clone()], Settings::default());
    let query = "How do Kubernetes operators reconcile custom resources with etcd?";
    for max_loop in [1, 2, 3] {
        let messages = collect(&ds, Request::new(query).max_loop(max_loop)).await;
        let fin = final_of(&messages);
        assert!(fin.loops <= max_loop);
        assert_eq!(plans(&messages).len(), fin.loops);
        assert_eq!(fin.loops, max_loop, "gaps remain, so every round runs");
        let normalized: Vec<String> = fin
            .queries
            .iter()
            .map(|q| deepsearch_stream::deepsearch::offline::normalize_query(q))
            .collect();
        let unique: HashSet<&String> = normalized.iter().collect();
        assert_eq!(unique.len(), normalized.len(), "{:?}", fin.queries);
        let planned: Vec<String> = plans(&messages).concat();
        assert_eq!(planned, fin.queries);
    }
    let calls = engine.calls();
    assert!(calls.len() >= 6);
}

#[tokio::test]
async fn same_page_from_two_engines_is_reported_once_in_subquery_order() {
    // The first sub-query is the slowest: completion order must not change the report.
    let a = Scripted::slow(
        "alpha",
        |q| {
            if q.contains("TCP") && q.contains("UDP") {
                Duration::from_millis(150)
            } else {
                Duration::ZERO
            }
        },
        |q| {
            Ok(vec![doc(
                &format!("alpha {q}"),
                &format!("https://www.example.com/{}/?utm_source=x", q.len()),
                &format!("{q} explained by alpha: a long enough passage about networking."),
            )])
        },
    );
    let b = Scripted::new("beta", |q| {
        Ok(vec![
            doc(
                "beta same page",
                &format!("https://EXAMPLE.com/{}", q.len()),
                "A different text for the same page, long enough to have a fingerprint.",
            ),
            doc(
                "beta mirror",
                "https://mirror.example/copy",
                "TCP is connection-oriented; UDP is connectionless and unordered.",
            ),
        ])
    });
    let ds = service(vec![a, b], Settings::default());
    let messages = collect(
        &ds,
        Request::new("What is the difference between TCP and UDP?").max_loop(1),
    )
    .await;
    let plan = plans(&messages).remove(0);
    let inter = messages
        .iter()
        .find_map(|m| match m {
            Message::Intermediate(i) => Some(i),
            _ => None,
        })
        .unwrap();
    let reported: Vec<&str> = inter.results.iter().map(|r| r.query.as_str()).collect();
    assert_eq!(
        reported,
        plan.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let mut urls = HashSet::new();
    for r in &inter.results {
        for d in &r.docs {
            let key = deepsearch_stream::deepsearch::normalize_url(&d.url);
            assert!(urls.insert(key), "duplicate {}", d.url);
        }
    }
    let first = &inter.results[0].docs;
    assert_eq!(first[0].engine, "alpha", "alpha is listed first");
    assert_eq!(first[1].engine, "beta");
    assert_eq!(
        first[1].title, "beta mirror",
        "beta's copy of alpha's page is dropped"
    );
    let mirror_hits: usize = inter
        .results
        .iter()
        .flat_map(|r| &r.docs)
        .filter(|d| d.url == "https://mirror.example/copy")
        .count();
    assert_eq!(mirror_hits, 1, "credited to the first sub-query only");
}

#[tokio::test]
async fn failing_and_slow_engines_become_warnings() {
    let good = Scripted::new("good", |_| {
        Ok(vec![doc("Tokio", "https://tokio.rs/", TOKIO)])
    });
    let broken = Scripted::new("broken", |_| {
        Err(SearchError::Status {
            status: 500,
            body: "boom".into(),
        })
    });
    let slow = Scripted::slow("slow", |_| Duration::from_secs(30), |_| Ok(Vec::new()));
    let settings = Settings {
        engine_timeout: Duration::from_millis(200),
        ..Settings::default()
    };
    let ds = service(vec![good, broken, slow], settings);
    let started = Instant::now();
    let messages = collect(&ds, Request::new("What is Tokio?").max_loop(1)).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the slow engine was not waited for"
    );
    let warnings: Vec<_> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Warning(w) => Some(w),
            _ => None,
        })
        .collect();
    let n_queries = plans(&messages)[0].len();
    assert_eq!(warnings.len(), 2 * n_queries);
    assert_eq!(warnings[0].engine, "broken");
    assert!(
        warnings[0].message.contains("HTTP 500"),
        "{}",
        warnings[0].message
    );
    assert_eq!(warnings[1].engine, "slow");
    assert!(
        warnings[1].message.contains("timed out"),
        "{}",
        warnings[1].message
    );
    assert_eq!(warnings[0].query, plans(&messages)[0][0]);
    assert!(final_of(&messages).answer.contains("Tokio"));
}

#[tokio::test]
async fn stream_mode_filters_and_batches() {
    let engine = Scripted::new("web", |_| {
        Ok(vec![doc("Tokio", "https://tokio.rs/", TOKIO)])
    });
    let ds = service(vec![engine], Settings::default());
    let req = |mode| Request::new("What is Tokio?").mode(mode);
    let fin_only = collect(
        &ds,
        req(StreamMode {
            filter: Filter::Final,
            ..StreamMode::default()
        }),
    )
    .await;
    assert_eq!(kinds(&fin_only), ["status", "final"]);
    let inter = collect(
        &ds,
        req(StreamMode {
            filter: Filter::Intermediate,
            ..StreamMode::default()
        }),
    )
    .await;
    assert!(!kinds(&inter).contains(&"answer"));
    assert!(kinds(&inter).contains(&"intermediate"));
    let all = collect(&ds, req(StreamMode::default())).await;
    let general = kinds(&all).iter().filter(|k| **k == "answer").count();
    let batched = collect(
        &ds,
        req(StreamMode {
            filter: Filter::All,
            batching: Batching::Tokens(4),
        }),
    )
    .await;
    let pieces: Vec<&str> = batched
        .iter()
        .filter_map(|m| match m {
            Message::Answer(t) => Some(t.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(pieces.len(), general.div_ceil(4));
    assert_eq!(pieces.concat(), final_of(&batched).answer);
}

#[tokio::test]
async fn citations_name_only_retrieved_documents() {
    let engine = Scripted::new("web", |q| {
        Ok(vec![
            doc("Tokio", "https://tokio.rs/", TOKIO),
            doc(
                "async-std",
                &format!("https://async.rs/{}", q.len()),
                "async-std is another asynchronous runtime for Rust, modelled on the standard library.",
            ),
        ])
    });
    let ds = service(vec![engine], Settings::default());
    let messages = collect(
        &ds,
        Request::new("Which asynchronous runtimes exist for Rust?"),
    )
    .await;
    let retrieved: HashSet<String> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Intermediate(i) => Some(i),
            _ => None,
        })
        .flat_map(|i| {
            i.results
                .iter()
                .flat_map(|r| r.docs.iter().map(|d| d.url.clone()))
        })
        .collect();
    let fin = final_of(&messages);
    assert!(!fin.sources.is_empty());
    for (i, s) in fin.sources.iter().enumerate() {
        assert_eq!(s.id, i + 1);
        assert!(retrieved.contains(&s.url), "{} was never retrieved", s.url);
        assert!(fin.answer.contains(&format!("[{}]", s.id)));
    }
    let max_cited = (1..100)
        .filter(|n| fin.answer.contains(&format!("[{n}]")))
        .max()
        .unwrap();
    assert_eq!(max_cited, fin.sources.len());
}

#[tokio::test]
async fn zh_locale_uses_the_seed_strings() {
    let engine = Scripted::new("web", |_| {
        Ok(vec![doc("Tokio", "https://tokio.rs/", TOKIO)])
    });
    let settings = Settings {
        locale: Locale::Zh,
        ..Settings::default()
    };
    let ds = service(vec![engine], settings);
    let messages = collect(&ds, Request::new("What is Tokio?")).await;
    assert_eq!(messages[0], Message::Status("开始搜索...".into()));
    assert_eq!(messages[1], Message::Progress("执行第1轮搜索...".into()));
}

#[tokio::test]
async fn bad_requests_are_refused_before_anything_runs() {
    let engine = Scripted::new("web", |_| Ok(Vec::new()));
    let ds = service(vec![engine.clone()], Settings::default());
    let mut out = Vec::new();
    let err = ds
        .run(&Request::new("q").max_loop(0), &mut out)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        DeepSearchError::InvalidRequest {
            field: "max_loop",
            ..
        }
    ));
    assert!(out.is_empty() && engine.calls().is_empty());
    let ds = Arc::new(ds);
    let err = ds
        .stream("r", Request::new(""), StreamConfig::default())
        .unwrap_err();
    assert_eq!(err.code(), "invalid_request");
}

#[tokio::test]
async fn sse_stream_ends_with_done_and_frames_decode() {
    let engine = Scripted::new("web", |_| {
        Ok(vec![doc("Tokio", "https://tokio.rs/", TOKIO)])
    });
    let ds = Arc::new(service(vec![engine], Settings::default()));
    let stream = ds
        .stream(
            "req-7",
            Request::new("What is Tokio?"),
            StreamConfig::default(),
        )
        .unwrap();
    let bytes: Vec<u8> = stream.collect::<Vec<_>>().await.concat();
    assert!(bytes.ends_with(b"data: [DONE]\n\n"));
    let events = decode_all(&bytes);
    let last = &events[events.len() - 2];
    let v: serde_json::Value = serde_json::from_str(&last.data).unwrap();
    assert_eq!(v["type"], "final");
    assert_eq!(v["requestId"], "req-7");
    assert!(v["data"]["answer"].as_str().unwrap().contains("[1]"));
    let first: serde_json::Value = serde_json::from_str(&events[0].data).unwrap();
    assert_eq!(first["data"], "Starting search...");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_are_dropped_when_the_consumer_leaves() {
    let (hangs, ds) = Hangs::deepsearch();
    let ds = Arc::new(ds);
    let mut stream = ds
        .stream(
            "gone",
            Request::new("What is Tokio?"),
            StreamConfig::default(),
        )
        .unwrap();
    let first = stream.next().await.unwrap();
    // The first frame: its data, then its id as its last line.
    assert!(first.starts_with(b"data: {") && first.windows(8).any(|w| w == b"}\nid: 1\n"));
    tokio::time::timeout(Duration::from_secs(5), hangs.started.notified())
        .await
        .expect("the search reached the engine");
    let left_at = Instant::now();
    drop(stream);
    let deadline = left_at + Duration::from_secs(2);
    let dropped_at = loop {
        if let Some(at) = hangs.dropped_at() {
            break at;
        }
        assert!(
            Instant::now() < deadline,
            "engine call still running after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    let took = dropped_at.saturating_duration_since(left_at);
    assert!(took < Duration::from_millis(100), "took {took:?}");
}

/// Serves one HTML page on loopback for every request; returns its URL.
async fn page_server(html: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n",
                    html.len()
                );
                let _ = conn.write_all(head.as_bytes()).await;
                let _ = conn.write_all(html.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}/article")
}

#[tokio::test]
async fn page_reader_fills_in_content_behind_the_ssrf_guard() {
    use deepsearch_stream::search::{PageReader, ReaderOptions};
    let url = page_server(
        "<html><head><title>Tokio</title></head><body><p>Tokio schedules \
         asynchronous tasks on a work-stealing thread pool.</p></body></html>",
    )
    .await;
    let engine_url = url.clone();
    let engine = Scripted::new("web", move |_| {
        Ok(vec![Document {
            title: "Tokio".into(),
            url: engine_url.clone(),
            snippet: "Tokio".into(),
            content: String::new(),
            score: 1.0,
        }])
    });
    let settings = Settings {
        read_pages: 1,
        ..Settings::default()
    };
    let reader = |allow_private| {
        PageReader::new(ReaderOptions {
            allow_private,
            ..ReaderOptions::default()
        })
        .unwrap()
    };
    let req = Request::new("How does Tokio schedule asynchronous tasks?").max_loop(1);

    let open = service(vec![engine.clone()], settings.clone()).with_reader(reader(true));
    let messages = collect(&open, req.clone()).await;
    assert!(
        final_of(&messages)
            .answer
            .contains("work-stealing thread pool"),
        "{:?}",
        final_of(&messages)
    );

    let guarded = service(vec![engine], settings).with_reader(reader(false));
    let messages = collect(&guarded, req).await;
    let warning = messages
        .iter()
        .find_map(|m| match m {
            Message::Warning(w) => Some(w),
            _ => None,
        })
        .expect("a refused page is a warning");
    assert_eq!(warning.engine, "reader");
    assert_eq!(warning.query, url);
    assert!(!final_of(&messages).answer.contains("work-stealing"));
}
