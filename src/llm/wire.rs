//! Reading what OpenAI-compatible servers send back: chunk and completion
//! bodies, the several error shapes, and scrubbing keys from messages.

use serde_json::Value;

use super::think::split_think;
use super::LlmError;
use crate::http::Secret;

/// Choice 0 (servers with `n > 1` interleave choices; only the first is
/// the answer). `choices` may be missing, null or empty.
pub(crate) fn first_choice(chunk: &Value) -> Option<&Value> {
    chunk
        .get("choices")?
        .as_array()?
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
}

/// Text of a `content`-like field: a string, or an array of `{text}` parts.
pub(crate) fn text_of(field: Option<&Value>) -> Option<String> {
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
pub(crate) fn is_error_object(value: &Value) -> bool {
    value.get("object").and_then(Value::as_str) == Some("error")
}

pub(crate) struct Completion {
    pub(crate) reasoning: String,
    pub(crate) content: String,
    pub(crate) finish_reason: Option<String>,
    /// The server's token report, when it sent one.
    pub(crate) usage: Option<super::usage::TokenUsage>,
}

pub(crate) fn parse_completion(body: &str, redactor: &Redactor) -> Result<Completion, LlmError> {
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
        usage: super::usage::reported(&value),
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

pub(crate) fn api_error(status: u16, body: &str, redactor: &Redactor) -> LlmError {
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

pub(crate) fn stream_error(value: &Value, redactor: &Redactor) -> LlmError {
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
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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
pub(crate) struct Redactor {
    pub(crate) key: Option<Secret>,
}

impl Redactor {
    pub(crate) fn apply(&self, text: &str) -> String {
        let key = self.key.as_ref().map(Secret::expose);
        let mut out = match key.filter(|k| !k.is_empty()) {
            Some(key) => text.replace(key, "[redacted]"),
            None => text.to_string(),
        };
        // Providers echo masked keys ("sk-proj-****7890"); the visible tail
        // still identifies the key, so any word carrying it goes too.
        let key = key.filter(|k| k.chars().count() >= 12);
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
