use serde_json::{json, Value};

use super::*;
use crate::deepsearch::{DocData, IntermediateData, PlanData, QueryResults, SourceRef};
use crate::stream::frame::error_frame;

fn messages() -> Vec<Message> {
    vec![
        Message::Status("Searching".into()),
        Message::Plan(PlanData {
            round: 1,
            queries: vec!["tokio runtime".into()],
        }),
        Message::Intermediate(IntermediateData {
            round: 1,
            results: vec![QueryResults {
                query: "tokio runtime".into(),
                docs: vec![DocData {
                    title: "Tokio".into(),
                    url: "https://tokio.rs/".into(),
                    snippet: "An async runtime".into(),
                    engine: "local".into(),
                    score: 1.0,
                }],
            }],
        }),
        Message::Answer("Tokio is a runtime ".into()),
        Message::Answer("[1].".into()),
        Message::Final(FinalData {
            answer: "Tokio is a runtime [1].".into(),
            sources: vec![SourceRef {
                id: 1,
                title: "Tokio".into(),
                url: "https://tokio.rs/".into(),
            }],
            loops: 1,
            queries: vec!["tokio runtime".into()],
            elapsed_ms: 5,
            citations: Vec::new(),
            usage: Default::default(),
        }),
    ]
}

/// Every frame of a whole search in `format`, parsed.
fn run(format: Format, options: &WireOptions) -> Vec<Value> {
    let mut encoder = format.encoder("r1", "what is tokio", options).unwrap();
    let mut frames = encoder.start();
    for m in messages() {
        frames.extend(encoder.message(&m));
    }
    frames
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect()
}

fn types(frames: &[Value]) -> Vec<&str> {
    frames.iter().map(|f| f["type"].as_str().unwrap()).collect()
}

