//! The chat client against a local server speaking OpenAI's wire format,
//! including the quirks of Ollama, vLLM and llama.cpp.

mod support;

use std::time::Duration;

use deepsearch_stream::http::Secret;
use deepsearch_stream::llm::prompts::PlannerReply;
use deepsearch_stream::llm::{ChatMessage, Delta, LlmClient, LlmConfig, LlmError, LlmOptions};
use futures::StreamExt;
use support::openai::{chunk, content, DONE};
use support::{Reply, Step, TestServer};

const KEY: &str = "sk-test-0123456789abcdef";

fn client(server: &TestServer) -> LlmClient {
    let mut config = LlmConfig::new(server.url("/v1"), "test-model");
    config.api_key = Some(KEY.into());
    config.idle_timeout = Duration::from_secs(5);
    config.timeout = Duration::from_secs(10);
    LlmClient::new(config).unwrap()
}

/// Everything the stream yields, errors included.
async fn collect(client: &LlmClient) -> Vec<Result<Delta, LlmError>> {
    client
        .chat_stream(vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("Hi"),
        ])
        .collect()
        .await
}

fn ok(items: &[Result<Delta, LlmError>]) -> Vec<Delta> {
    items
        .iter()
        .map(|r| r.as_ref().expect("no error").clone())
        .collect()
}

fn text(items: &[Result<Delta, LlmError>]) -> (String, String) {
    let (mut reasoning, mut answer) = (String::new(), String::new());
    for item in items.iter().flatten() {
        match item {
            Delta::Reasoning(r) => reasoning.push_str(r),
            Delta::Content(c) => answer.push_str(c),
            _ => {}
        }
    }
    (reasoning, answer)
}

#[tokio::test]
async fn streams_openai_chunks_and_sends_the_right_request() {
    let server = TestServer::script(vec![Reply::sse(&[
        chunk(r#"{"role":"assistant","content":""}"#, "null"),
        content("Hel"),
        content("lo"),
        chunk("{}", r#""stop""#),
        // Usage chunk sent with stream_options.include_usage: no choices.
        r#"data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"total_tokens":9}}"#
            .to_string()
            + "\n\n",
        DONE.to_string(),
    ])])
    .await;
    let mut config = LlmConfig::new(server.url("/v1/"), "test-model");
    config.api_key = Some(KEY.into());
    config.temperature = Some(0.2);
    config.max_tokens = Some(256);
    let client = LlmClient::new(config).unwrap();
    let items = collect(&client).await;
    assert_eq!(
        ok(&items),
        [
            Delta::Content("Hel".into()),
            Delta::Content("lo".into()),
            Delta::Finish("stop".into())
        ]
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(r.header("accept"), Some("text/event-stream"));
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = r.json();
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["max_tokens"], 256);
    assert_eq!(
        body["messages"][0],
        serde_json::json!({"role": "system", "content": "be brief"})
    );
    assert_eq!(
        body["messages"][1],
        serde_json::json!({"role": "user", "content": "Hi"})
    );
}

#[tokio::test]
async fn no_key_means_no_authorization_and_no_optional_fields() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("x"),
        chunk("{}", r#""stop""#),
        DONE.into(),
    ])])
    .await;
    let client = LlmClient::new(LlmConfig::new(server.url("/v1"), "llama3")).unwrap();
    assert_eq!(text(&collect(&client).await).1, "x");
    let r = &server.requests()[0];
    assert_eq!(r.header("authorization"), None);
    let body = r.json();
    assert!(body.get("temperature").is_none() && body.get("max_tokens").is_none());
}

