//! Streaming client for OpenAI-compatible `/chat/completions` servers.
//!
//! Written against what servers actually send rather than the happy path:
//! `data:` with or without a space, `choices` missing, null or empty, usage
//! chunks, reasoning in `reasoning_content` (DeepSeek, vLLM) or `reasoning`
//! (Ollama, newer vLLM) or inline `<think>` blocks, errors inside a 200
//! stream (llama.cpp, vLLM), streams that end without `[DONE]`, and servers
//! that ignore `stream: true` and answer with one JSON body.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::time::{timeout_at, Instant};

use super::think::{split_think, Delta, ThinkSplitter};
use super::LlmError;
use crate::sse::{DecodedEvent, Decoder};

/// Used when only a model (and maybe a key) is configured.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// Whole request, first byte to last; long answers from slow local models
/// need minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// TCP + TLS setup.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence between two chunks of a stream; covers a local model
/// digesting a long prompt before its first token.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Who wrote a chat message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

/// One chat message as sent to the server.
///
/// ```
/// use deepsearch_stream::llm::ChatMessage;
/// let m = ChatMessage::user("hi");
/// assert_eq!(serde_json::to_string(&m).unwrap(), r#"{"role":"user","content":"hi"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    /// A system message.
    ///
    /// ```
    /// assert_eq!(deepsearch_stream::llm::ChatMessage::system("x").content, "x");
    /// ```
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: Role::System,
            content: content.into(),
        }
    }

    /// A user message.
    ///
    /// ```
    /// assert_eq!(deepsearch_stream::llm::ChatMessage::user("x").content, "x");
    /// ```
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }

    /// An assistant message (for few-shot examples or history).
    ///
    /// ```
    /// assert_eq!(deepsearch_stream::llm::ChatMessage::assistant("x").content, "x");
    /// ```
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
    }
}

/// Options as a caller (CLI flag, Python keyword, server config) gives
/// them; anything left `None` falls back to the environment, then defaults.
#[derive(Clone, Default)]
pub struct LlmOptions {
    pub base_url: Option<String>,
    pub model: Option<String>,
    pub api_key: Option<String>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
}

impl fmt::Debug for LlmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmOptions")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl LlmOptions {
    /// Resolves against the process environment; see [`LlmOptions::resolve_with`].
    ///
    /// ```
    /// use deepsearch_stream::llm::LlmOptions;
    /// let opts = LlmOptions { model: Some("m".into()), base_url: Some("http://127.0.0.1:1/v1".into()), ..Default::default() };
    /// assert_eq!(opts.resolve().unwrap().unwrap().model, "m");
    /// ```
    pub fn resolve(self) -> Result<Option<LlmConfig>, LlmError> {
        self.resolve_with(|name| std::env::var(name).ok())
    }

    /// Fills gaps from `env`: base URL from `DEEPSEARCH_LLM_BASE_URL`, then
    /// `OPENAI_BASE_URL`, then [`DEFAULT_BASE_URL`]; model from
    /// `DEEPSEARCH_LLM_MODEL`; key from `DEEPSEARCH_LLM_API_KEY`, then
    /// `OPENAI_API_KEY`. Returns `Ok(None)` when no model is configured
    /// anywhere: the caller then uses the offline kit. A base URL given
    /// explicitly without any model is an error rather than a silent
    /// fallback, since the caller clearly meant to use a model.
    ///
    /// ```
    /// use deepsearch_stream::llm::LlmOptions;
    /// let env = |k: &str| (k == "OPENAI_API_KEY").then(|| "sk-test".to_string());
    /// assert!(LlmOptions::default().resolve_with(env).unwrap().is_none());
    /// let env = |k: &str| match k {
    ///     "DEEPSEARCH_LLM_MODEL" => Some("llama3".to_string()),
    ///     "OPENAI_BASE_URL" => Some("http://localhost:11434/v1/".to_string()),
    ///     _ => None,
    /// };
    /// let cfg = LlmOptions::default().resolve_with(env).unwrap().unwrap();
    /// assert_eq!(cfg.endpoint(), "http://localhost:11434/v1/chat/completions");
    /// assert_eq!(cfg.api_key, None);
    /// ```
    pub fn resolve_with(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<LlmConfig>, LlmError> {
        let non_empty =
            |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let from_env = |names: &[&str]| names.iter().find_map(|n| non_empty(env(n)));
        let explicit_url = non_empty(self.base_url);
        let Some(model) = non_empty(self.model).or_else(|| from_env(&["DEEPSEARCH_LLM_MODEL"]))
        else {
            return match explicit_url {
                Some(url) => Err(LlmError::Config(format!(
                    "base_url {url} given but no model: pass a model or set DEEPSEARCH_LLM_MODEL"
                ))),
                None => Ok(None),
            };
        };
        let base_url = explicit_url
            .or_else(|| from_env(&["DEEPSEARCH_LLM_BASE_URL", "OPENAI_BASE_URL"]))
            .unwrap_or_else(|| DEFAULT_BASE_URL.to_string());
        let mut config = LlmConfig::new(base_url, model);
        config.api_key = non_empty(self.api_key)
            .or_else(|| from_env(&["DEEPSEARCH_LLM_API_KEY", "OPENAI_API_KEY"]));
        config.timeout = self.timeout.unwrap_or(config.timeout);
        config.connect_timeout = self.connect_timeout.unwrap_or(config.connect_timeout);
        config.idle_timeout = self.idle_timeout.unwrap_or(config.idle_timeout);
        config.temperature = self.temperature;
        config.max_tokens = self.max_tokens;
        config.validate()?;
        Ok(Some(config))
    }
}

