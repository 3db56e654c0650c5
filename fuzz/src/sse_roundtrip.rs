//! `sse_roundtrip`: arbitrary [`Event`]s through the encoder, then the decoder.
//!
//! Properties:
//! - the encoder refuses exactly the events whose fields could break out of
//!   their line (CR or LF in `event`, CR, LF or NUL in `id`), with the
//!   documented error, and then writes nothing;
//! - [`Event::to_bytes`] is what [`Event::encode`] appends;
//! - decoding the frames of the accepted events (whole, and one byte at a
//!   time) gives back one event per event with `data`, holding its data with
//!   every line ending (CRLF, CR, LF) turned into LF, its type (`message`
//!   when unset or empty) and the last id sent so far; the decoder ends with
//!   the last id and retry sent.
//!
//! Input: events, one after the other until the bytes run out: a flags byte
//! (bit 0 comment, 1 event, 2 id, 3 retry, 4 data), then each field it sets
//! in that order: strings as a length byte and that many bytes (invalid
//! UTF-8 replaced), `retry` as 8 bytes little-endian.

use deepsearch_stream::sse::{DecodedEvent, Decoder, EncodeError, Event};

use super::bytes_reader::BytesReader;

fn events(data: &[u8]) -> Vec<Event> {
    let mut reader = BytesReader::new(data);
    let mut events = Vec::new();
    while !reader.is_empty() {
        let flags = reader.byte();
        let mut string = |bit: u8| (flags & (1 << bit) != 0).then(|| reader.short_string());
        let comment = string(0);
        let event = string(1);
        let id = string(2);
        let retry = (flags & (1 << 3) != 0).then(|| reader.u64_le());
        let data = (flags & (1 << 4) != 0).then(|| reader.short_string());
        events.push(Event {
            event,
            id,
            retry,
            data,
            comment,
        });
    }
    events
}

/// The refusal `event` deserves, if any.
fn expected_refusal(event: &Event) -> Option<EncodeError> {
    let breaks_line = |s: &str| s.contains(['\r', '\n']);
    if event.event.as_deref().is_some_and(breaks_line) {
        Some(EncodeError::NewlineInEvent)
    } else if event.id.as_deref().is_some_and(breaks_line) {
        Some(EncodeError::NewlineInId)
    } else if event.id.as_deref().is_some_and(|id| id.contains('\0')) {
        Some(EncodeError::NulInId)
    } else {
        None
    }
}

pub fn check(data: &[u8]) {
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    let mut last_id = String::new();
    let mut last_retry = None;
    for event in events(data) {
        let before = wire.len();
        let result = event.encode(&mut wire);
        if let Some(refusal) = expected_refusal(&event) {
            assert_eq!(result, Err(refusal), "{event:?}");
            assert_eq!(wire.len(), before, "a refused event wrote bytes");
            continue;
        }
        assert_eq!(result, Ok(()), "{event:?}");
        assert_eq!(event.to_bytes().as_deref(), Ok(&wire[before..]));
        if let Some(id) = &event.id {
            last_id.clone_from(id);
        }
        last_retry = event.retry.or(last_retry);
        if let Some(data) = &event.data {
            expected.push(DecodedEvent {
                event: match event.event.as_deref() {
                    None | Some("") => "message".to_owned(),
                    Some(name) => name.to_owned(),
                },
                data: data.replace("\r\n", "\n").replace('\r', "\n"),
                last_event_id: last_id.as_str().into(),
            });
        }
    }

    for chunk_len in [wire.len().max(1), 1] {
        let mut decoder = Decoder::new();
        let mut decoded = Vec::new();
        for chunk in wire.chunks(chunk_len) {
            decoder
                .try_feed(chunk, &mut decoded)
                .expect("frames far below the default limits");
        }
        decoder.finish();
        assert_eq!(decoded, expected, "chunks of {chunk_len}");
        assert_eq!(decoder.last_event_id(), last_id);
        assert_eq!(decoder.retry(), last_retry);
    }
}