#[tokio::test]
async fn tolerates_missing_space_null_and_empty_choices_and_comments() {
    let server = TestServer::script(vec![Reply::sse(&[
        ": keep-alive\n\n".to_string(),
        r#"data:{"choices":[{"index":0,"delta":{"content":"A"},"finish_reason":null}]}"#
            .to_string()
            + "\n\n",
        r#"data: {"id":"x","choices":null}"#.to_string() + "\n\n",
        r#"data: {"id":"x","choices":[]}"#.to_string() + "\n\n",
        r#"data: {"id":"x"}"#.to_string() + "\n\n",
        r#"data: {"choices":[{"index":0,"delta":null,"finish_reason":null}]}"#.to_string() + "\n\n",
        r#"data: {"choices":[{"index":0,"delta":{"content":null}}]}"#.to_string() + "\n\n",
        r#"data: {"choices":[{"index":1,"delta":{"content":"other choice"}}]}"#.to_string()
            + "\n\n",
        "data:\n\n".to_string(),
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"B\"}}]}\r\n\r\n".to_string(),
        chunk("{}", r#""stop""#),
        "data:[DONE]\n\n".to_string(),
    ])])
    .await;
    let items = collect(&client(&server)).await;
    assert_eq!(
        ok(&items),
        [
            Delta::Content("A".into()),
            Delta::Content("B".into()),
            Delta::Finish("stop".into())
        ]
    );
}

#[tokio::test]
async fn reasoning_fields_are_kept_out_of_the_answer() {
    let server = TestServer::script(vec![Reply::sse(&[
        chunk(
            r#"{"role":"assistant","content":null,"reasoning_content":"Let me "}"#,
            "null",
        ),
        chunk(r#"{"reasoning_content":"think."}"#, "null"),
        // Ollama and newer vLLM name the field `reasoning`.
        chunk(r#"{"content":"","reasoning":" More."}"#, "null"),
        content("Answer."),
        chunk("{}", r#""stop""#),
        DONE.into(),
    ])])
    .await;
    let items = collect(&client(&server)).await;
    assert_eq!(
        ok(&items),
        [
            Delta::Reasoning("Let me ".into()),
            Delta::Reasoning("think.".into()),
            Delta::Reasoning(" More.".into()),
            Delta::Content("Answer.".into()),
            Delta::Finish("stop".into()),
        ]
    );
}

#[tokio::test]
async fn inline_think_split_across_chunks_is_reasoning() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("<th"),
        content("ink>The user wants"),
        content(" a greeting.</th"),
        content("ink>\n\n"),
        content("Hello"),
        content(" there <b>!</b>"),
        chunk("{}", r#""stop""#),
        DONE.into(),
    ])])
    .await;
    let items = collect(&client(&server)).await;
    assert_eq!(
        text(&items),
        (
            "The user wants a greeting.".into(),
            "Hello there <b>!</b>".into()
        )
    );
    assert!(items.iter().all(|i| match i {
        Ok(Delta::Content(c)) => !c.contains("think") && !c.contains("user wants"),
        _ => true,
    }));
}

#[tokio::test]
async fn finish_without_done_ends_cleanly() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("Hi"),
        chunk("{}", r#""length""#),
    ])])
    .await;
    let items = collect(&client(&server)).await;
    assert_eq!(
        ok(&items),
        [Delta::Content("Hi".into()), Delta::Finish("length".into())]
    );
}

#[tokio::test]
async fn close_without_finish_or_done_is_truncated() {
    let server =
        TestServer::script(vec![Reply::sse(&[content("partial"), content(" answer")])]).await;
    let items = collect(&client(&server)).await;
    assert_eq!(items.len(), 3);
    assert_eq!(text(&items).1, "partial answer");
    assert!(
        matches!(items.last(), Some(Err(LlmError::Truncated(_)))),
        "{items:?}"
    );
}

