//! The Vercel AI SDK UI message stream (`POST /api/chat`, header
//! `x-vercel-ai-ui-message-stream: v1`), what `useChat` and its `DefaultChatTransport`
//! read.
//!
//! Parts: `start`, `start-step`, the plan and each round's results as `data-plan` and
//! `data-results` parts (status lines as transient `data-progress` parts, engine
//! failures as transient `data-warning`), the answer as `text-start` / `text-delta` /
//! `text-end`, one `source-url` per cited source, `finish-step`, `finish`, then
//! `data: [DONE]`; a failure is an `error` part with `errorText`, then `finish`.

use serde_json::{json, Map, Value};

use super::{copy_options, Encoder, WireOptions};
use crate::api::ApiError;
use crate::deepsearch::Message;

/// The id of the answer's one text part.
const TEXT_ID: &str = "text-1";

pub(super) fn failure(message: &str) -> Vec<String> {
    vec![
        super::json(&json!({"type": "error", "errorText": message})),
        super::json(&json!({"type": "finish", "finishReason": "error"})),
    ]
}

/// The request in the contract's fields: the chat `id` is the request id (the resume
/// route finds the chat's stream by it), the last user message's text parts the query.
pub(super) fn canonical(
    obj: &Map<String, Value>,
) -> Result<(Map<String, Value>, WireOptions), ApiError> {
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(ApiError::invalid(
            Some("messages"),
            "must be a list of UI messages",
        ));
    };
    let query = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| {
            // `parts` since AI SDK 5; `content` before.
            let parts = m.get("parts").or_else(|| m.get("content"))?;
            super::content_text(parts)
        })
        .ok_or_else(|| {
            ApiError::invalid(
                Some("messages"),
                "must hold a user message with a text part",
            )
        })?;
    let mut out = Map::new();
    out.insert("query".into(), Value::String(query));
    if let Some(id) = obj.get("id") {
        out.insert("request_id".into(), id.clone());
    }
    copy_options(obj, &mut out);
    Ok((out, WireOptions::default()))
}

/// The parts of one streamed answer.
pub(super) struct Parts {
    message_id: String,
    /// `text-start` was sent, `text-end` not yet.
    text_open: bool,
}

impl Parts {
    pub(super) fn new(request_id: &str) -> Self {
        Parts {
            message_id: format!("msg-{request_id}"),
            text_open: false,
        }
    }

    fn open_text(&mut self, frames: &mut Vec<String>) {
        if !self.text_open {
            self.text_open = true;
            frames.push(super::json(&json!({"type": "text-start", "id": TEXT_ID})));
        }
    }

    fn close_text(&mut self, frames: &mut Vec<String>) {
        if self.text_open {
            self.text_open = false;
            frames.push(super::json(&json!({"type": "text-end", "id": TEXT_ID})));
        }
    }
}

fn transient(kind: &str, data: Value) -> Vec<String> {
    vec![super::json(
        &json!({"type": kind, "data": data, "transient": true}),
    )]
}

impl Encoder for Parts {
    fn start(&mut self) -> Vec<String> {
        vec![
            super::json(&json!({"type": "start", "messageId": self.message_id})),
            super::json(&json!({"type": "start-step"})),
        ]
    }

    fn message(&mut self, message: &Message) -> Vec<String> {
        let mut frames = Vec::new();
        match message {
            Message::Status(line) | Message::Progress(line) => {
                return transient("data-progress", json!({"text": line}));
            }
            Message::Warning(w) => {
                return transient("data-warning", serde_json::to_value(w).unwrap_or_default());
            }
            Message::Plan(plan) => frames.push(super::json(&json!({
                "type": "data-plan",
                "id": format!("plan-{}", plan.round),
                "data": plan,
            }))),
            Message::Intermediate(round) => frames.push(super::json(&json!({
                "type": "data-results",
                "id": format!("results-{}", round.round),
                "data": round,
            }))),
            Message::Answer(piece) if piece.is_empty() => {}
            Message::Answer(piece) => {
                self.open_text(&mut frames);
                frames.push(super::json(
                    &json!({"type": "text-delta", "id": TEXT_ID, "delta": piece}),
                ));
            }
            Message::Final(done) => {
                if !self.text_open && !done.answer.is_empty() {
                    // No piece was streamed (a mode without them): the answer whole.
                    self.open_text(&mut frames);
                    frames.push(super::json(
                        &json!({"type": "text-delta", "id": TEXT_ID, "delta": done.answer}),
                    ));
                }
                self.close_text(&mut frames);
                for source in &done.sources {
                    frames.push(super::json(&json!({
                        "type": "source-url",
                        "sourceId": source.id.to_string(),
                        "url": source.url,
                        "title": source.title,
                    })));
                }
                frames.push(super::json(&json!({"type": "finish-step"})));
                frames.push(super::json(
                    &json!({"type": "finish", "finishReason": "stop"}),
                ));
            }
        }
        frames
    }

    fn failed(&mut self, message: &str, _code: &str) -> Vec<String> {
        let mut frames = Vec::new();
        self.close_text(&mut frames);
        frames.extend(failure(message));
        frames
    }
}
