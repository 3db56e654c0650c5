//! Every HTTP engine against a local server speaking its provider's wire format.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use deepsearch_stream::http::Secret;
use deepsearch_stream::search::{
    build_engine, BraveEngine, EngineConfig, HttpSettings, JinaEngine, ProviderOptions,
    SearchEngine, SearchError, SearxngEngine, SerperEngine, TavilyEngine,
};
use serde_json::json;
use support::{Reply, Request, TestServer};

const TIMEOUT: Duration = Duration::from_millis(300);

/// An engine built the way the application builds it: through `build_engine` from
/// settings named like the environment variables.
fn engine(name: &str, vars: &[(&str, String)]) -> Result<Arc<dyn SearchEngine>, SearchError> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let mut cfg = EngineConfig::from_lookup(|name| vars.get(name).cloned());
    cfg.timeout = Some(TIMEOUT);
    build_engine(name, &cfg)
}

/// Picks a failure scenario by a magic word in the query, else answers `ok`.
fn scenarios(ok: serde_json::Value) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |req: &Request| {
        if req.mentions("explode") {
            Reply::new(500, "text/plain", "upstream exploded")
        } else if req.mentions("dawdle") {
            Reply::json(&ok).delayed(Duration::from_secs(3))
        } else if req.mentions("garble") {
            Reply::new(200, "application/json", "{\"results\": [tru")
        } else if req.mentions("wrongshape") {
            Reply::json(&json!({"unexpected": true}))
        } else {
            Reply::json(&ok)
        }
    }
}

/// 500 with body, timeout, malformed JSON: the same mapping for every engine.
async fn assert_failures_map(engine: &dyn SearchEngine) {
    match engine.search("explode", 3).await {
        Err(SearchError::Status { status: 500, body }) => {
            assert_eq!(body, "upstream exploded")
        }
        other => panic!("{}: expected Status 500, got {other:?}", engine.name()),
    }
    let started = std::time::Instant::now();
    match engine.search("dawdle", 3).await {
        Err(SearchError::Timeout(d)) => assert_eq!(d, TIMEOUT),
        other => panic!("{}: expected Timeout, got {other:?}", engine.name()),
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "timeout not enforced"
    );
    match engine.search("garble", 3).await {
        Err(SearchError::Malformed(msg)) => assert!(msg.contains("body starts"), "{msg}"),
        other => panic!("{}: expected Malformed, got {other:?}", engine.name()),
    }
}

fn assert_missing(result: Result<impl std::fmt::Debug, SearchError>, var: &str) {
    match result {
        Err(SearchError::MissingConfig(name)) => {
            assert_eq!(name, var);
            assert!(SearchError::MissingConfig(name).to_string().contains(var));
        }
        other => panic!("expected MissingConfig({var}), got {other:?}"),
    }
}

fn http() -> HttpSettings {
    HttpSettings::new(TIMEOUT).unwrap()
}

#[tokio::test]
async fn searxng_wire_format_and_errors() {
    let ok = json!({
        "query": "rust async",
        "number_of_results": 0,
        "results": [
            {"url": "https://tokio.rs/", "title": "Tokio", "content": "An asynchronous runtime",
             "engine": "duckduckgo", "engines": ["duckduckgo"], "score": 2.5, "category": "general"},
            {"url": "https://rust-lang.org/", "title": "Rust", "content": "A language"},
            {"url": "https://example.com/", "title": "Third", "content": "cut by the limit"}
        ],
        "answers": [], "corrections": [], "infoboxes": [], "suggestions": [],
        "unresponsive_engines": []
    });
    let server = TestServer::start(scenarios(ok)).await;
    let searx = engine("searxng", &[("SEARXNG_URL", server.url("/searx/"))]).unwrap();
    assert_eq!(searx.name(), "searxng");

    let docs = searx.search("rust async: \"tokio\"", 2).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].title, "Tokio");
    assert_eq!(docs[0].url, "https://tokio.rs/");
    assert_eq!(docs[0].snippet, "An asynchronous runtime");
    assert_eq!(docs[0].content, "An asynchronous runtime");
    assert_eq!(docs[0].score, 2.5);
    assert_eq!(docs[1].score, 0.5, "rank score when SearXNG gives none");

    let req = server.single_request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/searx/search");
    assert_eq!(req.query_param("q"), Some("rust async: \"tokio\""));
    assert_eq!(req.query_param("format"), Some("json"));
    assert_eq!(req.header("authorization"), None);

    match searx.search("wrongshape", 3).await {
        Err(SearchError::Malformed(_)) => {}
        other => panic!("expected Malformed, got {other:?}"),
    }
    assert_failures_map(searx.as_ref()).await;
    assert_missing(engine("searxng", &[]), "SEARXNG_URL");
    assert_missing(
        SearxngEngine::new(&ProviderOptions::default(), http()),
        "SEARXNG_URL",
    );
}