#[tokio::test]
async fn dropped_connection_mid_event_is_truncated() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("Hel"),
        "data: {\"choices\":[{\"del".to_string(),
    ])
    .then(Step::Abort)])
    .await;
    let items = collect(&client(&server)).await;
    assert_eq!(items[0].as_ref().unwrap(), &Delta::Content("Hel".into()));
    match items.last() {
        Some(Err(LlmError::Truncated(m))) => assert!(m.contains("mid-stream"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stalled_stream_hits_the_idle_timeout() {
    let server = TestServer::script(vec![Reply::sse(&[content("slow")])
        .then(Step::Sleep(Duration::from_secs(3)))
        .then(Step::Send(content("late").into()))])
    .await;
    let mut config = LlmConfig::new(server.url("/v1"), "m");
    config.idle_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let items = collect(&LlmClient::new(config).unwrap()).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(items[0].as_ref().unwrap(), &Delta::Content("slow".into()));
    assert!(
        matches!(items.last(), Some(Err(LlmError::IdleTimeout(d))) if *d == Duration::from_millis(200))
    );
}

#[tokio::test]
async fn steady_but_endless_stream_hits_the_overall_timeout() {
    let mut reply = Reply::sse(&[content("a")]);
    for _ in 0..40 {
        reply = reply
            .then(Step::Sleep(Duration::from_millis(50)))
            .then(Step::Send(content("a").into()));
    }
    let server = TestServer::script(vec![reply]).await;
    let mut config = LlmConfig::new(server.url("/v1"), "m");
    config.idle_timeout = Duration::from_secs(1);
    config.timeout = Duration::from_millis(400);
    let items = collect(&LlmClient::new(config).unwrap()).await;
    assert!(items.len() > 2, "some content arrived first");
    assert!(
        matches!(items.last(), Some(Err(LlmError::Timeout(_)))),
        "{:?}",
        items.last()
    );
}

#[tokio::test]
async fn finish_then_silence_is_not_an_error() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("done"),
        chunk("{}", r#""stop""#),
    ])
    .then(Step::Sleep(Duration::from_secs(3)))])
    .await;
    let mut config = LlmConfig::new(server.url("/v1"), "m");
    config.idle_timeout = Duration::from_millis(200);
    let items = collect(&LlmClient::new(config).unwrap()).await;
    assert_eq!(
        ok(&items),
        [Delta::Content("done".into()), Delta::Finish("stop".into())]
    );
}

