//! The output-format layer: one search, rendered in the protocol the client speaks.
//!
//! A [`Format`] decides everything a protocol shapes: the frames a search's typed
//! [`Message`]s become (through its [`Encoder`]), its start and end frames, its heartbeat
//! (an SSE comment for every protocol but the seed's, whose clients look for a data
//! line), whether `[DONE]` ends it, its extra response headers, its error bodies and
//! what happens to the search when the client leaves ([`Disconnect`]).
//!
//! The search's frames are encoded once, as it runs, and logged as they will go out (the
//! replay log of `src/api/resume.rs`), so a resume replays them byte for byte. Only the
//! endings the stream layer writes itself (a timeout, the shutdown, an abandoned or
//! superseded stream) come in the seed's envelope; [`Format::relay`] turns those into
//! the protocol's own error frames on their way out.
//!
//! No HTTP framework here: the faces call [`Service::handle`](super::Service::handle),
//! which picks the format from the [`Route`](super::Route).

mod agui;
mod aisdk;
mod genie;
mod openai;

use serde_json::{Map, Value};

pub use genie::GenieFormat;
pub use openai::{models_body, MODEL_ID};

use super::ApiError;
use crate::deepsearch::{DeepSearch, DeepSearchError, FinalData, Message, Request, Sink};
use crate::stream::{EventStream, Failure, HeartbeatFormat, Sender, StreamError};

/// A protocol a search is streamed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The seed's envelope `{"type", "data", "requestId", "timestamp"}`: the stream
    /// layer's own frames, written by [`DeepSearch::stream`].
    Envelope,
    /// JD genie-tool's message shapes.
    Genie,
    /// OpenAI Chat Completions chunks.
    OpenAi,
    /// The Vercel AI SDK UI message stream (v1).
    AiSdk,
    /// AG-UI events.
    AgUi,
}

/// What becomes of a search when its client's connection goes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// It goes on for the resume linger, waiting for a resume with `Last-Event-ID`.
    Linger,
    /// It is cancelled at once: the protocol has no way to resume.
    Cancel,
    /// It runs to its end (the AI SDK treats a closed tab as a disconnect, not a stop,
    /// and resumes from the start).
    RunToEnd,
}

/// Per-request values a format's frames carry, taken from the protocol's request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WireOptions {
    /// OpenAI: the `model` asked for, echoed in every chunk.
    pub model: String,
    /// OpenAI: `stream_options.include_usage`.
    pub include_usage: bool,
    /// AG-UI: `threadId` and `runId`.
    pub thread_id: String,
    pub run_id: String,
}

/// Turns one search's messages into a protocol's frames, each the JSON text of one
/// `data:` line. Stateful: a protocol may open a part on the first answer piece and close
/// it on the final result.
pub trait Encoder: Send + Sync {
    /// The frames before the first message.
    fn start(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// The frames for `message` (none for a message the protocol has no place for).
    fn message(&mut self, message: &Message) -> Vec<String>;
    /// The frames that end a failed search (`code` from [`DeepSearchError::code`]).
    fn failed(&mut self, message: &str, code: &str) -> Vec<String>;
}

/// A logged frame on its way to a client: as logged, or the protocol's own frames.
#[derive(Debug, PartialEq, Eq)]
pub enum Relay {
    Pass,
    Frames(Vec<String>),
}

impl Format {
    /// How an idle stream of this format proves it is alive; `None`: as configured.
    pub fn heartbeat(self) -> Option<HeartbeatFormat> {
        match self {
            Format::Envelope | Format::Genie => None,
            // Every one of these parsers skips a comment; a strict one rejects a
            // `data: heartbeat` line, which is not JSON.
            Format::OpenAi | Format::AiSdk | Format::AgUi => Some(HeartbeatFormat::Comment),
        }
    }

    /// Whether its frames carry event ids a client resumes with (`Last-Event-ID`); the
    /// other protocols' clients have no use for one.
    pub fn resumable(self) -> bool {
        matches!(self, Format::Envelope | Format::Genie)
    }

    /// Whether the stream ends with `data: [DONE]`.
    pub fn done_frame(self) -> bool {
        self != Format::AgUi
    }

