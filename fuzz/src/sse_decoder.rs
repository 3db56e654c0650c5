//! `sse_decoder`: arbitrary bytes, cut into arbitrary chunks, through the
//! incremental [`Decoder`] with arbitrary limits.
//!
//! Properties:
//! - the outcome (events, limit error, last event id, retry) is the same for
//!   the whole stream, for the fuzzer's chunking and for one byte at a time;
//! - it is the outcome of [`reference`], a plain whole-buffer transcription of
//!   WHATWG HTML § 9.2.6 that decodes UTF-8 before parsing fields, checks the
//!   limits line by line, and stops at the first broken limit;
//! - a limit error poisons the decoder: later input is refused with the same
//!   error and adds no event, also after `finish`;
//! - what the limits promise to bound is bounded: `data` is at most three
//!   times `max_event_bytes` (lossy decoding), `event` and the last event id
//!   at most three times `max_line_bytes`; and between two calls the decoder
//!   holds no more heap than its limits allow ([`held_bytes_bound`]), however
//!   long the input;
//! - [`decode_all`] agrees with an unlimited decoder, and a limited decoder's
//!   events are a prefix of the unlimited ones.
//!
//! Input: `[line limit][event limit][n][n chunk lengths][stream...]`. A limit
//! byte below 128 is the limit itself in bytes, any other byte picks the
//! default limit; the stream left over after the chunks is a last chunk.

use deepsearch_stream::sse::{decode_all, DecodeError, DecodedEvent, Decoder};

use super::alloc_meter::live_bytes;
use super::bytes_reader::BytesReader;

/// What a decoder reports for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<DecodedEvent>,
    pub error: Option<DecodeError>,
    /// After `finish`.
    pub last_event_id: String,
    pub retry: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    line: usize,
    event: usize,
}

const UNLIMITED: Limits = Limits {
    line: usize::MAX,
    event: usize::MAX,
};

fn limit(selector: u8, default: usize) -> usize {
    if selector < 128 {
        usize::from(selector)
    } else {
        default
    }
}

pub fn check(data: &[u8]) {
    let mut reader = BytesReader::new(data);
    let limits = Limits {
        line: limit(reader.byte(), Decoder::DEFAULT_MAX_LINE_BYTES),
        event: limit(reader.byte(), Decoder::DEFAULT_MAX_EVENT_BYTES),
    };
    let chunk_count = usize::from(reader.byte());
    let chunk_lens: Vec<usize> = reader
        .bytes(chunk_count)
        .iter()
        .map(|&n| usize::from(n))
        .collect();
    let stream = reader.rest();

    let expected = reference(stream, limits);
    let whole = decode(limits, [stream]);
    assert_eq!(whole, expected, "whole stream vs. reference");
    let chunked = decode(limits, chunks(stream, &chunk_lens));
    assert_eq!(chunked, expected, "chunks {chunk_lens:?} vs. reference");
    let bytewise = decode(limits, stream.chunks(1));
    assert_eq!(bytewise, expected, "one byte at a time vs. reference");

    for event in &expected.events {
        assert!(event.data.len() <= limits.event.saturating_mul(3));
        assert!(event.event.len() <= limits.line.saturating_mul(3));
        assert!(event.last_event_id.len() <= limits.line.saturating_mul(3));
    }

    check_held_bytes(limits, chunks(stream, &chunk_lens));
    check_held_bytes(limits, stream.chunks(1));

    let unlimited = reference(stream, UNLIMITED);
    assert_eq!(unlimited.error, None);
    assert_eq!(decode_all(stream), unlimited.events, "decode_all");
    assert!(
        unlimited.events.starts_with(&expected.events),
        "a limit may cut the events short but never change them"
    );
    if expected.error.is_none() {
        assert_eq!(expected, unlimited, "no limit broken, yet limits mattered");
    }
}

/// Heap a decoder may hold between calls, from its buffers' documented
/// bounds: the pending line (`line` bytes), the event's data (3 × `event`
/// after lossy decoding), the event type, the id buffer and the last event id
/// (each 3 × `line`), growable buffers counted at twice their length, plus a
/// little for minimum capacities and the `Arc` header.
fn held_bytes_bound(limits: Limits) -> usize {
    let line = limits.line;
    let event = limits.event;
    (2 * line + 6 * event + 6 * line + 6 * line + 3 * line).saturating_add(256)
}

/// Feeds `chunks`, dropping the events after each call, and measures what
/// the decoder itself still holds.
fn check_held_bytes<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) {
    if limits.line >= 128 || limits.event >= 128 {
        // The defaults allow megabytes: more than any fuzz input holds.
        return;
    }
    let bound = held_bytes_bound(limits);
    let before = live_bytes();
    let mut decoder = Decoder::with_limits(limits.line, limits.event);
    for chunk in chunks {
        let mut events = Vec::new();
        let _ = decoder.try_feed(chunk, &mut events);
        drop(events);
        let held = live_bytes() - before;
        assert!(
            held <= bound as isize,
            "decoder holds {held} bytes, bound {bound}"
        );
    }
    decoder.finish();
    let held = live_bytes() - before;
    assert!(
        held <= bound as isize,
        "finished decoder holds {held} bytes, bound {bound}"
    );
}