#[tokio::test]
async fn tavily_wire_format_and_errors() {
    let ok = json!({
        "query": "who is Leo Messi?",
        "answer": null,
        "images": [],
        "results": [
            {"title": "Lionel Messi Facts", "url": "https://www.britannica.com/facts/Lionel-Messi",
             "content": "Lionel Messi, an Argentine footballer", "score": 0.81, "raw_content": null},
            {"title": "Messi", "url": "https://example.org/messi", "content": "short",
             "score": 0.5, "raw_content": "the full page text"}
        ],
        "response_time": "1.67"
    });
    let server = TestServer::start(scenarios(ok)).await;
    let vars = [
        ("TAVILY_API_KEY", "tvly-test-key".to_string()),
        ("TAVILY_BASE_URL", server.url("")),
    ];
    let tavily = engine("tavily", &vars).unwrap();
    assert!(
        !format!("{tavily:?}").contains("tvly-test-key"),
        "key leaked into Debug"
    );

    let docs = tavily.search("who is Leo Messi?", 3).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].title, "Lionel Messi Facts");
    assert_eq!(docs[0].content, "Lionel Messi, an Argentine footballer");
    assert_eq!(docs[0].score, 0.81);
    assert_eq!(docs[1].snippet, "short");
    assert_eq!(
        docs[1].content, "the full page text",
        "raw_content preferred"
    );

    let req = server.single_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/search");
    assert_eq!(req.header("authorization"), Some("Bearer tvly-test-key"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body = req.json();
    assert_eq!(body["query"], "who is Leo Messi?");
    assert_eq!(body["max_results"], 3);
    assert_eq!(body["include_raw_content"], false);
    assert!(
        body.get("api_key").is_none(),
        "key belongs in the header only"
    );

    // The raw-content switch reaches the wire; limits above Tavily's cap are clamped.
    let opts = ProviderOptions {
        base_url: Some(server.url("")),
        api_key: Some(Secret::new("k")),
    };
    let raw = TavilyEngine::new(&opts, http())
        .unwrap()
        .with_raw_content(true);
    raw.search("messi", 50).await.unwrap();
    let body = server.requests().last().unwrap().json();
    assert_eq!(body["include_raw_content"], true);
    assert_eq!(body["max_results"], 20);

    assert_failures_map(tavily.as_ref()).await;
    assert_missing(engine("tavily", &[]), "TAVILY_API_KEY");
    assert_missing(
        TavilyEngine::new(&ProviderOptions::default(), http()),
        "TAVILY_API_KEY",
    );
}

#[tokio::test]
async fn brave_wire_format_and_errors() {
    let ok = json!({
        "type": "search",
        "query": {"original": "rust book"},
        "web": {
            "type": "search",
            "results": [
                {"title": "The <strong>Rust</strong> Book", "url": "https://doc.rust-lang.org/book/",
                 "description": "Learn <strong>Rust</strong> &amp; ownership",
                 "extra_snippets": ["Chapter one", "Chapter <strong>two</strong>"],
                 "language": "en", "family_friendly": true},
                {"title": "Rust by Example", "url": "https://doc.rust-lang.org/rust-by-example/",
                 "description": "Examples"}
            ]
        }
    });
    let server = TestServer::start(move |req: &Request| {
        if req.mentions("nothing") {
            Reply::json(&json!({"type": "search", "query": {"original": "nothing"}}))
        } else {
            scenarios(ok.clone())(req)
        }
    })
    .await;
    let vars = [
        ("BRAVE_API_KEY", "brave-key".to_string()),
        ("BRAVE_BASE_URL", server.url("")),
    ];
    let brave = engine("brave", &vars).unwrap();

    let docs = brave.search("rust book", 5).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].title, "The Rust Book");
    assert_eq!(docs[0].snippet, "Learn Rust & ownership");
    assert_eq!(
        docs[0].content,
        "Learn Rust & ownership\n\nChapter one\n\nChapter two"
    );
    assert!(docs[0].score > docs[1].score);

    let req = server.single_request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/res/v1/web/search");
    assert_eq!(req.query_param("q"), Some("rust book"));
    assert_eq!(req.query_param("count"), Some("5"));
    assert_eq!(req.header("x-subscription-token"), Some("brave-key"));
    assert_eq!(req.header("accept"), Some("application/json"));

    assert!(brave.search("nothing", 5).await.unwrap().is_empty());
    assert_failures_map(brave.as_ref()).await;
    assert_missing(engine("brave", &[]), "BRAVE_API_KEY");
    assert_missing(
        BraveEngine::new(&ProviderOptions::default(), http()),
        "BRAVE_API_KEY",
    );
}