    /// Response headers beyond the SSE ones.
    pub fn headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Format::AiSdk => &[("x-vercel-ai-ui-message-stream", "v1")],
            _ => &[],
        }
    }

    pub fn disconnect(self) -> Disconnect {
        match self {
            Format::Envelope | Format::Genie => Disconnect::Linger,
            Format::OpenAi | Format::AgUi => Disconnect::Cancel,
            Format::AiSdk => Disconnect::RunToEnd,
        }
    }

    /// The format of the route served at `path` (the envelope for any other path), for
    /// refusals given before routing (the API key's 401).
    pub fn for_path(path: &str) -> Format {
        super::Route::ALL
            .into_iter()
            .find(|r| r.path() == path)
            .map_or(Format::Envelope, super::Route::format)
    }

    /// A refusal's status: OpenAI's client picks its exception class by status, and
    /// OpenAI answers 400 for a bad field and 429 when it is overloaded.
    pub fn refusal_status(self, e: &ApiError) -> u16 {
        match (self, e.status) {
            (Format::OpenAi, 422) => 400,
            (Format::OpenAi, 503) if e.code == super::ErrorCode::Overloaded => 429,
            (_, status) => status,
        }
    }

    /// A refusal's JSON body: OpenAI's error object on the OpenAI routes, the
    /// contract's `{"error": {"code", "message", "field"}}` elsewhere.
    pub fn error_body(self, e: &ApiError) -> Vec<u8> {
        match self {
            Format::OpenAi => openai::error_body(e, self.refusal_status(e)),
            _ => e.body(),
        }
    }

    /// The encoder of one search in this format; `None` for the envelope, whose frames
    /// the stream layer writes itself.
    pub fn encoder(
        self,
        request_id: &str,
        query: &str,
        options: &WireOptions,
    ) -> Option<Box<dyn Encoder>> {
        Some(match self {
            Format::Envelope => return None,
            Format::Genie => Box::new(GenieFormat::new(request_id, query, true)),
            Format::OpenAi => Box::new(openai::Chunks::new(request_id, options)),
            Format::AiSdk => Box::new(aisdk::Parts::new(request_id)),
            Format::AgUi => Box::new(agui::Events::new(query, options)),
        })
    }

    /// What a logged frame becomes for the client: the stream layer's own `error`
    /// endings become the protocol's, everything else goes out as logged.
    pub fn relay(self, body: &[u8]) -> Relay {
        match self {
            Format::Envelope | Format::Genie => Relay::Pass,
            _ => match envelope_error(body) {
                Some((message, code)) => Relay::Frames(self.failure(&message, &code)),
                None => Relay::Pass,
            },
        }
    }

    /// The frames that end a stream which failed outside the search (stateless: no
    /// encoder is at hand then).
    pub fn failure(self, message: &str, code: &str) -> Vec<String> {
        match self {
            Format::Envelope | Format::Genie => Vec::new(),
            Format::OpenAi => openai::failure(message, code),
            Format::AiSdk => aisdk::failure(message),
            Format::AgUi => agui::failure(message, code),
        }
    }

    /// The JSON body of a search run to its end without streaming, for the formats that
    /// have one.
    pub fn whole(
        self,
        request_id: &str,
        query: &str,
        options: &WireOptions,
        result: &FinalData,
    ) -> Vec<u8> {
        let mut body = Vec::with_capacity(1024);
        match self {
            Format::Genie => {
                body = GenieFormat::new(request_id, query, false)
                    .encode(&Message::Final(result.clone()))
                    .unwrap_or_default();
            }
            Format::OpenAi => body = openai::completion(request_id, options, result),
            _ => {
                let _ = crate::json_compat::to_python_json(result, &mut body);
            }
        }
        body
    }
}

