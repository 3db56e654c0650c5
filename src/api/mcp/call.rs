//! One `tools/call`: the search on its own stream, its progress as
//! `notifications/progress`, its result as the JSON-RPC response that ends the stream,
//! and the open calls a `notifications/cancelled` can find.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::jsonrpc::{notification, response, sse_event, Code, RpcError};
use super::tool;
use crate::api::{SearchRequest, Service};
use crate::deepsearch::{DeepSearchError, FinalData, Message, Sink, Texts};
use crate::stream::{
    CloseHandle, EventStream, Failure, FrameId, HeartbeatFormat, Sender, StreamConfig,
};

/// The calls in progress that a client may cancel, by session and request id. Each is
/// removed when its stream ends, so it holds at most one entry per admitted search.
#[derive(Debug, Default)]
pub struct OpenCalls {
    calls: Mutex<HashMap<CallKey, (u64, CloseHandle)>>,
    generation: AtomicU64,
}

/// A session id (empty without one) and the request id's JSON text.
type CallKey = (String, String);

impl OpenCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CallKey, (u64, CloseHandle)>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes `stream` cancellable as `key` until it ends.
    fn track(self: &Arc<Self>, key: CallKey, stream: &EventStream) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        self.lock()
            .insert(key.clone(), (generation, stream.close_handle()));
        let calls = Arc::clone(self);
        stream.on_close_cancel(move || {
            let mut open = calls.lock();
            // A later call that reused the id is not this one's to remove.
            if open.get(&key).is_some_and(|(g, _)| *g == generation) {
                open.remove(&key);
            }
        });
    }

    /// Stops the call `id` of `session`: its search, and every engine and model request
    /// in flight for it, end now. False when no such call is open.
    pub fn cancel(&self, session: Option<&str>, id: &Value) -> bool {
        let key = (session.unwrap_or("").to_string(), id.to_string());
        let handle = self.lock().remove(&key).map(|(_, handle)| handle);
        // Closed outside the lock: closing runs the stream's hooks, one of which locks it.
        match handle {
            Some(handle) => {
                handle.close();
                true
            }
            None => false,
        }
    }
}

/// How a call is answered: for which request, under which revision's rules.
#[derive(Debug, Clone)]
pub struct Call {
    pub id: Value,
    /// The client's session (2025 revisions), under which `notifications/cancelled` finds it.
    pub session: Option<String>,
    /// The params' `_meta.progressToken`: send progress under it.
    pub progress_token: Option<Value>,
    /// 2026-07-28: results carry `resultType`, and nothing but closing the stream cancels.
    pub modern: bool,
}

/// Starts the search of a `tools/call`: a stream of SSE events holding progress
/// notifications, then the response, and nothing after it.
pub fn start(service: &Service, call: Call, req: SearchRequest) -> Result<EventStream, RpcError> {
    let permit = service
        .admit_mcp()
        .map_err(|e| RpcError::new(e.status, Code::Internal, e.message).to(&call.id))?;
    let deepsearch = service
        .deepsearch()
        .with_engines(&req.engines)
        .map_err(|e| RpcError::new(200, Code::InvalidParams, e.to_string()).to(&call.id))?;
    let config = StreamConfig {
        // A `data:` heartbeat would be a message the client cannot parse.
        heartbeat_format: HeartbeatFormat::Comment,
        // The response ends the exchange; `[DONE]` would be a message it cannot parse.
        done_frame: false,
        ..service.stream_config().clone()
    };
    let locale = req
        .search
        .locale
        .unwrap_or(service.deepsearch().settings().locale);
    let search = req.search;
    let (id, modern) = (call.id.clone(), call.modern);
    let progress = call.progress_token.clone().map(|token| Progress {
        token,
        texts: Texts(locale),
        planned: search.max_loop,
        round: 0,
        phase: 0,
        in_phase: 0,
    });
    let stream = EventStream::spawn(&req.request_id, config, move |tx| async move {
        let _permit = permit;
        let mut sink = CallSink {
            tx: tx.clone(),
            progress,
            warnings: Vec::new(),
            documents: 0,
        };
        let mut result = match deepsearch.run(&search, &mut sink).await {
            Ok(done) => sink.result(&done),
            // Nobody is left to answer.
            Err(DeepSearchError::Closed | DeepSearchError::TimedOut) => return Ok(()),
            Err(e) => tool::failure(&format!("the search failed: {e}")),
        };
        if modern {
            result["resultType"] = json!("complete");
        }
        let frame = sse_event(&response(&id, result));
        tx.send_frame(FrameId::Unnumbered, frame)
            .await
            .map(drop)
            .map_err(|e| Failure::new(e.to_string(), "closed"))
    })
    .map_err(|e| RpcError::new(500, Code::Internal, e.to_string()).to(&call.id))?;
    if !call.modern {
        let session = call.session.unwrap_or_default();
        service
            .mcp_calls()
            .track((session, call.id.to_string()), &stream);
    }
    Ok(stream)
}

