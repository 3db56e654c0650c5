//! Tokens a model call spent: from the server's `usage` report when it sends one, else
//! counted from the text (about four characters a token, the usual rule for English and
//! code), so a token budget holds with servers that report nothing.

use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::config::ChatMessage;

/// Tokens of one or more model calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenUsage {
    pub prompt: u64,
    pub completion: u64,
}

impl TokenUsage {
    pub fn total(self) -> u64 {
        self.prompt + self.completion
    }
}

/// Where a streamed completion leaves the server's usage report, when one arrives.
pub type UsageReport = Arc<Mutex<Option<TokenUsage>>>;

/// Characters counted as one token when the server reports none.
const CHARS_PER_TOKEN: usize = 4;

/// The tokens `text` is counted as without a report: a quarter of its characters,
/// rounded up.
///
/// ```
/// use deepsearch_stream::llm::usage::count_tokens;
/// assert_eq!(count_tokens(""), 0);
/// assert_eq!(count_tokens("abcde"), 2);
/// ```
pub fn count_tokens(text: &str) -> u64 {
    text.chars().count().div_ceil(CHARS_PER_TOKEN) as u64
}

/// The prompt tokens of `messages` without a report.
pub fn count_prompt(messages: &[ChatMessage]) -> u64 {
    messages.iter().map(|m| count_tokens(&m.content)).sum()
}

/// The `usage` object of a completion or of a stream's chunk (OpenAI's
/// `prompt_tokens`/`completion_tokens`), when it has one with numbers in it.
///
/// ```
/// use deepsearch_stream::llm::usage::{reported, TokenUsage};
/// let v = serde_json::json!({"usage": {"prompt_tokens": 12, "completion_tokens": 3}});
/// assert_eq!(reported(&v), Some(TokenUsage { prompt: 12, completion: 3 }));
/// assert_eq!(reported(&serde_json::json!({"usage": null})), None);
/// ```
pub fn reported(value: &Value) -> Option<TokenUsage> {
    let usage = value.get("usage")?;
    let n = |name: &str| usage.get(name).and_then(Value::as_u64);
    let (prompt, completion) = (n("prompt_tokens"), n("completion_tokens"));
    if prompt.is_none() && completion.is_none() {
        return None;
    }
    Some(TokenUsage {
        prompt: prompt.unwrap_or(0),
        completion: completion.unwrap_or(0),
    })
}
