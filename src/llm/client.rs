//! Streaming client for OpenAI-compatible `/chat/completions` servers.
//!
//! Written against what servers actually send rather than the happy path:
//! `data:` with or without a space, `choices` missing, null or empty, usage
//! chunks, reasoning in `reasoning_content` (DeepSeek, vLLM) or `reasoning`
//! (Ollama, newer vLLM) or inline `<think>` blocks, errors inside a 200
//! stream (llama.cpp, vLLM), streams that end without `[DONE]`, and servers
//! that ignore `stream: true` and answer with one JSON body.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use tokio::time::{timeout_at, Instant};
use tracing::Instrument;

use super::config::{ChatMessage, LlmConfig};
use super::think::{Delta, ThinkSplitter};
use super::usage::{count_prompt, count_tokens, reported, TokenUsage, UsageReport};
use super::wire::{
    api_error, error_chain, first_choice, is_error_object, parse_completion, stream_error, text_of,
    Redactor,
};
use super::LlmError;
use crate::sse::{DecodedEvent, Decoder};
use crate::telemetry;

/// Client for one configured server and model. Cheap to clone.
#[derive(Debug, Clone)]
pub struct LlmClient {
    config: LlmConfig,
    endpoint: String,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct ChatRequest<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    /// Asks a streaming server for its usage chunk (OpenAI, vLLM, Ollama send it; others
    /// ignore the field), so token budgets count what the model reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

impl LlmClient {
    /// Builds the HTTP client (rustls with the ring provider).
    ///
    /// ```
    /// use deepsearch_stream::llm::{LlmClient, LlmConfig};
    /// assert!(LlmClient::new(LlmConfig::new("http://127.0.0.1:9/v1", "m")).is_ok());
    /// assert!(LlmClient::new(LlmConfig::new("not a url", "m")).is_err());
    /// ```
    pub fn new(config: LlmConfig) -> Result<Self, LlmError> {
        config.validate()?;
        // Another part of the process may have installed a provider first;
        // either way one is installed afterwards, which is all reqwest needs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(crate::http::POOL_MAX_IDLE_PER_HOST)
            .pool_idle_timeout(crate::http::POOL_IDLE_TIMEOUT)
            .user_agent(concat!("deepsearch-stream/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Config(error_chain(&e)))?;
        Ok(Self {
            endpoint: config.endpoint(),
            config,
            http,
        })
    }

    /// The configuration this client was built from.
    ///
    /// ```
    /// use deepsearch_stream::llm::{LlmClient, LlmConfig};
    /// let c = LlmClient::new(LlmConfig::new("http://127.0.0.1:9/v1", "m")).unwrap();
    /// assert_eq!(c.config().model, "m");
    /// ```
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Streams a chat completion (`stream: true`).
    ///
    /// Yields [`Delta::Content`] and [`Delta::Reasoning`] pieces as they
    /// arrive (inline `<think>` blocks become reasoning, even when split
    /// across chunks), then [`Delta::Finish`] with the `finish_reason`. The
    /// request is sent on first poll. The stream ends after the first error;
    /// a stream that closes with neither `finish_reason` nor `[DONE]` ends
    /// with [`LlmError::Truncated`] after whatever it delivered.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), deepsearch_stream::llm::LlmError> {
    /// use deepsearch_stream::llm::{ChatMessage, Delta, LlmClient, LlmConfig};
    /// use futures::StreamExt;
    /// let client = LlmClient::new(LlmConfig::new("http://localhost:11434/v1", "qwen3"))?;
    /// let mut stream = Box::pin(client.chat_stream(vec![ChatMessage::user("Hi")]));
    /// while let Some(delta) = stream.next().await {
    ///     if let Delta::Content(text) = delta? {
    ///         print!("{text}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn chat_stream(
        &self,
        messages: Vec<ChatMessage>,
    ) -> impl Stream<Item = Result<Delta, LlmError>> + Send + 'static {
        self.chat_stream_reporting(messages, None)
    }