#[test]
fn openai_chunks_role_first_reasoning_content_then_citations() {
    let options = WireOptions {
        model: "deepsearch".into(),
        include_usage: true,
        ..WireOptions::default()
    };
    let chunks = run(Format::OpenAi, &options);
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "chatcmpl-r1"));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let delta = |c: &Value, key: &str| c["choices"][0]["delta"][key].as_str().map(str::to_owned);
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| delta(c, "reasoning_content"))
        .collect();
    assert!(
        reasoning.contains("Round 1 queries: tokio runtime"),
        "{reasoning}"
    );
    assert!(reasoning.contains("https://tokio.rs/"), "{reasoning}");
    let content: String = chunks.iter().filter_map(|c| delta(c, "content")).collect();
    assert_eq!(content, "Tokio is a runtime [1].");
    let last = &chunks[chunks.len() - 2];
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["citations"], json!(["https://tokio.rs/"]));
    let note = &last["choices"][0]["delta"]["annotations"][0];
    assert_eq!(note["type"], "url_citation");
    assert_eq!(
        (
            note["url_citation"]["start_index"].as_u64(),
            note["url_citation"]["end_index"].as_u64()
        ),
        (Some(19), Some(22)),
        "the span of `[1]`"
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn ai_sdk_parts_in_protocol_order() {
    let parts = run(Format::AiSdk, &WireOptions::default());
    assert_eq!(
        types(&parts),
        [
            "start",
            "start-step",
            "data-progress",
            "data-plan",
            "data-results",
            "text-start",
            "text-delta",
            "text-delta",
            "text-end",
            "source-url",
            "finish-step",
            "finish"
        ]
    );
    assert_eq!(parts[2]["transient"], true);
    assert_eq!(parts[3]["data"]["queries"], json!(["tokio runtime"]));
    assert_eq!(parts[9]["url"], "https://tokio.rs/");
    assert_eq!(parts[9]["sourceId"], "1");
}

#[test]
fn ag_ui_events_pair_every_step_and_patch_the_snapshot() {
    let options = WireOptions {
        thread_id: "t1".into(),
        run_id: "r1".into(),
        ..WireOptions::default()
    };
    let events = run(Format::AgUi, &options);
    let kinds = types(&events);
    assert_eq!(kinds[..2], ["RUN_STARTED", "STATE_SNAPSHOT"]);
    assert_eq!(*kinds.last().unwrap(), "RUN_FINISHED");
    let steps = |kind: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e["type"] == kind)
            .map(|e| e["stepName"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut started = steps("STEP_STARTED");
    let mut finished = steps("STEP_FINISHED");
    assert_eq!(started, ["plan", "search_1", "answer"]);
    started.sort();
    finished.sort();
    assert_eq!(started, finished);
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "TEXT_MESSAGE_CONTENT")
        .map(|e| e["delta"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Tokio is a runtime [1].");
    let last = events.last().unwrap();
    assert_eq!(last["result"]["sources"][0]["url"], "https://tokio.rs/");
    assert_eq!(
        (last["threadId"].as_str(), last["runId"].as_str()),
        (Some("t1"), Some("r1"))
    );
}

#[test]
fn stream_layer_errors_are_told_in_each_protocol() {
    let envelope = error_frame("r1", "the server is shutting down", "shutdown");
    assert_eq!(Format::Envelope.relay(&envelope), Relay::Pass);
    assert_eq!(Format::Genie.relay(&envelope), Relay::Pass);
    let frames = |format: Format| match format.relay(&envelope) {
        Relay::Frames(frames) => frames
            .iter()
            .map(|f| serde_json::from_str::<Value>(f).unwrap())
            .collect::<Vec<_>>(),
        Relay::Pass => panic!("{format:?} passed the envelope"),
    };
    assert_eq!(frames(Format::OpenAi)[0]["error"]["code"], "shutdown");
    let ai = frames(Format::AiSdk);
    assert_eq!(types(&ai), ["error", "finish"]);
    assert_eq!(ai[0]["errorText"], "the server is shutting down");
    let ag = frames(Format::AgUi);
    assert_eq!(
        (ag[0]["type"].as_str(), ag[0]["code"].as_str()),
        (Some("RUN_ERROR"), Some("shutdown"))
    );
    // A frame of the protocol itself, even one of type `error`, goes out as logged.
    let own = b"data: {\"type\":\"error\",\"errorText\":\"x\"}\n\n";
    assert_eq!(Format::AiSdk.relay(own), Relay::Pass);
}

#[test]
fn protocol_requests_become_the_contracts_fields() {
    let obj = |v: Value| v.as_object().unwrap().clone();
    let (body, options) = canonical(
        Format::OpenAi,
        &obj(json!({"model": "deepsearch", "temperature": 0.2, "max_loop": 2,
            "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
                         {"role": "user", "content": [{"type": "text", "text": "what is tokio"}]}]})),
    )
    .unwrap();
    assert_eq!(body["query"], "what is tokio");
    assert_eq!(
        (body["stream"].as_bool(), body["max_loop"].as_u64()),
        (Some(false), Some(2))
    );
    assert!(options.include_usage);
    let e = canonical(Format::OpenAi, &obj(json!({"model": "m", "messages": []}))).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("messages"));
    let e = canonical(Format::OpenAi, &obj(json!({"messages": []}))).unwrap_err();
    assert_eq!(e.field.as_deref(), Some("model"));

    let (body, _) = canonical(
        Format::AiSdk,
        &obj(
            json!({"id": "chat1", "trigger": "submit-message", "messages": [
            {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "what is tokio"}]}]}),
        ),
    )
    .unwrap();
    assert_eq!(
        (body["query"].as_str(), body["request_id"].as_str()),
        (Some("what is tokio"), Some("chat1"))
    );

    let (body, options) = canonical(
        Format::AgUi,
        &obj(
            json!({"threadId": "t", "runId": "run 1", "state": {}, "tools": [], "context": [],
            "forwardedProps": {"max_loop": 1},
            "messages": [{"id": "1", "role": "user", "content": "what is tokio"}]}),
        ),
    )
    .unwrap();
    assert_eq!(body["max_loop"], 1);
    assert_eq!(options.run_id, "run 1", "echoed as sent");
    assert_ne!(
        body["request_id"], "run 1",
        "not a valid request id: a fresh one"
    );
}

#[test]
fn openai_refusals_use_its_statuses_and_error_object() {
    let e = ApiError::invalid(Some("query"), "must not be empty");
    assert_eq!(Format::OpenAi.refusal_status(&e), 400);
    assert_eq!(Format::AiSdk.refusal_status(&e), 422);
    let body: Value = serde_json::from_slice(&Format::OpenAi.error_body(&e)).unwrap();
    assert_eq!(
        body,
        json!({"error": {"message": "must not be empty", "type": "invalid_request_error",
                         "code": "invalid_request", "param": "messages"}})
    );
    assert_eq!(Format::for_path("/v1/models"), Format::OpenAi);
    assert_eq!(Format::for_path("/v1/tool/deepsearch"), Format::Genie);
    assert_eq!(Format::for_path("/nope"), Format::Envelope);
    let busy = ApiError::new(503, crate::api::ErrorCode::Overloaded, None, "busy");
    assert_eq!(Format::OpenAi.refusal_status(&busy), 429);
    assert_eq!(Format::Envelope.refusal_status(&busy), 503);
}
