//! Getting JSON out of model output.
//!
//! Asked for "JSON only", models still wrap it in prose, Markdown fences or a
//! think block. These helpers find the first JSON value in the text that
//! deserializes into the wanted type, so the planner and reasoner prompts
//! work with small local models too.

use serde::de::DeserializeOwned;

use super::think::split_think;
use super::LlmError;

/// Bounds the work on pathological output such as ten thousand `{`.
const MAX_CANDIDATES: usize = 64;
const MAX_MISSES: usize = 16;

/// Parses the first JSON object or array in `text` that deserializes as `T`.
///
/// Tries, in order: the answer part after any think block as a whole, each
/// Markdown code fence, then every balanced `{...}` / `[...]` span (strings
/// and escapes respected) from left to right; the reasoning part is the last
/// resort, for models that put everything inside the think block.
///
/// ```
/// use deepsearch_stream::llm::parse_json_lenient;
/// #[derive(serde::Deserialize)]
/// struct Plan { queries: Vec<String> }
///
/// let text = "<think>Let me plan {not json}</think>Sure! Here you go:\n```json\n{\"queries\": [\"a\", \"b\"]}\n```";
/// let plan: Plan = parse_json_lenient(text).unwrap();
/// assert_eq!(plan.queries, ["a", "b"]);
/// ```
pub fn parse_json_lenient<T: DeserializeOwned>(text: &str) -> Result<T, LlmError> {
    let (reasoning, answer) = split_think(text);
    let mut first_error = None;
    for source in [answer.as_str(), reasoning.as_str()] {
        for candidate in json_candidates(source) {
            match serde_json::from_str::<T>(candidate) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
    }
    let preview: String = text.chars().take(200).collect();
    Err(LlmError::Json(match first_error {
        Some(e) => format!("no JSON value of the expected shape ({e}) in: {preview}"),
        None => format!("no JSON found in: {preview}"),
    }))
}

/// Candidate JSON spans of `text`, most likely first.
///
/// ```
/// use deepsearch_stream::llm::json::json_candidates;
/// let c = json_candidates("Result: {\"a\": \"}\"} and [1, 2]");
/// assert_eq!(c, ["{\"a\": \"}\"}", "[1, 2]"]);
/// ```
pub fn json_candidates(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let trimmed = text.trim();
    if trimmed.starts_with(['{', '[']) {
        out.push(trimmed);
    }
    out.extend(fenced_blocks(text));
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut misses = 0;
    while i < bytes.len() && out.len() < MAX_CANDIDATES {
        if matches!(bytes[i], b'{' | b'[') {
            if let Some(end) = balanced_end(bytes, i) {
                let span = &text[i..end];
                if !out.contains(&span) {
                    out.push(span);
                }
            } else {
                // Each miss scans to the end of the text; a few are normal
                // (a stray "{" in prose), many mean the text is hopeless.
                misses += 1;
                if misses > MAX_MISSES {
                    break;
                }
            }
        }
        i += 1;
    }
    out
}

/// Bodies of ``` fences (an info string such as `json` is skipped).
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("```") {
        let after = &rest[start + 3..];
        let body_start = after.find('\n').map_or(after.len(), |n| n + 1);
        let body = &after[body_start..];
        let Some(end) = body.find("```") else { break };
        let block = body[..end].trim();
        if !block.is_empty() {
            out.push(block);
        }
        rest = &body[end + 3..];
    }
    out
}

/// Byte index just past the bracket matching the one at `start`.
fn balanced_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (k, &b) in bytes.iter().enumerate().skip(start) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k + 1);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Verdict {
        is_answer: bool,
        #[serde(default)]
        reason: String,
    }

    #[test]
    fn finds_json_in_prose_fences_and_think() {
        let cases = [
            "{\"is_answer\": true}",
            "Sure: {\"is_answer\": true} hope that helps",
            "```\n{\"is_answer\": true}\n```",
            "<think>{\"draft\": 1}</think>{\"is_answer\": true}",
            "<think>maybe {\"is_answer\": true}</think>",
            "{\"other\": 1} then {\"is_answer\": true, \"reason\": \"a } brace\"}",
        ];
        for text in cases {
            let v: Verdict = parse_json_lenient(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(v.is_answer, "{text}");
        }
    }

    #[test]
    fn nested_objects_found_whole() {
        let v: serde_json::Value =
            parse_json_lenient("x {\"a\": {\"b\": [1, {\"c\": 2}]}} y").unwrap();
        assert_eq!(v["a"]["b"][1]["c"], 2);
    }

    #[test]
    fn errors_say_what_was_wrong() {
        let e = parse_json_lenient::<Verdict>("no json here").unwrap_err();
        assert!(e.to_string().contains("no JSON found"), "{e}");
        let e = parse_json_lenient::<Verdict>("{\"is_answer\": \"yes\"}").unwrap_err();
        assert!(e.to_string().contains("expected shape"), "{e}");
        assert!(parse_json_lenient::<Verdict>("{{{{").is_err());
        assert!(parse_json_lenient::<Verdict>("").is_err());
    }
}