/// `stream` cut after each of `lens` bytes (0: an empty chunk), then the rest.
fn chunks<'a>(mut stream: &'a [u8], lens: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(lens.len() + 1);
    for &len in lens {
        let (chunk, rest) = stream.split_at(len.min(stream.len()));
        out.push(chunk);
        stream = rest;
    }
    out.push(stream);
    out
}

fn decode<'a>(limits: Limits, chunks: impl IntoIterator<Item = &'a [u8]>) -> Outcome {
    let mut decoder = Decoder::with_limits(limits.line, limits.event);
    let mut events = Vec::new();
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = decoder.try_feed(chunk, &mut events) {
            error = Some(e);
            break;
        }
    }
    assert_eq!(decoder.error(), error);
    if let Some(error) = error {
        let before = events.len();
        assert_eq!(decoder.try_feed(b"data: x\n\n", &mut events), Err(error));
        decoder.feed(b"data: y\n\n", &mut events);
        assert_eq!(events.len(), before, "a poisoned decoder dispatched");
    }
    decoder.finish();
    if let Some(error) = error {
        assert_eq!(decoder.error(), Some(error), "finish cleared the poison");
        assert_eq!(decoder.try_feed(b"\n", &mut events), Err(error));
    }
    Outcome {
        events,
        error,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

/// The event stream interpretation of WHATWG HTML § 9.2.6 on a whole buffer,
/// plus the decoder's documented limits (counted in wire bytes).
fn reference(stream: &[u8], limits: Limits) -> Outcome {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let mut state = Fields::default();
    let mut events = Vec::new();
    let outcome = |state: Fields, events, error| Outcome {
        events,
        error,
        last_event_id: state.last_event_id,
        retry: state.retry,
    };
    // A stream that is only the start of a BOM has not begun, so even a
    // line limit below its length is not broken.
    if BOM.starts_with(stream) {
        return outcome(state, events, None);
    }
    let mut rest = stream.strip_prefix(BOM).unwrap_or(stream);
    loop {
        let Some(end) = rest.iter().position(|&b| b == b'\r' || b == b'\n') else {
            // The unterminated last line is never processed, but it was
            // buffered, so it counts against the line limit.
            let error = (rest.len() > limits.line)
                .then_some(DecodeError::LineTooLong { limit: limits.line });
            return outcome(state, events, error);
        };
        let line = &rest[..end];
        let ending = if rest[end..].starts_with(b"\r\n") {
            2
        } else {
            1
        };
        rest = &rest[end + ending..];
        if line.len() > limits.line {
            let error = DecodeError::LineTooLong { limit: limits.line };
            return outcome(state, events, Some(error));
        }
        if let Err(error) = state.line(line, limits.event, &mut events) {
            return outcome(state, events, Some(error));
        }
    }
}

#[derive(Debug, Default)]
struct Fields {
    data: String,
    data_wire_bytes: usize,
    event_type: String,
    id_buffer: String,
    last_event_id: String,
    retry: Option<u64>,
}

impl Fields {
    fn line(
        &mut self,
        raw: &[u8],
        max_event: usize,
        out: &mut Vec<DecodedEvent>,
    ) -> Result<(), DecodeError> {
        let line = String::from_utf8_lossy(raw);
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        if line.starts_with(':') {
            return Ok(());
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match name {
            "event" => self.event_type = value.to_owned(),
            "data" => {
                // The limit counts wire bytes: find the value's length there.
                let colon = raw.iter().position(|&b| b == b':');
                let raw_value = colon.map_or(&b""[..], |c| &raw[c + 1..]);
                let raw_value = raw_value.strip_prefix(b" ").unwrap_or(raw_value);
                let joined = self.data_wire_bytes + raw_value.len();
                if joined > max_event {
                    return Err(DecodeError::EventTooLarge { limit: max_event });
                }
                self.data_wire_bytes = joined + 1;
                self.data.push_str(value);
                self.data.push('\n');
            }
            "id" if !value.contains('\0') => self.id_buffer = value.to_owned(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Only overflow can make it fail; the decoder saturates.
                self.retry = Some(value.parse().unwrap_or(u64::MAX));
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self, out: &mut Vec<DecodedEvent>) {
        self.last_event_id.clone_from(&self.id_buffer);
        self.data_wire_bytes = 0;
        let event_type = std::mem::take(&mut self.event_type);
        if self.data.is_empty() {
            return;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        out.push(DecodedEvent {
            event: if event_type.is_empty() {
                "message".to_owned()
            } else {
                event_type
            },
            data,
            last_event_id: self.last_event_id.as_str().into(),
        });
    }
}
