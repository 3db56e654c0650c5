//! Runs the SSE codec against the shared vectors in `tests/fixtures/sse/`.

#[path = "support/sse.rs"]
mod sse_support;

use deepsearch_stream::sse::{
    decode_all, decode_stream, encode_comment_lines, encode_data_lines, DecodedEvent, Decoder,
    EncodeError, Event,
};
use futures::{executor::block_on, stream, StreamExt};
use serde::Deserialize;
use sse_support::{decode_chunks, Outcome};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/sse/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

// --- decoder ---

#[derive(Deserialize)]
struct DecodeFile {
    vectors: Vec<DecodeVector>,
}

#[derive(Deserialize)]
struct DecodeVector {
    name: String,
    source: String,
    input: Option<String>,
    input_bytes: Option<Vec<u8>>,
    events: Vec<ExpectedEvent>,
    last_event_id: String,
    retry: Option<u64>,
}

#[derive(Deserialize)]
struct ExpectedEvent {
    event: String,
    data: String,
    last_event_id: String,
}

impl DecodeVector {
    fn bytes(&self) -> Vec<u8> {
        match (&self.input, &self.input_bytes) {
            (Some(s), None) => s.clone().into_bytes(),
            (None, Some(b)) => b.clone(),
            _ => panic!("{}: exactly one of input / input_bytes", self.name),
        }
    }

    fn expected(&self) -> Outcome {
        Outcome {
            events: self
                .events
                .iter()
                .map(|e| DecodedEvent {
                    event: e.event.clone(),
                    data: e.data.clone(),
                    last_event_id: e.last_event_id.as_str().into(),
                })
                .collect(),
            last_event_id: self.last_event_id.clone(),
            retry: self.retry,
        }
    }
}

fn decode_vectors() -> Vec<DecodeVector> {
    let file: DecodeFile = serde_json::from_str(&fixture("decode_vectors.json")).unwrap();
    file.vectors
}

#[test]
fn decode_vectors_cover_the_spec_examples() {
    let vectors = decode_vectors();
    let whatwg = vectors.iter().filter(|v| v.source == "whatwg").count();
    assert!(whatwg >= 7, "expected the WHATWG examples, found {whatwg}");
    assert!(vectors.len() >= 40);
}

#[test]
fn decode_vectors_whole_and_split_anywhere() {
    for v in decode_vectors() {
        let input = v.bytes();
        let want = v.expected();
        assert_eq!(decode_chunks([&input[..]]), want, "{}: whole", v.name);
        assert_eq!(decode_all(&input), want.events, "{}: decode_all", v.name);
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(decode_chunks([a, b]), want, "{}: split at {i}", v.name);
        }
        assert_eq!(
            decode_chunks(input.chunks(1)),
            want,
            "{}: byte by byte",
            v.name
        );
        for size in [2, 3, 5, 8] {
            assert_eq!(
                decode_chunks(input.chunks(size)),
                want,
                "{}: chunks of {size}",
                v.name
            );
        }
    }
}

#[test]
fn decode_vectors_through_decode_stream() {
    for v in decode_vectors() {
        let input = v.bytes();
        let chunks: Vec<Result<Vec<u8>, ()>> = input.chunks(3).map(|c| Ok(c.to_vec())).collect();
        let got: Vec<DecodedEvent> = block_on(
            decode_stream(stream::iter(chunks))
                .map(Result::unwrap)
                .collect(),
        );
        assert_eq!(got, v.expected().events, "{}", v.name);
    }
}

// --- encoder ---

#[derive(Deserialize)]
struct EncodeFile {
    events: Vec<EventVector>,
    errors: Vec<ErrorVector>,
    data_lines: Vec<LinesVector>,
    comment_lines: Vec<LinesVector>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EventFields {
    event: Option<String>,
    id: Option<String>,
    retry: Option<u64>,
    data: Option<String>,
    comment: Option<String>,
}

impl From<EventFields> for Event {
    fn from(f: EventFields) -> Self {
        Event {
            event: f.event,
            id: f.id,
            retry: f.retry,
            data: f.data,
            comment: f.comment,
        }
    }
}

#[derive(Deserialize)]
struct EventVector {
    name: String,
    event: EventFields,
    expected: String,
}

#[derive(Deserialize)]
struct ErrorVector {
    name: String,
    event: EventFields,
    error: String,
}

#[derive(Deserialize)]
struct LinesVector {
    name: String,
    input: String,
    expected: String,
}

fn encode_file() -> EncodeFile {
    serde_json::from_str(&fixture("encode_vectors.json")).unwrap()
}

/// CRLF and lone CR become LF, as the receiver's line splitting does.
fn normalize_newlines(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

#[test]
fn encode_vectors_exact_bytes() {
    for v in encode_file().events {
        let event = Event::from(v.event);
        assert_eq!(
            String::from_utf8(event.to_bytes().unwrap()).unwrap(),
            v.expected,
            "{}",
            v.name
        );
        let mut buf = b"already here|".to_vec();
        event.encode(&mut buf).unwrap();
        assert_eq!(&buf[13..], v.expected.as_bytes(), "{}: appends", v.name);
    }
}

#[test]
fn encode_vectors_decode_back() {
    for v in encode_file().events {
        let event = Event::from(v.event);
        let mut decoder = Decoder::new();
        let mut got = Vec::new();
        decoder.feed(v.expected.as_bytes(), &mut got);
        let want: Vec<DecodedEvent> = event
            .data
            .as_ref()
            .map(|data| DecodedEvent {
                event: event
                    .event
                    .clone()
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| "message".into()),
                data: normalize_newlines(data),
                last_event_id: event.id.as_deref().unwrap_or_default().into(),
            })
            .into_iter()
            .collect();
        assert_eq!(got, want, "{}", v.name);
        assert_eq!(decoder.retry(), event.retry, "{}", v.name);
        if let Some(id) = &event.id {
            assert_eq!(decoder.last_event_id(), id, "{}", v.name);
        }
    }
}

#[test]
fn encode_error_vectors_write_nothing() {
    for v in encode_file().errors {
        let want = match v.error.as_str() {
            "NewlineInEvent" => EncodeError::NewlineInEvent,
            "NewlineInId" => EncodeError::NewlineInId,
            "NulInId" => EncodeError::NulInId,
            other => panic!("{}: unknown error {other}", v.name),
        };
        let event = Event::from(v.event);
        let mut buf = b"untouched".to_vec();
        assert_eq!(event.encode(&mut buf), Err(want), "{}", v.name);
        assert_eq!(buf, b"untouched", "{}", v.name);
        assert_eq!(event.to_bytes(), Err(want), "{}", v.name);
    }
}

#[test]
fn encode_line_vectors() {
    let file = encode_file();
    for v in file.data_lines {
        let mut buf = Vec::new();
        encode_data_lines(&v.input, &mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            v.expected,
            "data: {}",
            v.name
        );
    }
    for v in file.comment_lines {
        let mut buf = Vec::new();
        encode_comment_lines(&v.input, &mut buf);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            v.expected,
            "comment: {}",
            v.name
        );
    }
}

#[test]
fn encode_error_messages_are_readable() {
    assert_eq!(
        EncodeError::NulInId.to_string(),
        "SSE event id contains NUL"
    );
}
