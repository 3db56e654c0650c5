//! The one SSE splitter of the Rust tests: a stream body cut into its frames, each
//! checked against the spec decoder.

use bytes::Bytes;
use deepsearch_stream::sse::decode_all;

/// Frames that carry data (events), as (their own id, or "" for none; data), in order.
/// A frame without data (a stream's opening `retry:`/`id:`) dispatches no event and is
/// left out ([`raw_frames`] has it).
pub fn frames(body: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(body).unwrap();
    text.split("\n\n")
        .filter(|f| f.lines().any(|l| l.starts_with("data:")))
        .map(|frame| {
            let id = frame
                .lines()
                .find_map(|l| l.strip_prefix("id: "))
                .unwrap_or("");
            // Each frame is checked against the spec decoder too.
            let data = decode_all(format!("{frame}\n\n").as_bytes())
                .pop()
                .map(|e| e.data)
                .unwrap_or_default();
            (id.to_string(), data)
        })
        .collect()
}

/// Each frame's raw bytes, `[DONE]` included.
pub fn raw_frames(body: &[u8]) -> Vec<Bytes> {
    body.split_inclusive(|&b| b == b'\n')
        .fold(vec![Vec::new()], |mut acc: Vec<Vec<u8>>, line| {
            acc.last_mut().unwrap().extend_from_slice(line);
            if line == b"\n" {
                acc.push(Vec::new());
            }
            acc
        })
        .into_iter()
        .filter(|f| !f.is_empty())
        .map(Bytes::from)
        .collect()
}

/// Events' data of an SSE body, `[DONE]` included, `data: heartbeat` not (a resumable
/// stream opens with one).
pub fn events(body: &[u8]) -> Vec<String> {
    decode_all(body)
        .into_iter()
        .map(|e| e.data)
        .filter(|d| d != "heartbeat")
        .collect()
}