    /// [`LlmClient::chat_stream`] that leaves the server's usage report (when it sends
    /// one) in `report`.
    pub fn chat_stream_reporting(
        &self,
        messages: Vec<ChatMessage>,
        report: Option<UsageReport>,
    ) -> impl Stream<Item = Result<Delta, LlmError>> + Send + 'static {
        // The span lasts as long as the stream: opened here, under the caller's span,
        // closed when the stream is dropped.
        let span = telemetry::model_span(&self.config.model, true);
        futures::stream::unfold(
            StreamState::Start(self.clone(), messages, report),
            next_item,
        )
        .map(move |item| {
            if let Err(e) = &item {
                telemetry::record_error(&span, e);
            }
            item
        })
    }

    /// The same client with `max_tokens` lowered to at most `most`: a token budget caps
    /// the answer's length.
    pub fn with_max_tokens(&self, most: u64) -> LlmClient {
        let most = u32::try_from(most).unwrap_or(u32::MAX).max(1);
        let mut client = self.clone();
        client.config.max_tokens = Some(client.config.max_tokens.map_or(most, |m| m.min(most)));
        client
    }

    /// One non-streaming completion; returns the answer text with any think
    /// block removed. Meant for the planner and reasoner JSON calls.
    ///
    /// ```no_run
    /// # async fn demo(client: deepsearch_stream::llm::LlmClient) -> Result<(), deepsearch_stream::llm::LlmError> {
    /// use deepsearch_stream::llm::ChatMessage;
    /// let text = client.chat(vec![ChatMessage::user("Say hi")]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn chat(&self, messages: Vec<ChatMessage>) -> Result<String, LlmError> {
        Ok(self.chat_counted(messages).await?.0)
    }

    /// [`LlmClient::chat`] with the tokens it spent: the server's report, else counted.
    pub async fn chat_counted(
        &self,
        messages: Vec<ChatMessage>,
    ) -> Result<(String, TokenUsage), LlmError> {
        let span = telemetry::model_span(&self.config.model, false);
        let call = async {
            let deadline = Instant::now() + self.config.timeout;
            let response = self.send(&messages, false, deadline).await?;
            let body = self.read_body(response, deadline).await?;
            let completion = parse_completion(&body, &self.redactor())?;
            let usage = completion.usage.unwrap_or_else(|| TokenUsage {
                prompt: count_prompt(&messages),
                completion: count_tokens(&completion.reasoning) + count_tokens(&completion.content),
            });
            Ok((completion.content, usage))
        };
        call.instrument(span.clone())
            .await
            .inspect_err(|e| telemetry::record_error(&span, e))
    }

    /// [`LlmClient::chat`] followed by [`super::parse_json_lenient`].
    ///
    /// ```no_run
    /// # async fn demo(client: deepsearch_stream::llm::LlmClient) -> Result<(), deepsearch_stream::llm::LlmError> {
    /// use deepsearch_stream::llm::prompts::PlannerReply;
    /// let reply: PlannerReply = client.chat_json(vec![]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn chat_json<T: serde::de::DeserializeOwned>(
        &self,
        messages: Vec<ChatMessage>,
    ) -> Result<T, LlmError> {
        super::parse_json_lenient(&self.chat(messages).await?)
    }

    /// [`LlmClient::chat_json`] with the tokens it spent (see [`LlmClient::chat_counted`]);
    /// a reply that is no JSON spent them too, so they come back beside the result.
    pub async fn chat_json_counted<T: serde::de::DeserializeOwned>(
        &self,
        messages: Vec<ChatMessage>,
    ) -> Result<(Result<T, LlmError>, TokenUsage), LlmError> {
        let (text, usage) = self.chat_counted(messages).await?;
        Ok((super::parse_json_lenient(&text), usage))
    }

    fn redactor(&self) -> Redactor {
        Redactor {
            key: self.config.api_key.clone(),
        }
    }

    async fn send(
        &self,
        messages: &[ChatMessage],
        stream: bool,
        deadline: Instant,
    ) -> Result<reqwest::Response, LlmError> {
        let body = ChatRequest {
            model: &self.config.model,
            messages,
            stream,
            temperature: self.config.temperature,
            max_tokens: self.config.max_tokens,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        };
        tracing::debug!(endpoint = %self.endpoint, model = %self.config.model, stream, "LLM request");
        let mut request = self.http.post(&self.endpoint).json(&body);
        if stream {
            request = request.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = timeout_at(deadline, request.send())
            .await
            .map_err(|_| LlmError::Timeout(self.config.timeout))?
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        if response.status().is_success() {
            return Ok(response);
        }
        // The body explains the failure; without it a 400 is unactionable.
        let body = timeout_at(deadline, response.text())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        let error = api_error(status, &body, &self.redactor());
        tracing::debug!(status, error = %error, "LLM request failed");
        Err(error)
    }

    async fn read_body(
        &self,
        response: reqwest::Response,
        deadline: Instant,
    ) -> Result<String, LlmError> {
        timeout_at(deadline, response.text())
            .await
            .map_err(|_| LlmError::Timeout(self.config.timeout))?
            .map_err(|e| LlmError::Truncated(self.redactor().apply(&error_chain(&e))))
    }

    fn transport_error(&self, e: &reqwest::Error) -> LlmError {
        let message = self.redactor().apply(&error_chain(e));
        if e.is_connect() {
            LlmError::Connect {
                url: self.endpoint.clone(),
                message,
            }
        } else if e.is_timeout() {
            LlmError::Timeout(self.config.timeout)
        } else {
            LlmError::Http(message)
        }
    }

    async fn open(
        self,
        messages: Vec<ChatMessage>,
        report: Option<UsageReport>,
    ) -> Result<Running, LlmError> {
        let deadline = Instant::now() + self.config.timeout;
        let response = self.send(&messages, true, deadline).await?;
        let is_json = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("application/json"));
        let mut running = Running {
            body: Box::pin(futures::stream::empty()),
            decoder: Decoder::new(),
            events: VecDeque::new(),
            scratch: Vec::new(),
            pending: VecDeque::new(),
            think: ThinkSplitter::new(),
            deadline,
            timeout: self.config.timeout,
            idle: self.config.idle_timeout,
            finished: false,
            ended: false,
            end_error: None,
            redactor: self.redactor(),
            report,
        };
        if is_json {
            // The server ignored `stream: true`; one body is still an answer.
            let body = self.read_body(response, deadline).await?;
            let completion = parse_completion(&body, &running.redactor)?;
            if let Some(usage) = completion.usage {
                running.leave_report(usage);
            }
            running.pending.extend(
                [
                    Delta::Reasoning(completion.reasoning),
                    Delta::Content(completion.content),
                ]
                .into_iter()
                .filter(|d| !matches!(d, Delta::Reasoning(s) | Delta::Content(s) if s.is_empty())),
            );
            running.pending.push_back(Delta::Finish(
                completion.finish_reason.unwrap_or_else(|| "stop".into()),
            ));
            running.ended = true;
        } else {
            running.body = Box::pin(response.bytes_stream());
        }
        Ok(running)
    }
}

