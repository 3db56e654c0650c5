//! Bodies in OpenAI's streaming wire format, for scripting the test server as an
//! OpenAI-compatible LLM server.

/// One `chat.completion.chunk` event in OpenAI's wire format, with the
/// given `delta` object and `finish_reason` (JSON literal, e.g. `null`).
pub fn chunk(delta: &str, finish_reason: &str) -> String {
    format!(
        "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,\
         \"model\":\"test-model\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"logprobs\":null,\
         \"finish_reason\":{finish_reason}}}]}}\n\n"
    )
}

/// A content chunk.
pub fn content(text: &str) -> String {
    chunk(
        &format!("{{\"content\":{}}}", serde_json::to_string(text).unwrap()),
        "null",
    )
}

/// The terminator OpenAI sends.
pub const DONE: &str = "data: [DONE]\n\n";
