//! OpenAI Chat Completions (`POST /v1/chat/completions`, `GET /v1/models`), the shapes the
//! `openai` SDKs and the chat UIs built on them read.
//!
//! A streamed search is `chat.completion.chunk`s: the role first, the search's progress
//! (plan, rounds, sources found) as `delta.reasoning_content` (what DeepSeek and vLLM
//! send, and such UIs show as the model's thinking), the answer with its `[n]` markers
//! as `delta.content`, then a last chunk with `finish_reason: "stop"`, the sources as
//! `url_citation` annotations (as OpenAI's search models give them) and as `citations`
//! (a list of URLs, as Perplexity's API does), then `data: [DONE]`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::{content_text, copy_options, Encoder, WireOptions};
use crate::api::ApiError;
use crate::deepsearch::{FinalData, Message, SourceRef};

/// The model id of the deep-search pipeline.
pub const MODEL_ID: &str = "deepsearch";

/// `GET /v1/models`: one model per pipeline. `created` is 0: a pipeline has no release
/// date, and both servers must answer the same bytes.
pub fn models_body() -> Vec<u8> {
    let body = json!({
        "object": "list",
        "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "deepsearch-stream"}],
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// OpenAI's error object. `type` follows OpenAI's for the status; `code` is the
/// contract's [`ErrorCode`](crate::api::ErrorCode), `param` the field at fault.
pub(super) fn error_body(e: &ApiError, status: u16) -> Vec<u8> {
    let kind = match status {
        401 => "authentication_error",
        429 => "rate_limit_error",
        500.. => "server_error",
        _ => "invalid_request_error",
    };
    let param = match e.field.as_deref() {
        Some("query") => Some("messages"),
        other => other,
    };
    let body = json!({"error": {"message": e.message, "type": kind, "code": e.code.as_str(), "param": param}});
    serde_json::to_vec(&body).unwrap_or_default()
}

/// A failure mid-stream: a chunk holding only `error`, which the `openai` SDKs raise as
/// an `APIError`.
pub(super) fn failure(message: &str, code: &str) -> Vec<String> {
    vec![super::json(
        &json!({"error": {"message": message, "type": "server_error", "code": code, "param": null}}),
    )]
}

fn invalid(field: &str, message: &str) -> ApiError {
    ApiError::invalid(Some(field), message)
}

/// The request in the contract's fields: the last user message is the query; options
/// that do not apply to a search (temperature, top_p...) are ignored.
pub(super) fn canonical(
    obj: &Map<String, Value>,
) -> Result<(Map<String, Value>, WireOptions), ApiError> {
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.clone(),
        None | Some(Value::Null) => return Err(invalid("model", "is required")),
        Some(_) => {
            return Err(invalid(
                "model",
                "must be a model id such as \"deepsearch\"",
            ))
        }
    };
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(invalid("messages", "must be a list of chat messages"));
    };
    let query = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .and_then(content_text)
        .ok_or_else(|| invalid("messages", "must hold a user message with text content"))?;
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => match o.get("include_usage") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(invalid(
                    "stream_options",
                    "include_usage must be true or false",
                ))
            }
        },
        Some(_) => return Err(invalid("stream_options", "must be an object")),
    };
    let mut out = Map::new();
    out.insert("query".into(), Value::String(query));
    // OpenAI's default is a whole completion, not a stream.
    out.insert(
        "stream".into(),
        obj.get("stream").cloned().unwrap_or(Value::Bool(false)),
    );
    copy_options(obj, &mut out);
    let options = WireOptions {
        model,
        include_usage,
        ..WireOptions::default()
    };
    Ok((out, options))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Tokens of `text` by OpenAI's rule of thumb (four characters each): the search does