enum StreamState {
    Start(LlmClient, Vec<ChatMessage>, Option<UsageReport>),
    Running(Box<Running>),
    Done,
}

async fn next_item(mut state: StreamState) -> Option<(Result<Delta, LlmError>, StreamState)> {
    loop {
        match state {
            StreamState::Done => return None,
            StreamState::Start(client, messages, report) => {
                match client.open(messages, report).await {
                    Ok(running) => state = StreamState::Running(Box::new(running)),
                    Err(e) => return Some((Err(e), StreamState::Done)),
                }
            }
            StreamState::Running(mut running) => {
                return match running.next().await {
                    Some(Ok(delta)) => Some((Ok(delta), StreamState::Running(running))),
                    Some(Err(e)) => Some((Err(e), StreamState::Done)),
                    None => None,
                }
            }
        }
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

struct Running {
    body: ByteStream,
    decoder: Decoder,
    events: VecDeque<DecodedEvent>,
    /// Reused output buffer for `Decoder::feed`.
    scratch: Vec<DecodedEvent>,
    pending: VecDeque<Delta>,
    think: ThinkSplitter,
    deadline: Instant,
    timeout: Duration,
    idle: Duration,
    /// A `finish_reason` arrived: the answer is complete even without `[DONE]`.
    finished: bool,
    /// Nothing more will be read; drain `pending`, then `end_error`.
    ended: bool,
    end_error: Option<LlmError>,
    redactor: Redactor,
    report: Option<UsageReport>,
}

impl Running {
    fn leave_report(&self, usage: TokenUsage) {
        if let Some(report) = &self.report {
            *report.lock().unwrap_or_else(|e| e.into_inner()) = Some(usage);
        }
    }

    async fn next(&mut self) -> Option<Result<Delta, LlmError>> {
        loop {
            if let Some(delta) = self.pending.pop_front() {
                return Some(Ok(delta));
            }
            if self.ended {
                return self.end_error.take().map(Err);
            }
            if let Some(event) = self.events.pop_front() {
                if let Err(e) = self.handle(&event) {
                    return Some(Err(e));
                }
                continue;
            }
            self.read().await;
        }
    }

    /// Reads one body chunk into `events`, or ends the stream.
    async fn read(&mut self) {
        let idle_deadline = Instant::now() + self.idle;
        let limit = idle_deadline.min(self.deadline);
        match timeout_at(limit, self.body.next()).await {
            Ok(Some(Ok(bytes))) => {
                self.decoder.feed(&bytes, &mut self.scratch);
                self.events.extend(self.scratch.drain(..));
            }
            Ok(Some(Err(e))) => {
                let message = self.redactor.apply(&error_chain(&e));
                self.end(Some(LlmError::Truncated(format!(
                    "connection failed mid-stream: {message}"
                ))));
            }
            Ok(None) => {
                self.decoder.finish();
                let error = (!self.finished).then(|| {
                    LlmError::Truncated(
                        "the server closed the stream before finish_reason or [DONE]".into(),
                    )
                });
                self.end(error);
            }
            // Some servers keep the connection open after the last chunk;
            // once finish_reason has arrived, silence just means done.
            Err(_) if self.finished => self.end(None),
            Err(_) if limit == self.deadline => self.end(Some(LlmError::Timeout(self.timeout))),
            Err(_) => self.end(Some(LlmError::IdleTimeout(self.idle))),
        }
    }

    fn end(&mut self, error: Option<LlmError>) {
        let mut tail = Vec::new();
        self.think.finish(&mut tail);
        self.pending.extend(tail);
        self.ended = true;
        self.end_error = error;
    }

    fn handle(&mut self, event: &DecodedEvent) -> Result<(), LlmError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        if data == "[DONE]" {
            self.end(None);
            return Ok(());
        }
        let value: Value = serde_json::from_str(data).map_err(|e| {
            let preview: String = data.chars().take(200).collect();
            LlmError::MalformedChunk(self.redactor.apply(&format!("{e}: {preview}")))
        })?;
        if event.event == "error"
            || value.get("error").is_some_and(|e| !e.is_null())
            || is_error_object(&value)
        {
            return Err(stream_error(&value, &self.redactor));
        }
        if let Some(usage) = reported(&value) {
            self.leave_report(usage);
        }
        let Some(choice) = first_choice(&value) else {
            return Ok(());
        };
        let delta = choice.get("delta").or_else(|| choice.get("message"));
        if let Some(delta) = delta {
            let reasoning =
                text_of(delta.get("reasoning_content")).or_else(|| text_of(delta.get("reasoning")));
            if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
                self.pending.push_back(Delta::Reasoning(reasoning));
            }
            if let Some(content) = text_of(delta.get("content")) {
                let mut out = Vec::new();
                self.think.push(&content, &mut out);
                self.pending.extend(out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            let mut out = Vec::new();
            self.think.finish(&mut out);
            self.pending.extend(out);
            self.pending.push_back(Delta::Finish(reason.to_string()));
            self.finished = true;
        }
        Ok(())
    }
}
