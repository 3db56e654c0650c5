//! Budgets (search calls, model tokens, deadline), `final.usage` and the per-engine circuit
//! breaker, on the real loop: scripted engines, a local SearXNG-format server that fails,
//! and a local OpenAI-format model server.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deepsearch_stream::deepsearch::{
    Brain, BreakerSettings, Budget, DeepSearch, FinalData, Message, Request, Settings, WarningData,
};
use deepsearch_stream::llm::{LlmClient, LlmConfig};
use deepsearch_stream::search::{build_engine, Document, EngineConfig, SearchEngine, SearchError};
use futures::future::BoxFuture;
use serde_json::json;

use support::openai::{content, DONE};
use support::{Reply, TestServer};

const TOKIO: &str = "Tokio is an asynchronous runtime for the Rust programming language. \
                     It provides the building blocks for writing network applications.";

/// An engine that answers every query with one document of its own after `delay`.
#[derive(Debug)]
struct Counting {
    delay: Duration,
    calls: AtomicUsize,
}

impl Counting {
    fn new(delay: Duration) -> Arc<Counting> {
        Arc::new(Counting {
            delay,
            calls: AtomicUsize::new(0),
        })
    }
}

impl SearchEngine for Counting {
    fn name(&self) -> &str {
        "web"
    }

    fn search<'a>(
        &'a self,
        _query: &'a str,
        _limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            Ok(vec![Document {
                title: format!("Tokio {n}"),
                url: format!("https://tokio.rs/{n}"),
                snippet: String::new(),
                content: TOKIO.to_string(),
                score: 1.0,
            }])
        })
    }
}

async fn run(ds: &DeepSearch, req: Request) -> (Vec<Message>, FinalData) {
    let mut messages = Vec::new();
    let result = ds.run(&req, &mut messages).await.unwrap();
    (messages, result)
}

fn warnings(messages: &[Message]) -> Vec<WarningData> {
    messages
        .iter()
        .filter_map(|m| match m {
            Message::Warning(w) => Some(w.clone()),
            _ => None,
        })
        .collect()
}

fn budget_warnings(messages: &[Message]) -> Vec<String> {
    warnings(messages)
        .into_iter()
        .filter(|w| w.engine == "budget")
        .map(|w| w.message)
        .collect()
}

fn assert_cited(result: &FinalData) {
    assert!(result.answer.contains("[1]"), "{}", result.answer);
    assert!(!result.sources.is_empty());
}

#[tokio::test]
async fn the_search_call_budget_cuts_the_round_and_the_answer_is_cited() {
    let engine = Counting::new(Duration::ZERO);
    let ds = DeepSearch::new(
        vec![engine.clone() as Arc<dyn SearchEngine>],
        Brain::Offline,
        Settings::default(),
    )
    .unwrap();
    let budget = Budget {
        max_search_calls: Some(1),
        ..Budget::default()
    };
    let req = Request::new("What is Tokio and how does it compare to async-std?")
        .max_loop(3)
        .budget(budget);
    let (messages, result) = run(&ds, req).await;
    assert_eq!(engine.calls.load(Ordering::SeqCst), 1);
    assert_eq!(result.usage.search_calls, 1);
    assert_eq!(result.loops, 1, "no round after the budget ran out");
    assert_cited(&result);
    let told = budget_warnings(&messages);
    assert!(
        told.iter().any(|m| m.contains("max_search_calls")),
        "{told:?}"
    );
    assert_eq!(messages.last().map(Message::kind), Some("final"));
}

#[tokio::test]
async fn the_deadline_stops_searching_and_the_answer_is_cited() {
    // Round 1 takes 300 ms of a 500 ms deadline; round 2's calls are cut at the deadline.
    let engine = Counting::new(Duration::from_millis(300));
    let ds = DeepSearch::new(
        vec![engine.clone() as Arc<dyn SearchEngine>],
        Brain::Offline,
        Settings::default(),
    )
    .unwrap();
    let budget = Budget {
        deadline: Some(Duration::from_millis(500)),
        ..Budget::default()
    };
    let started = std::time::Instant::now();
    // Terms no document has (smol, glommio) keep the loop going after round 1.
    let req = Request::new("How does Tokio compare with smol and glommio?")
        .max_loop(5)
        .budget(budget);
    let (messages, result) = run(&ds, req).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(result.loops < 5);
    assert_cited(&result);
    let told = budget_warnings(&messages);
    assert!(told.iter().any(|m| m.contains("deadline_s")), "{told:?}");
    assert!(result.usage.elapsed_ms >= 500, "{:?}", result.usage);
}

/// A model server: JSON replies (with a usage report) for the planner and reasoner, a
/// streamed answer for the writer.
async fn model_server(report_usage: bool) -> TestServer {
    TestServer::start(move |req| {
        let body = req.json();
        if body["stream"] == true {
            let mut chunks = vec![content("Tokio is an asynchronous runtime [1].")];
            chunks.push(support::openai::chunk("{}", r#""stop""#));
            if report_usage {
                chunks.push(
                    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":70,\"completion_tokens\":9}}\n\n"
                        .to_string(),
                );
            }
            chunks.push(DONE.to_string());
            return Reply::sse(&chunks);
        }
        let system = body["messages"][0]["content"].as_str().unwrap_or("");
        let reply = if system.contains("is_answer") {
            r#"{"is_answer": false, "rewrite_query": null}"#
        } else {
            r#"{"queries": ["tokio runtime", "tokio tasks"]}"#
        };
        let mut completion = json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply},
                         "finish_reason": "stop"}]
        });
        if report_usage {
            completion["usage"] = json!({"prompt_tokens": 40, "completion_tokens": 10});
        }
        Reply::json(&completion)
    })
    .await
}