#[tokio::test]
async fn serper_wire_format_and_errors() {
    let ok = json!({
        "searchParameters": {"q": "apple inc", "type": "search", "engine": "google"},
        "knowledgeGraph": {"title": "Apple"},
        "organic": [
            {"title": "Apple", "link": "https://www.apple.com/", "snippet": "Discover the innovative world of Apple",
             "sitelinks": [{"title": "Support", "link": "https://support.apple.com/"}], "position": 1},
            {"title": "Apple Inc. - Wikipedia", "link": "https://en.wikipedia.org/wiki/Apple_Inc.",
             "snippet": "Apple Inc. is an American multinational", "position": 2},
            {"title": "Apple (fruit)", "link": "https://example.org/apple", "snippet": null,
             "position": 4}
        ],
        "peopleAlsoAsk": [],
        "relatedSearches": []
    });
    let server = TestServer::start(scenarios(ok)).await;
    let vars = [
        ("SERPER_API_KEY", "serper-key".to_string()),
        ("SERPER_BASE_URL", server.url("")),
    ];
    let serper = engine("serper", &vars).unwrap();

    let docs = serper.search("apple inc", 4).await.unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs[2].snippet, "", "null text fields read as empty");
    assert_eq!(docs[2].score, 0.25);
    assert_eq!(docs[0].url, "https://www.apple.com/");
    assert_eq!(docs[1].title, "Apple Inc. - Wikipedia");
    assert_eq!(docs[1].content, "Apple Inc. is an American multinational");
    assert_eq!((docs[0].score, docs[1].score), (1.0, 0.5));

    let req = server.single_request();
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/search");
    assert_eq!(req.header("x-api-key"), Some("serper-key"));
    assert_eq!(req.json(), json!({"q": "apple inc", "num": 4}));

    assert_failures_map(serper.as_ref()).await;
    assert_missing(engine("serper", &[]), "SERPER_API_KEY");
    assert_missing(
        SerperEngine::new(&ProviderOptions::default(), http()),
        "SERPER_API_KEY",
    );
}

#[tokio::test]
async fn jina_wire_format_and_errors() {
    let ok = json!({
        "code": 200,
        "status": 20000,
        "data": [
            {"title": "Jina AI", "url": "https://jina.ai/", "description": "Search foundation",
             "content": "# Jina AI\n\nFull page markdown", "usage": {"tokens": 120}},
            {"title": "Reader", "url": "https://jina.ai/reader", "description": "Reader API",
             "content": ""}
        ],
        "meta": {"usage": {"tokens": 120}}
    });
    let server = TestServer::start(move |req: &Request| {
        if req.mentions("nothing") {
            Reply::json(&json!({"code": 200, "status": 20000, "data": null}))
        } else {
            scenarios(ok.clone())(req)
        }
    })
    .await;
    let vars = [
        ("JINA_API_KEY", "jina-key".to_string()),
        ("JINA_BASE_URL", server.url("")),
    ];
    let jina = engine("jina", &vars).unwrap();

    let docs = jina.search("jina reader (api)", 5).await.unwrap();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0].snippet, "Search foundation");
    assert_eq!(docs[0].content, "# Jina AI\n\nFull page markdown");
    assert_eq!(
        docs[1].content, "Reader API",
        "description when content is empty"
    );

    let req = server.single_request();
    assert_eq!(req.method, "GET");
    assert_eq!(req.path, "/");
    assert_eq!(req.query_param("q"), Some("jina reader (api)"));
    assert_eq!(req.header("accept"), Some("application/json"));
    assert_eq!(req.header("authorization"), Some("Bearer jina-key"));

    assert!(jina.search("nothing", 5).await.unwrap().is_empty());
    assert_failures_map(jina.as_ref()).await;
    assert_missing(engine("jina", &[]), "JINA_API_KEY");
    assert_missing(
        JinaEngine::new(&ProviderOptions::default(), http()),
        "JINA_API_KEY",
    );
}

