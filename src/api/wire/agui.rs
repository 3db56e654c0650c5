//! AG-UI (`POST /ag-ui`): the event stream copilot frameworks (CopilotKit and the agent
//! frameworks that emit AG-UI) render.
//!
//! `RUN_STARTED`; the shared state as a `STATE_SNAPSHOT` (`{query, status, plan,
//! results, sources, answer}`) then `STATE_DELTA` JSON Patches as the search goes; a
//! `STEP_STARTED` / `STEP_FINISHED` pair per phase (`plan`, `search_1`, `search_2`...,
//! `answer`); the answer as `TEXT_MESSAGE_START` / `CONTENT` / `END`; `RUN_FINISHED`
//! with `{answer, sources}` as its result, or `RUN_ERROR`. No `[DONE]`: AG-UI has none.

use serde_json::{json, Map, Value};

use super::{content_text, copy_options, Encoder, WireOptions};
use crate::api::{new_request_id, valid_request_id, ApiError};
use crate::deepsearch::Message;

pub(super) fn failure(message: &str, code: &str) -> Vec<String> {
    vec![super::json(
        &json!({"type": "RUN_ERROR", "message": message, "code": code}),
    )]
}

/// `RunAgentInput` in the contract's fields: the last user message is the query; the
/// search options may come in `forwardedProps`. A `runId` that is a valid request id
/// names the search (in logs); any other gets a fresh one, and is still echoed.
pub(super) fn canonical(
    obj: &Map<String, Value>,
) -> Result<(Map<String, Value>, WireOptions), ApiError> {
    let text = |key: &str| obj.get(key).and_then(Value::as_str).map(str::to_owned);
    let Some(Value::Array(messages)) = obj.get("messages") else {
        return Err(ApiError::invalid(
            Some("messages"),
            "must be a list of messages",
        ));
    };
    let query = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .and_then(content_text)
        .ok_or_else(|| {
            ApiError::invalid(
                Some("messages"),
                "must hold a user message with text content",
            )
        })?;
    let run_id = text("runId").unwrap_or_else(new_request_id);
    let thread_id = text("threadId").unwrap_or_else(new_request_id);
    let mut out = Map::new();
    out.insert("query".into(), Value::String(query));
    let request_id = if valid_request_id(&run_id) {
        run_id.clone()
    } else {
        new_request_id()
    };
    out.insert("request_id".into(), Value::String(request_id));
    if let Some(Value::Object(props)) = obj.get("forwardedProps") {
        copy_options(props, &mut out);
    }
    let options = WireOptions {
        thread_id,
        run_id,
        ..WireOptions::default()
    };
    Ok((out, options))
}

/// The events of one run.
pub(super) struct Events {
    query: String,
    thread_id: String,
    run_id: String,
    message_id: String,
    /// Steps started and not yet finished, in order.
    open_steps: Vec<String>,
    text_open: bool,
}

impl Events {
    pub(super) fn new(query: &str, options: &WireOptions) -> Self {
        Events {
            query: query.to_string(),
            thread_id: options.thread_id.clone(),
            run_id: options.run_id.clone(),
            message_id: format!("msg-{}", options.run_id),
            open_steps: Vec::new(),
            text_open: false,
        }
    }

    fn start_step(&mut self, name: String, out: &mut Vec<String>) {
        out.push(super::json(
            &json!({"type": "STEP_STARTED", "stepName": name}),
        ));
        self.open_steps.push(name);
    }

    fn finish_step(&mut self, name: &str, out: &mut Vec<String>) {
        if let Some(at) = self.open_steps.iter().position(|s| s == name) {
            self.open_steps.remove(at);
            out.push(super::json(
                &json!({"type": "STEP_FINISHED", "stepName": name}),
            ));
        }
    }

    fn finish_all_steps(&mut self, out: &mut Vec<String>) {
        for name in std::mem::take(&mut self.open_steps).into_iter().rev() {
            out.push(super::json(
                &json!({"type": "STEP_FINISHED", "stepName": name}),
            ));
        }
    }

    fn open_text(&mut self, out: &mut Vec<String>) {
        if !self.text_open {
            self.text_open = true;
            self.start_step("answer".into(), out);
            out.push(super::json(&json!({
                "type": "TEXT_MESSAGE_START", "messageId": self.message_id, "role": "assistant",
            })));
        }
    }

    fn content(&self, delta: &str, out: &mut Vec<String>) {
        // AG-UI refuses an empty delta.
        if !delta.is_empty() {
            out.push(super::json(&json!({
                "type": "TEXT_MESSAGE_CONTENT", "messageId": self.message_id, "delta": delta,
            })));
        }
    }
}

fn delta(ops: Value) -> String {
    super::json(&json!({"type": "STATE_DELTA", "delta": ops}))
}

impl Encoder for Events {
    fn start(&mut self) -> Vec<String> {
        vec![
            super::json(
                &json!({"type": "RUN_STARTED", "threadId": self.thread_id, "runId": self.run_id}),
            ),
            super::json(&json!({"type": "STATE_SNAPSHOT", "snapshot": {
                "query": self.query, "status": "", "plan": [], "results": [], "sources": [], "answer": "",
            }})),
        ]
    }

    fn message(&mut self, message: &Message) -> Vec<String> {
        let mut out = Vec::new();
        match message {
            Message::Status(line) | Message::Progress(line) => {
                out.push(delta(
                    json!([{"op": "replace", "path": "/status", "value": line}]),
                ));
            }
            Message::Warning(_) => {}
            Message::Plan(plan) => {
                if plan.round == 1 {
                    self.start_step("plan".into(), &mut out);
                }
                out.push(delta(
                    json!([{"op": "add", "path": "/plan/-", "value": plan}]),
                ));
                self.finish_step("plan", &mut out);
                self.start_step(format!("search_{}", plan.round), &mut out);
            }
            Message::Intermediate(round) => {
                out.push(delta(
                    json!([{"op": "add", "path": "/results/-", "value": round}]),
                ));
                self.finish_step(&format!("search_{}", round.round), &mut out);
            }
            Message::Answer(piece) => {
                self.open_text(&mut out);
                self.content(piece, &mut out);
            }
            Message::Final(done) => {
                if !self.text_open {
                    self.open_text(&mut out);
                    self.content(&done.answer, &mut out);
                }
                out.push(super::json(
                    &json!({"type": "TEXT_MESSAGE_END", "messageId": self.message_id}),
                ));
                self.text_open = false;
                out.push(delta(json!([
                    {"op": "replace", "path": "/sources", "value": done.sources},
                    {"op": "replace", "path": "/answer", "value": done.answer},
                ])));
                self.finish_all_steps(&mut out);
                out.push(super::json(&json!({
                    "type": "RUN_FINISHED",
                    "threadId": self.thread_id,
                    "runId": self.run_id,
                    "result": {"answer": done.answer, "sources": done.sources},
                })));
            }
        }
        out
    }

    fn failed(&mut self, message: &str, code: &str) -> Vec<String> {
        failure(message, code)
    }
}