fn with_model(server: &TestServer, engine: Arc<Counting>) -> DeepSearch {
    let client = LlmClient::new(LlmConfig::new(server.url("/v1"), "test-model")).unwrap();
    DeepSearch::new(
        vec![engine as Arc<dyn SearchEngine>],
        Brain::Llm(client),
        Settings::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn tokens_come_from_the_models_reports() {
    let server = model_server(true).await;
    let ds = with_model(&server, Counting::new(Duration::ZERO));
    let (_, result) = run(&ds, Request::new("What is Tokio?").max_loop(2)).await;
    // Plan, verdict, plan: 3 JSON calls of 40 + 10; the answer's report: 70 + 9.
    let u = result.usage;
    assert_eq!(
        (u.llm_prompt_tokens, u.llm_completion_tokens),
        (3 * 40 + 70, 3 * 10 + 9),
        "{u:?}"
    );
    let streamed = server
        .requests()
        .into_iter()
        .find(|r| r.json()["stream"] == true)
        .unwrap();
    assert_eq!(streamed.json()["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn the_token_budget_stops_the_model_and_the_answer_is_extracted() {
    let server = model_server(true).await;
    let ds = with_model(&server, Counting::new(Duration::ZERO));
    let budget = Budget {
        max_llm_tokens: Some(50),
        ..Budget::default()
    };
    let req = Request::new("What is Tokio?").max_loop(3).budget(budget);
    let (messages, result) = run(&ds, req).await;
    // The first plan spent all 50 tokens: its round searches, then nothing more asks the
    // model, and the answer is the extractive one.
    assert_eq!(result.loops, 1);
    assert_eq!(
        result.usage.llm_prompt_tokens + result.usage.llm_completion_tokens,
        50
    );
    assert_eq!(server.requests().len(), 1, "only the first plan");
    assert_cited(&result);
    assert!(result.answer.contains("Tokio is an asynchronous runtime"));
    let told = budget_warnings(&messages);
    assert!(
        told.iter().filter(|m| m.contains("max_llm_tokens")).count() >= 2,
        "stopped, and answered without the model: {told:?}"
    );
}

#[tokio::test]
async fn tokens_are_counted_when_the_model_reports_none() {
    let server = model_server(false).await;
    let ds = with_model(&server, Counting::new(Duration::ZERO));
    let (_, result) = run(&ds, Request::new("What is Tokio?").max_loop(1)).await;
    let u = result.usage;
    assert!(u.llm_prompt_tokens > 50, "{u:?}");
    // The answer's text, "Tokio is an asynchronous runtime [1]." (37 chars), and the plan's.
    assert!(u.llm_completion_tokens >= 10, "{u:?}");
}

#[tokio::test]
async fn a_failing_engine_opens_its_circuit_and_a_recovered_one_closes_it() {
    let failing = Arc::new(AtomicBool::new(true));
    let calls = Arc::new(Mutex::new(0usize));
    let (fail, count) = (Arc::clone(&failing), Arc::clone(&calls));
    let server = TestServer::start(move |_| {
        *count.lock().unwrap() += 1;
        if fail.load(Ordering::SeqCst) {
            Reply::new(503, "text/plain", "down")
        } else {
            Reply::json(&json!({"results": [
                {"url": "https://tokio.rs/", "title": "Tokio", "content": TOKIO}
            ]}))
        }
    })
    .await;
    let config = EngineConfig::from_lookup(|name| (name == "SEARXNG_URL").then(|| server.url("/")));
    let searx = build_engine("searxng", &config).unwrap();
    let settings = Settings {
        breaker: BreakerSettings {
            failures: 2,
            cooldown: Duration::from_millis(300),
        },
        ..Settings::default()
    };
    let ds = DeepSearch::new(vec![searx], Brain::Offline, settings).unwrap();
    let ask = || Request::new("What is Tokio? How do Tokio tasks work?").max_loop(1);

    let (messages, result) = run(&ds, ask()).await;
    let opened: Vec<_> = warnings(&messages)
        .into_iter()
        .filter(|w| w.engine == "searxng" && w.message.starts_with("circuit open"))
        .collect();
    assert_eq!(opened.len(), 1, "{messages:?}");
    assert!(result.usage.engine_failures >= 2, "{:?}", result.usage);
    let made = *calls.lock().unwrap();

    // While open: no call goes out, and the search says why.
    let (messages, result) = run(&ds, ask()).await;
    assert_eq!(*calls.lock().unwrap(), made, "skipped while open");
    assert_eq!(result.usage.search_calls, 0);
    assert!(
        warnings(&messages)
            .iter()
            .any(|w| w.engine == "searxng" && w.message.contains("skipped")),
        "{messages:?}"
    );
    assert_eq!(messages.last().map(Message::kind), Some("final"));

    // After the cooldown one trial call goes out; the engine answers: closed.
    failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (messages, result) = run(&ds, ask()).await;
    assert!(
        warnings(&messages)
            .iter()
            .any(|w| w.engine == "searxng" && w.message.starts_with("circuit closed")),
        "{messages:?}"
    );
    assert_cited(&result);
    let (_, result) = run(&ds, ask()).await;
    assert!(result.usage.search_calls >= 2, "every query again");
}