#[tokio::test]
async fn limit_zero_sends_nothing() {
    let server = TestServer::start(|_: &Request| Reply::json(&json!({"results": []}))).await;
    let searx = engine("searxng", &[("SEARXNG_URL", server.url(""))]).unwrap();
    assert!(searx.search("anything", 0).await.unwrap().is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn connection_refused_is_an_http_error() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let searx = engine(
        "searxng",
        &[("SEARXNG_URL", format!("http://127.0.0.1:{port}"))],
    )
    .unwrap();
    match searx.search("q", 3).await {
        Err(SearchError::Http(msg)) => assert!(!msg.is_empty()),
        other => panic!("expected Http error, got {other:?}"),
    }
}

#[test]
fn registry_names_and_config_errors() {
    match engine("bing", &[]) {
        Err(SearchError::UnknownEngine(name)) => assert_eq!(name, "bing"),
        other => panic!("expected UnknownEngine, got {other:?}"),
    }
    let nowhere = std::env::temp_dir().join("deepsearch-no-such-cache");
    let env = [("DEEPSEARCH_CACHE_DIR", nowhere.display().to_string())];
    match engine("local", &env) {
        Err(SearchError::InvalidConfig { name, reason }) => {
            assert_eq!(name, "DEEPSEARCH_CORPUS_DIR");
            assert!(
                reason.contains("python -m deepsearch_stream.corpus"),
                "{reason}"
            );
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    match engine(
        "tavily",
        &[
            ("TAVILY_API_KEY", "k".into()),
            ("TAVILY_BASE_URL", "not a url".into()),
        ],
    ) {
        Err(SearchError::InvalidConfig { name, .. }) => assert_eq!(name, "TAVILY_BASE_URL"),
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
    // Names are case-insensitive and every advertised name is buildable when configured.
    let vars = [
        ("SEARXNG_URL", "http://127.0.0.1:9".to_string()),
        ("TAVILY_API_KEY", "k".into()),
        ("BRAVE_API_KEY", "k".into()),
        ("SERPER_API_KEY", "k".into()),
        ("JINA_API_KEY", "k".into()),
    ];
    for name in deepsearch_stream::search::ENGINE_NAMES {
        if name != "local" {
            let built = engine(&name.to_uppercase(), &vars).unwrap();
            assert_eq!(built.name(), name);
        }
    }
}

#[test]
fn config_reads_timeout_and_cache_dir_from_lookup() {
    let vars: HashMap<&str, &str> = [
        ("DEEPSEARCH_SEARCH_TIMEOUT_SECS", "2.5"),
        ("XDG_CACHE_HOME", "/tmp/xdg"),
        ("DEEPSEARCH_CORPUS_DIR", "/data/corpus"),
    ]
    .into();
    let cfg = EngineConfig::from_lookup(|k| vars.get(k).map(|v| v.to_string()));
    assert_eq!(cfg.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(
        cfg.cache_dir.as_deref(),
        Some(std::path::Path::new("/tmp/xdg/deepsearch-stream"))
    );
    assert_eq!(
        cfg.corpus_dir.as_deref(),
        Some(std::path::Path::new("/data/corpus"))
    );

    // Explicit settings win; the rest comes from the fallback environment.
    let partial = EngineConfig {
        tavily: ProviderOptions {
            api_key: Some(Secret::new("explicit")),
            base_url: None,
        },
        timeout: Some(Duration::from_secs(1)),
        ..EngineConfig::default()
    }
    .or_lookup(|k| match k {
        "TAVILY_API_KEY" => Some("from-env".into()),
        "TAVILY_BASE_URL" => Some("http://127.0.0.1:9".into()),
        "BRAVE_API_KEY" => Some("brave-env".into()),
        "DEEPSEARCH_SEARCH_TIMEOUT_SECS" => Some("7".into()),
        _ => None,
    });
    assert_eq!(partial.tavily.api_key, Some(Secret::new("explicit")));
    assert_eq!(
        partial.tavily.base_url.as_deref(),
        Some("http://127.0.0.1:9")
    );
    assert_eq!(partial.brave.api_key, Some(Secret::new("brave-env")));
    assert_eq!(partial.timeout, Some(Duration::from_secs(1)));

    let bad = EngineConfig::from_lookup(|k| {
        (k == "DEEPSEARCH_SEARCH_TIMEOUT_SECS").then(|| "soon".to_string())
    });
    assert_eq!(bad.timeout, None);
    let explicit = EngineConfig::from_lookup(|k| match k {
        "DEEPSEARCH_CACHE_DIR" => Some("/var/cache/ds".into()),
        "XDG_CACHE_HOME" => Some("/tmp/xdg".into()),
        _ => None,
    });
    assert_eq!(
        explicit.cache_dir.as_deref(),
        Some(std::path::Path::new("/var/cache/ds"))
    );
}