/// Where the search's messages go: the progress lines out as notifications, the rest
/// only counted for the result.
struct CallSink {
    tx: Sender,
    progress: Option<Progress>,
    /// What each failed engine call said.
    warnings: Vec<String>,
    /// Documents found in all rounds.
    documents: usize,
}

impl CallSink {
    /// The result; a tool error when every engine call failed and nothing was found,
    /// which is a failed search, not an answer.
    fn result(&self, done: &FinalData) -> Value {
        if self.documents == 0 && !self.warnings.is_empty() {
            let mut why = String::from("every search engine call failed:");
            for warning in &self.warnings {
                why.push_str("\n- ");
                why.push_str(warning);
            }
            return tool::failure(&why);
        }
        tool::result(done)
    }
}

impl Sink for CallSink {
    async fn emit(&mut self, message: Message) -> Result<(), DeepSearchError> {
        let line = match message {
            Message::Status(line) | Message::Progress(line) => line,
            Message::Intermediate(round) => {
                self.documents += round.results.iter().map(|r| r.docs.len()).sum::<usize>();
                return Ok(());
            }
            Message::Warning(w) => {
                self.warnings
                    .push(format!("{} ({}): {}", w.engine, w.query, w.message));
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Some(progress) = &mut self.progress else {
            return Ok(());
        };
        let params = progress.next(&line);
        let frame = sse_event(&notification("notifications/progress", params));
        match self.tx.send_frame(FrameId::Unnumbered, frame).await {
            Ok(_) => Ok(()),
            Err(crate::stream::StreamError::TimedOut) => Err(DeepSearchError::TimedOut),
            Err(_) => Err(DeepSearchError::Closed),
        }
    }
}

/// The progress of one call: `progress` counts the phases done (each search round, then
/// the answer), `total` the phases planned; notifications within a phase add a growing
/// fraction, as the protocol wants every notification's progress above the last.
#[derive(Debug)]
struct Progress {
    token: Value,
    texts: Texts,
    planned: usize,
    /// Rounds begun.
    round: usize,
    phase: usize,
    /// Notifications sent in this phase.
    in_phase: usize,
}

impl Progress {
    fn next(&mut self, line: &str) -> Value {
        // The phase is read off the loop's own lines: a round's opening line, the
        // answer's; the loop sends nothing else that marks them.
        let phase = if line == self.texts.round(self.round + 1) {
            self.round += 1;
            self.round - 1
        } else if line == self.texts.answering() {
            self.planned
        } else {
            self.phase
        };
        if phase != self.phase {
            self.phase = phase;
            self.in_phase = 0;
        }
        let k = self.in_phase as f64;
        self.in_phase += 1;
        json!({
            "progressToken": self.token,
            "progress": phase as f64 + k / (k + 1.0),
            "total": self.planned + 1,
            "message": line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deepsearch::Locale;

    fn progress(planned: usize) -> Progress {
        Progress {
            token: json!("t"),
            texts: Texts(Locale::En),
            planned,
            round: 0,
            phase: 0,
            in_phase: 0,
        }
    }

    #[test]
    fn progress_counts_phases_and_always_grows() {
        let mut p = progress(2);
        let texts = Texts(Locale::En);
        let lines = [
            texts.started(),
            texts.round(1),
            "Round 1: searching 1 query on 1 engine...".to_string(),
            texts.round(2),
            texts.answering(),
        ];
        let sent: Vec<Value> = lines.iter().map(|l| p.next(l)).collect();
        let values: Vec<f64> = sent
            .iter()
            .map(|v| v["progress"].as_f64().unwrap())
            .collect();
        assert_eq!(values, [0.0, 0.5, 2.0 / 3.0, 1.0, 2.0]);
        assert!(sent
            .iter()
            .all(|v| v["total"] == 3 && v["progressToken"] == "t"));
        assert_eq!(sent[4]["message"], "Writing the answer...");
    }

    #[tokio::test]
    async fn a_cancelled_call_is_closed_and_forgotten() {
        let calls = Arc::new(OpenCalls::default());
        let (_tx, stream) = EventStream::new("r", StreamConfig::default()).unwrap();
        calls.track(("s".into(), "1".into()), &stream);
        assert!(!calls.cancel(Some("other"), &json!(1)));
        assert!(calls.cancel(Some("s"), &json!(1)));
        assert!(stream.is_finished());
        assert!(calls.lock().is_empty());
        assert!(!calls.cancel(Some("s"), &json!(1)));
    }
}
