//! Client configuration: explicit options, environment fallback, defaults.
//! The API key is an [`Secret`], so it never appears in `Debug` output.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::LlmError;
use crate::http::Secret;

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
///
/// ```
/// use deepsearch_stream::llm::Role;
/// assert_eq!(serde_json::to_string(&Role::System).unwrap(), "\"system\"");
/// ```
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
/// `Debug` never shows the key.
///
/// ```
/// use deepsearch_stream::llm::LlmOptions;
/// let opts = LlmOptions { api_key: Some("sk-secret".into()), ..Default::default() };
/// assert!(!format!("{opts:?}").contains("sk-secret"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct LlmOptions {
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// An empty key counts as unset.
    pub api_key: Option<Secret>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
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
        config.api_key = self
            .api_key
            .filter(|key| !key.is_empty())
            .or_else(|| from_env(&["DEEPSEARCH_LLM_API_KEY", "OPENAI_API_KEY"]).map(Secret::new));
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
#[derive(Debug, Clone, PartialEq)]
pub struct LlmConfig {
    /// API root such as `https://api.openai.com/v1` or
    /// `http://localhost:11434/v1` (Ollama); `/chat/completions` is appended.
    pub base_url: String,
    pub model: String,
    /// Sent as `Authorization: Bearer`; local servers usually need none.
    pub api_key: Option<Secret>,
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

    pub(crate) fn validate(&self) -> Result<(), LlmError> {
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