#[tokio::test]
async fn server_error_surfaces_the_provider_message() {
    let body = r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#;
    let server = TestServer::script(vec![Reply::new(500, "application/json", body)]).await;
    let items = collect(&client(&server)).await;
    assert_eq!(items.len(), 1);
    match &items[0] {
        Err(
            e @ LlmError::Api {
                status: 500,
                message,
                kind,
                code: None,
            },
        ) => {
            assert_eq!(
                message,
                "The server had an error while processing your request."
            );
            assert_eq!(kind.as_deref(), Some("server_error"));
            assert!(e.is_transient());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn context_length_exceeded_is_recognized() {
    let body = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
    let server = TestServer::script(vec![Reply::new(400, "application/json", body)]).await;
    let items = collect(&client(&server)).await;
    match &items[0] {
        Err(
            e @ LlmError::ContextLength {
                status: 400,
                message,
            },
        ) => {
            assert!(message.contains("maximum context length is 8192"));
            assert!(!e.is_transient());
        }
        other => panic!("{other:?}"),
    }
    // llama.cpp reports it inside a 200 stream.
    let server = TestServer::script(vec![Reply::sse(&[r#"data: {"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":9000,"n_ctx":4096}}"#.to_string() + "\n\n"])]).await;
    let items = collect(&client(&server)).await;
    assert!(
        matches!(&items[0], Err(LlmError::ContextLength { status: 400, .. })),
        "{items:?}"
    );
}

#[test]
fn debug_output_never_shows_the_key() {
    let options = LlmOptions {
        api_key: Some(KEY.into()),
        model: Some("m".into()),
        base_url: Some("http://127.0.0.1:9/v1".into()),
        ..Default::default()
    };
    let config = options.clone().resolve_with(|_| None).unwrap().unwrap();
    assert_eq!(config.api_key, Some(Secret::new(KEY)));
    let client = LlmClient::new(config.clone()).unwrap();
    for shown in [
        format!("{options:?}"),
        format!("{config:?}"),
        format!("{client:?}"),
    ] {
        assert!(
            !shown.contains(KEY) && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}

#[tokio::test]
async fn unauthorized_never_echoes_the_key() {
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {KEY}. You can find your API key at https://platform.example/account.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
    );
    let masked = r#"{"error":{"message":"Incorrect API key provided: sk-test-**********cdef.","code":"invalid_api_key"}}"#;
    for body in [body.as_str(), masked] {
        let server = TestServer::script(vec![Reply::new(401, "application/json", body)]).await;
        let items = collect(&client(&server)).await;
        let err = items[0].as_ref().unwrap_err();
        assert!(matches!(err, LlmError::Unauthorized { .. }), "{err:?}");
        for shown in [err.to_string(), format!("{err:?}")] {
            assert!(!shown.contains(KEY) && !shown.contains("cdef"), "{shown}");
            assert!(shown.contains("Incorrect API key provided"), "{shown}");
        }
    }
}

#[tokio::test]
async fn malformed_chunk_is_an_error_after_good_content() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("ok"),
        "data: {\"choices\": [{\"delta\": {\"content\": \"x\"}\n\n".to_string(),
        content("never"),
    ])])
    .await;
    let items = collect(&client(&server)).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().unwrap(), &Delta::Content("ok".into()));
    assert!(
        matches!(&items[1], Err(LlmError::MalformedChunk(_))),
        "{items:?}"
    );
}

#[tokio::test]
async fn error_event_mid_stream_is_surfaced() {
    let server = TestServer::script(vec![Reply::sse(&[
        content("so far"),
        r#"data: {"object":"error","message":"engine overloaded","type":"ServiceUnavailableError","code":503}"#
            .to_string()
            + "\n\n",
    ])])
    .await;
    let items = collect(&client(&server)).await;
    match &items[1] {
        Err(LlmError::StreamError { message, code, .. }) => {
            assert_eq!(message, "engine overloaded");
            assert_eq!(code.as_deref(), Some("503"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = LlmConfig::new(format!("http://127.0.0.1:{port}/v1"), "m");
    config.api_key = Some(KEY.into());
    let client = LlmClient::new(config).unwrap();
    let items = collect(&client).await;
    match &items[..] {
        [Err(e @ LlmError::Connect { url, .. })] => {
            assert_eq!(url, &format!("http://127.0.0.1:{port}/v1/chat/completions"));
            assert!(e.is_transient() && !e.to_string().contains(KEY));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        client.chat(vec![ChatMessage::user("x")]).await,
        Err(LlmError::Connect { .. })
    ));
}

#[tokio::test]
async fn server_ignoring_stream_flag_still_answers() {
    let body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"<think>hmm</think>Whole answer"},"finish_reason":"stop"}]}"#;
    let server = TestServer::script(vec![Reply::new(200, "application/json", body)]).await;
    let items = collect(&client(&server)).await;
    assert_eq!(
        ok(&items),
        [
            Delta::Reasoning("hmm".into()),
            Delta::Content("Whole answer".into()),
            Delta::Finish("stop".into())
        ]
    );
}

#[tokio::test]
async fn non_streaming_chat_and_lenient_json() {
    let body = serde_json::json!({
        "id": "c", "object": "chat.completion",
        "choices": [{"index": 0, "finish_reason": "stop", "message": {
            "role": "assistant",
            "reasoning_content": "planning",
            "content": "<think>draft {\"queries\": []}</think>Here:\n```json\n{\"queries\": [\"tokio runtime\", \"axum\"]}\n```"
        }}]
    })
    .to_string();
    let server = TestServer::script(vec![Reply::new(200, "application/json", body.as_str())]).await;
    let llm = client(&server);
    let text = llm.chat(vec![ChatMessage::user("plan")]).await.unwrap();
    assert!(text.starts_with("Here:") && !text.contains("draft"));
    let reply: PlannerReply = llm
        .chat_json(vec![ChatMessage::user("plan")])
        .await
        .unwrap();
    assert_eq!(reply.queries, ["tokio runtime", "axum"]);
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].json()["stream"], false);
    assert_ne!(requests[0].header("accept"), Some("text/event-stream"));
    assert_eq!(requests[0].path, "/v1/chat/completions");

    let server = TestServer::script(vec![Reply::new(
        401,
        "application/json",
        r#"{"error":"bad key"}"#,
    )])
    .await;
    assert!(matches!(
        client(&server).chat(vec![]).await,
        Err(LlmError::Unauthorized { message }) if message == "bad key"
    ));
}