/// not tokenize, and `usage` must still say roughly how much text came out.
fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// The url_citation annotations of `answer`: one per source, spanning its first `[n]`
/// marker (character offsets into the answer).
fn annotations(answer: &str, sources: &[SourceRef]) -> Vec<Value> {
    sources
        .iter()
        .filter_map(|s| {
            let marker = format!("[{}]", s.id);
            let at = answer.find(&marker)?;
            let start = answer[..at].chars().count();
            let end = start + marker.chars().count();
            Some(json!({"type": "url_citation", "url_citation": {
                "url": s.url, "title": s.title, "start_index": start, "end_index": end,
            }}))
        })
        .collect()
}

fn citations(sources: &[SourceRef]) -> Vec<&str> {
    sources.iter().map(|s| s.url.as_str()).collect()
}

/// The answer's `usage` (estimated, see [`estimate_tokens`]).
fn usage(prompt: u64, answer: &str) -> Value {
    let completion = estimate_tokens(answer);
    json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion})
}

/// `stream: false`: one `chat.completion` with the whole answer.
pub(super) fn completion(request_id: &str, options: &WireOptions, result: &FinalData) -> Vec<u8> {
    let body = json!({
        "id": format!("chatcmpl-{request_id}"),
        "object": "chat.completion",
        "created": now(),
        "model": options.model,
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": result.answer,
                "refusal": null,
                "annotations": annotations(&result.answer, &result.sources),
            },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "citations": citations(&result.sources),
        "usage": usage(estimate_tokens(&result.queries.join(" ")), &result.answer),
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The chunks of one streamed completion.
pub(super) struct Chunks {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
}

impl Chunks {
    pub(super) fn new(request_id: &str, options: &WireOptions) -> Self {
        Chunks {
            id: format!("chatcmpl-{request_id}"),
            created: now(),
            model: options.model.clone(),
            include_usage: options.include_usage,
        }
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Map<String, Value> {
        let chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason}],
        });
        match chunk {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    fn reasoning(&self, line: String) -> Vec<String> {
        let delta = json!({"reasoning_content": line + "\n"});
        vec![super::json(&Value::Object(self.chunk(delta, None)))]
    }
}

impl Encoder for Chunks {
    fn start(&mut self) -> Vec<String> {
        let delta = json!({"role": "assistant", "content": ""});
        vec![super::json(&Value::Object(self.chunk(delta, None)))]
    }

    fn message(&mut self, message: &Message) -> Vec<String> {
        match message {
            Message::Status(line) | Message::Progress(line) => self.reasoning(line.clone()),
            Message::Plan(plan) => self.reasoning(format!(
                "Round {} queries: {}",
                plan.round,
                plan.queries.join("; ")
            )),
            Message::Intermediate(round) => {
                let docs: Vec<String> = round
                    .results
                    .iter()
                    .flat_map(|r| &r.docs)
                    .map(|d| format!("- {} ({})", d.title, d.url))
                    .collect();
                let mut line = format!("Round {}: {} new sources", round.round, docs.len());
                for doc in docs {
                    line.push('\n');
                    line.push_str(&doc);
                }
                self.reasoning(line)
            }
            Message::Warning(w) => self.reasoning(format!(
                "Engine {} failed for {:?}: {}",
                w.engine, w.query, w.message
            )),
            Message::Answer(piece) if piece.is_empty() => Vec::new(),
            Message::Answer(piece) => {
                let delta = json!({"content": piece});
                vec![super::json(&Value::Object(self.chunk(delta, None)))]
            }
            Message::Final(done) => {
                let delta = json!({"annotations": annotations(&done.answer, &done.sources)});
                let mut last = self.chunk(delta, Some("stop"));
                last.insert("citations".into(), json!(citations(&done.sources)));
                let mut frames = vec![super::json(&Value::Object(last))];
                if self.include_usage {
                    let mut chunk = self.chunk(Value::Null, None);
                    chunk.insert("choices".into(), json!([]));
                    let prompt = estimate_tokens(&done.queries.join(" "));
                    chunk.insert("usage".into(), usage(prompt, &done.answer));
                    frames.push(super::json(&Value::Object(chunk)));
                }
                frames
            }
        }
    }

    fn failed(&mut self, message: &str, code: &str) -> Vec<String> {
        failure(message, code)
    }
}