/// `(message, code)` of a frame the stream layer wrote as the seed's `error` envelope
/// (`crate::stream::frame::error_frame`); `None` for any other frame. The envelope is
/// written with `json.dumps` spacing (`{"type": "error"`), the formats here write compact
/// JSON, so the prefix alone tells them apart; the JSON is then read to be sure.
fn envelope_error(body: &[u8]) -> Option<(String, String)> {
    const PREFIX: &[u8] = b"data: {\"type\": \"error\", ";
    let line = body
        .split(|&b| b == b'\n')
        .find(|line| line.starts_with(PREFIX))?;
    let value: Value = serde_json::from_slice(&line[6..]).ok()?;
    let data = value.get("data")?;
    let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
    Some((text("message")?, text("code")?))
}

/// Runs `search` on a new stream, its messages in `encoder`'s frames: the start frames,
/// one group per message, and the encoder's failure frames when the search fails (the
/// stream then completes: the failure is told in the protocol's words, not the seed's).
pub fn spawn(
    mut encoder: Box<dyn Encoder>,
    deepsearch: std::sync::Arc<DeepSearch>,
    search: Request,
    request_id: &str,
    config: crate::stream::StreamConfig,
) -> Result<EventStream, StreamError> {
    EventStream::spawn(request_id, config, move |tx| async move {
        let start = encoder.start();
        let mut sink = WireSink { tx, encoder };
        sink.send(start).await.map_err(Failure::from)?;
        match deepsearch.run(&search, &mut sink).await {
            Ok(_) => Ok(()),
            // Nobody is left to tell, or the stream layer tells it (the timeout).
            Err(e @ (DeepSearchError::Closed | DeepSearchError::TimedOut)) => Err(e.into()),
            Err(e) => match sink.encoder.failed(&e.to_string(), e.code()) {
                // The protocol has no error of its own (genie-tool): the stream layer's.
                frames if frames.is_empty() => Err(e.into()),
                frames => sink.send(frames).await.map_err(Failure::from),
            },
        }
    })
}

/// A [`Sink`] writing a search's messages to its stream through an [`Encoder`].
struct WireSink {
    tx: Sender,
    encoder: Box<dyn Encoder>,
}

impl WireSink {
    async fn send(&self, frames: Vec<String>) -> Result<(), DeepSearchError> {
        for frame in frames {
            let body = self.tx.encode_data(&frame);
            match self.tx.send_encoded(body).await {
                Ok(_) => {}
                Err(StreamError::TimedOut) => return Err(DeepSearchError::TimedOut),
                Err(_) => return Err(DeepSearchError::Closed),
            }
        }
        Ok(())
    }
}

impl Sink for WireSink {
    async fn emit(&mut self, message: Message) -> Result<(), DeepSearchError> {
        let frames = self.encoder.message(&message);
        self.send(frames).await
    }
}

/// A request of one of these protocols, in the contract's own fields (`query`,
/// `request_id`, `max_loop`, `search_engines`, `stream`), so the contract's parser
/// checks them all, and the values its frames carry.
pub(crate) fn canonical(
    format: Format,
    obj: &Map<String, Value>,
) -> Result<(Map<String, Value>, WireOptions), ApiError> {
    match format {
        Format::OpenAi => openai::canonical(obj),
        Format::AiSdk => aisdk::canonical(obj),
        Format::AgUi => agui::canonical(obj),
        Format::Envelope | Format::Genie => Ok((obj.clone(), WireOptions::default())),
    }
}

/// The text of a chat message's `content`: a string, or the text parts of a list
/// (`{"type": "text", "text"}`, as OpenAI and AG-UI send them).
pub(crate) fn content_text(content: &Value) -> Option<String> {
    match content {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter(|p| p.get("type").and_then(Value::as_str) == Some("text"))
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        _ => None,
    }
}

/// Copies the search options a protocol carries as extra fields into `out`.
pub(crate) fn copy_options(from: &Map<String, Value>, out: &mut Map<String, Value>) {
    for (snake, camel) in [
        ("max_loop", "maxLoop"),
        ("search_engines", "searchEngines"),
        ("locale", "locale"),
    ] {
        if let Some(v) = from.get(snake).or_else(|| from.get(camel)) {
            out.insert(snake.to_string(), v.clone());
        }
    }
}

/// Compact JSON of `value` (the formats' frames; serialization of `Value` cannot fail).
pub(crate) fn json(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

#[cfg(test)]
mod tests;