/// A resolved client configuration. `Debug` never shows the key.
#[derive(Clone, PartialEq)]
pub struct LlmConfig {
    /// API root such as `https://api.openai.com/v1` or
    /// `http://localhost:11434/v1` (Ollama); `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer`; local servers usually need none.
    pub api_key: Option<String>,
    /// Limit for the whole request, streaming included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Limit for the silence between two chunks of a stream.
    pub idle_timeout: Duration,
    /// Omitted from the request when `None` (the server's default applies).
    pub temperature: Option<f32>,
    /// Omitted from the request when `None`.
    pub max_tokens: Option<u32>,
}

impl fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("temperature", &self.temperature)
            .field("max_tokens", &self.max_tokens)
            .finish()
    }
}

impl LlmConfig {
    /// A configuration with default timeouts, no key and server-default sampling.
    ///
    /// ```
    /// use deepsearch_stream::llm::LlmConfig;
    /// let mut c = LlmConfig::new("http://localhost:8080/v1", "qwen");
    /// c.api_key = Some("secret".into());
    /// assert!(!format!("{c:?}").contains("secret"));
    /// ```
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            temperature: None,
            max_tokens: None,
        }
    }

    /// The chat-completions URL under `base_url`.
    ///
    /// ```
    /// use deepsearch_stream::llm::LlmConfig;
    /// assert_eq!(LlmConfig::new("http://h/v1/", "m").endpoint(), "http://h/v1/chat/completions");
    /// ```
    pub fn endpoint(&self) -> String {
        format!(
            "{}/chat/completions",
            self.base_url.trim().trim_end_matches('/')
        )
    }

    fn validate(&self) -> Result<(), LlmError> {
        let url = reqwest::Url::parse(&self.endpoint())
            .map_err(|e| LlmError::Config(format!("base_url {:?}: {e}", self.base_url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(LlmError::Config(format!(
                "base_url {:?} must be http or https",
                self.base_url
            )));
        }
        if self.model.trim().is_empty() {
            return Err(LlmError::Config("model is empty".into()));
        }
        Ok(())
    }
}

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
        futures::stream::unfold(StreamState::Start(self.clone(), messages), next_item)
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
        let deadline = Instant::now() + self.config.timeout;
        let response = self.send(&messages, false, deadline).await?;
        let body = self.read_body(response, deadline).await?;
        let completion = parse_completion(&body, &self.redactor())?;
        Ok(completion.content)
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
        };
        tracing::debug!(endpoint = %self.endpoint, model = %self.config.model, stream, "LLM request");
        let mut request = self.http.post(&self.endpoint).json(&body);
        if stream {
            request = request.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
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

    async fn open(self, messages: Vec<ChatMessage>) -> Result<Running, LlmError> {
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
        };
        if is_json {
            // The server ignored `stream: true`; one body is still an answer.
            let body = self.read_body(response, deadline).await?;
            let completion = parse_completion(&body, &running.redactor)?;
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
    Start(LlmClient, Vec<ChatMessage>),
    Running(Box<Running>),
    Done,
}

async fn next_item(mut state: StreamState) -> Option<(Result<Delta, LlmError>, StreamState)> {
    loop {
        match state {
            StreamState::Done => return None,
            StreamState::Start(client, messages) => match client.open(messages).await {
                Ok(running) => state = StreamState::Running(Box::new(running)),
                Err(e) => return Some((Err(e), StreamState::Done)),
            },
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
}

impl Running {
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

/// Choice 0 (servers with `n > 1` interleave choices; only the first is
/// the answer). `choices` may be missing, null or empty.
fn first_choice(chunk: &Value) -> Option<&Value> {
    chunk
        .get("choices")?
        .as_array()?
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

/// Text of a `content`-like field: a string, or an array of `{text}` parts.
fn text_of(field: Option<&Value>) -> Option<String> {
    match field? {
        Value::String(s) => Some(s.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// vLLM and FastAPI servers send `{"object": "error", "message": ...}`.
fn is_error_object(value: &Value) -> bool {
    value.get("object").and_then(Value::as_str) == Some("error")
}

struct Completion {
    reasoning: String,
    content: String,
    finish_reason: Option<String>,
}

fn parse_completion(body: &str, redactor: &Redactor) -> Result<Completion, LlmError> {
    let value: Value = serde_json::from_str(body).map_err(|e| {
        let preview: String = body.chars().take(200).collect();
        LlmError::Malformed(redactor.apply(&format!("{e}: {preview}")))
    })?;
    if value.get("error").is_some_and(|e| !e.is_null()) || is_error_object(&value) {
        return Err(stream_error(&value, redactor));
    }
    let choice = first_choice(&value)
        .ok_or_else(|| LlmError::Malformed("response has no choices".into()))?;
    let message = choice.get("message").or_else(|| choice.get("delta"));
    let field = |name: &str| text_of(message.and_then(|m| m.get(name)));
    let (inline_reasoning, content) = split_think(&field("content").unwrap_or_default());
    let reasoning = [
        field("reasoning_content")
            .or_else(|| field("reasoning"))
            .unwrap_or_default(),
        inline_reasoning,
    ]
    .into_iter()
    .filter(|s| !s.is_empty())
    .collect::<Vec<_>>()
    .join("\n");
    let finish_reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Completion {
        reasoning,
        content,
        finish_reason,
    })
}

/// The provider's error fields, from any of the shapes servers use.
struct ProviderError {
    message: String,
    kind: Option<String>,
    code: Option<String>,
}

fn provider_error(value: &Value) -> Option<ProviderError> {
    let as_text = |v: Option<&Value>| match v? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let (holder, message) = match value.get("error") {
        Some(Value::String(s)) => (value, s.clone()),
        Some(e @ Value::Object(_)) => (
            e,
            as_text(e.get("message")).unwrap_or_else(|| e.to_string()),
        ),
        _ => (
            value,
            as_text(value.get("message")).or_else(|| as_text(value.get("detail")))?,
        ),
    };
    Some(ProviderError {
        message,
        kind: as_text(holder.get("type")),
        code: as_text(holder.get("code")),
    })
}

fn is_context_length(e: &ProviderError) -> bool {
    let tagged = [&e.kind, &e.code].iter().any(|f| {
        f.as_deref()
            .is_some_and(|v| v.contains("context_length") || v.contains("exceed_context_size"))
    });
    let m = e.message.to_lowercase();
    tagged
        || m.contains("context length")
        || m.contains("context window")
        || m.contains("context size")
        || m.contains("maximum context")
        || m.contains("too many tokens")
        || m.contains("prompt is too long")
}

fn api_error(status: u16, body: &str, redactor: &Redactor) -> LlmError {
    let parsed = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| provider_error(&v));
    let mut e = parsed.unwrap_or_else(|| {
        let text: String = body.trim().chars().take(500).collect();
        ProviderError {
            message: if text.is_empty() {
                "empty response body".into()
            } else {
                text
            },
            kind: None,
            code: None,
        }
    });
    e.message = redactor.apply(&e.message);
    if status == 401 {
        return LlmError::Unauthorized { message: e.message };
    }
    if is_context_length(&e) {
        return LlmError::ContextLength {
            status,
            message: e.message,
        };
    }
    LlmError::Api {
        status,
        message: e.message,
        kind: e.kind,
        code: e.code,
    }
}

fn stream_error(value: &Value, redactor: &Redactor) -> LlmError {
    let mut e = provider_error(value).unwrap_or(ProviderError {
        message: value.to_string(),
        kind: None,
        code: None,
    });
    e.message = redactor.apply(&e.message);
    if is_context_length(&e) {
        let status = e
            .code
            .as_deref()
            .and_then(|c| c.parse().ok())
            .unwrap_or(400);
        return LlmError::ContextLength {
            status,
            message: e.message,
        };
    }
    LlmError::StreamError {
        message: e.message,
        kind: e.kind,
        code: e.code,
    }
}

/// An error with its causes, since reqwest's top-level text ("error
/// sending request") hides the useful part ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

/// Scrubs the API key (and anything shaped like one) from text that may
/// reach logs: some providers echo the key back in their 401 message.
#[derive(Clone)]
struct Redactor {
    key: Option<String>,
}

impl Redactor {
    fn apply(&self, text: &str) -> String {
        let mut out = match self.key.as_deref().filter(|k| !k.is_empty()) {
            Some(key) => text.replace(key, "[redacted]"),
            None => text.to_string(),
        };
        // Providers echo masked keys ("sk-proj-****7890"); the visible tail
        // still identifies the key, so any word carrying it goes too.
        let key = self.key.as_deref().filter(|k| k.chars().count() >= 12);
        let tail = |n: usize| {
            key.map(|k| {
                let chars: Vec<char> = k.chars().collect();
                chars[chars.len() - n..].iter().collect::<String>()
            })
        };
        let (tail4, tail6) = (tail(4), tail(6));
        out = out
            .split_inclusive(char::is_whitespace)
            .map(|word| {
                let bare = word.trim_end();
                let start = bare.trim_start_matches(|c: char| !c.is_alphanumeric());
                let masked = bare.contains('*') || bare.contains('…') || bare.contains("...");
                let keyish = start.starts_with("sk-")
                    || tail6.as_deref().is_some_and(|t| bare.contains(t))
                    || (masked && tail4.as_deref().is_some_and(|t| bare.contains(t)));
                if keyish {
                    format!("[redacted]{}", &word[bare.len()..])
                } else {
                    word.to_string()
                }
            })
            .collect();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_full_and_partial_keys() {
        let r = Redactor {
            key: Some("sk-proj-abcdef1234567890".into()),
        };
        let msg = "Incorrect API key provided: sk-proj-********************7890. Also sk-proj-abcdef1234567890";
        let out = r.apply(msg);
        assert!(!out.contains("7890") && !out.contains("abcdef"), "{out}");
        assert!(out.starts_with("Incorrect API key provided: [redacted]"));
        let other = Redactor {
            key: Some("local-token-xyz123456".into()),
        };
        assert_eq!(
            other.apply("bad token …xyz123456 given"),
            "bad token [redacted] given"
        );
        assert_eq!(
            Redactor { key: None }.apply("plain message"),
            "plain message"
        );
    }

    #[test]
    fn provider_error_shapes() {
        let r = Redactor { key: None };
        let openai = r#"{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;
        assert!(matches!(
            api_error(400, openai, &r),
            LlmError::ContextLength { status: 400, .. }
        ));
        let llamacpp = r#"{"error":{"code":400,"message":"the request exceeds the available context size","type":"exceed_context_size_error"}}"#;
        assert!(matches!(
            api_error(400, llamacpp, &r),
            LlmError::ContextLength { .. }
        ));
        let vllm =
            r#"{"object":"error","message":"model not found","type":"NotFoundError","code":404}"#;
        match api_error(404, vllm, &r) {
            LlmError::Api {
                status,
                message,
                kind,
                code,
            } => {
                assert_eq!((status, message.as_str()), (404, "model not found"));
                assert_eq!(
                    (kind.as_deref(), code.as_deref()),
                    (Some("NotFoundError"), Some("404"))
                );
            }
            other => panic!("{other:?}"),
        }
        let ollama = r#"{"error":"model 'x' not found"}"#;
        assert!(api_error(404, ollama, &r)
            .to_string()
            .contains("model 'x' not found"));
        assert!(api_error(502, "<html>Bad gateway</html>", &r)
            .to_string()
            .contains("Bad gateway"));
        assert!(api_error(503, "", &r)
            .to_string()
            .contains("empty response body"));
    }

    #[test]
    fn completion_parsing_tolerates_variants() {
        let r = Redactor { key: None };
        let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"<think>hm</think>\n{\"a\":1}","reasoning_content":"deep"},"finish_reason":"stop"}]}"#;
        let c = parse_completion(body, &r).unwrap();
        assert_eq!(
            (c.reasoning.as_str(), c.content.as_str()),
            ("deep\nhm", "{\"a\":1}")
        );
        assert_eq!(c.finish_reason.as_deref(), Some("stop"));
        let parts = r#"{"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]}"#;
        assert_eq!(parse_completion(parts, &r).unwrap().content, "ab");
        assert!(matches!(
            parse_completion(r#"{"choices":null}"#, &r),
            Err(LlmError::Malformed(_))
        ));
        assert!(matches!(
            parse_completion("nope", &r),
            Err(LlmError::Malformed(_))
        ));
    }
}
