//! Property tests for the SSE codec: encode→decode round trips under
//! arbitrary chunking, chunking-independence on arbitrary bytes, and
//! agreement with a deliberately naive reading of the spec; and the memory
//! limits: invisible when not reached, chunking-independent when reached.

#[path = "support/sse.rs"]
mod sse_support;

use deepsearch_stream::sse::{encode_comment_lines, DecodeError, DecodedEvent, Decoder, Event};
use proptest::prelude::*;
use sse_support::{decode_chunks, Outcome};

/// Like `decode_chunks` with limits, stopping at the first error as a
/// careful `try_feed` caller would.
fn decode_limited<'a>(
    (max_line, max_event): (usize, usize),
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Outcome, Option<DecodeError>) {
    let mut decoder = Decoder::with_limits(max_line, max_event);
    let mut events = Vec::new();
    let mut error = None;
    for chunk in chunks {
        if let Err(e) = decoder.try_feed(chunk, &mut events) {
            error = Some(e);
            break;
        }
    }
    decoder.finish();
    (Outcome::of(&decoder, events), error)
}

/// Cuts `bytes` at the given offsets (taken modulo `len + 1`, so empty
/// chunks and cuts at either end happen too).
fn split_at_offsets<'a>(bytes: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    cuts.sort_unstable();
    let mut chunks = Vec::with_capacity(cuts.len() + 1);
    let mut start = 0;
    for cut in cuts {
        chunks.push(&bytes[start..cut]);
        start = cut;
    }
    chunks.push(&bytes[start..]);
    chunks
}

// --- strategies ---

/// Text spanning lines, with CRLF, CR and LF mixed and empty lines possible.
fn multiline() -> impl Strategy<Value = String> {
    let segment = prop_oneof!["[^\r\n]{0,12}", "[a-z :é日😀\u{0}\u{FEFF}\t]{0,12}",];
    let ending = prop_oneof![Just(""), Just("\n"), Just("\r"), Just("\r\n")];
    prop::collection::vec((segment, ending), 0..6)
        .prop_map(|parts| parts.into_iter().map(|(s, e)| s + e).collect())
}

fn event() -> impl Strategy<Value = Event> {
    (
        prop::option::of("[^\r\n]{0,10}"),
        prop::option::of("[^\r\n\u{0}]{0,10}"),
        prop::option::of(any::<u64>()),
        prop::option::weighted(0.8, multiline()),
        prop::option::of(multiline()),
    )
        .prop_map(|(event, id, retry, data, comment)| Event {
            event,
            id,
            retry,
            data,
            comment,
        })
}

#[derive(Debug, Clone)]
enum Item {
    Frame(Event),
    /// Comment lines written straight onto the wire between frames.
    Comment(String),
}

fn items() -> impl Strategy<Value = Vec<Item>> {
    let item = prop_oneof![
        4 => event().prop_map(Item::Frame),
        1 => multiline().prop_map(Item::Comment),
    ];
    prop::collection::vec(item, 0..8)
}

/// Bytes that look like an event stream often enough to reach every rule:
/// either a soup of telling tokens, or well-formed-ish lines; the stream
/// starts with a BOM, part of one, or neither.
fn stream_bytes() -> impl Strategy<Value = Vec<u8>> {
    const STARTS: &[&[u8]] = &[b"", b"\xEF\xBB\xBF", b"\xEF\xBB", b"\xEF"];
    let body = prop_oneof![
        prop::collection::vec(token(true), 0..80).prop_map(|t| t.concat()),
        prop::collection::vec(line(), 0..12).prop_map(|l| l.concat()),
    ];
    (prop::sample::select(STARTS), body).prop_map(|(start, body)| [start, &body[..]].concat())
}

/// A few bytes likely to matter to the parser, or any byte at all.
fn token(line_endings: bool) -> impl Strategy<Value = Vec<u8>> {
    const TOKENS: &[&[u8]] = &[
        b"data",
        b"id",
        b"event",
        b"retry",
        b":",
        b": ",
        b" ",
        b"\xEF\xBB\xBF",
        b"\xEF",
        b"\xBB",
        b"\0",
        b"1",
        b"42",
        b"x",
        b"\xC3\xA9",
        b"\xE6\x97",
        b"\xF0\x9F\x98\x80",
        b"\xFF",
    ];
    const ENDINGS: &[&[u8]] = &[b"\r", b"\n", b"\r\n"];
    const NO_ENDINGS: &[&[u8]] = &[b"x"];
    let endings = if line_endings { ENDINGS } else { NO_ENDINGS };
    prop_oneof![
        6 => prop::sample::select(TOKENS).prop_map(<[u8]>::to_vec),
        2 => prop::sample::select(endings).prop_map(<[u8]>::to_vec),
        1 => any::<u8>().prop_map(|b| vec![b]),
    ]
}

/// One line: blank (dispatch), or a likely field name, separator and value;
/// then a line ending.
fn line() -> impl Strategy<Value = Vec<u8>> {
    const NAMES: &[&[u8]] = &[
        b"data", b"data", b"id", b"event", b"retry", b"", b"foo", b"Data",
    ];
    const SEPARATORS: &[&[u8]] = &[b"", b":", b": ", b":  "];
    const ENDINGS: &[&[u8]] = &[b"\r", b"\n", b"\r\n"];
    let field = (
        prop::sample::select(NAMES),
        prop::sample::select(SEPARATORS),
        prop::collection::vec(token(false), 0..4),
    )
        .prop_map(|(name, sep, value)| [name, sep, &value.concat()[..]].concat());
    let content = prop_oneof![1 => Just(Vec::new()), 3 => field];
    (content, prop::sample::select(ENDINGS)).prop_map(|(content, end)| [&content[..], end].concat())
}

// --- models ---

/// What the receiver must see for `items`, per the spec's dispatch rules.
fn expected(items: &[Item]) -> Outcome {
    let mut events = Vec::new();
    let mut last_event_id = String::new();
    let mut retry = None;
    for item in items {
        let Item::Frame(e) = item else { continue };
        if let Some(id) = &e.id {
            last_event_id.clone_from(id);
        }
        if e.retry.is_some() {
            retry = e.retry;
        }
        if let Some(data) = &e.data {
            events.push(DecodedEvent {
                event: match e.event.as_deref() {
                    None | Some("") => "message".into(),
                    Some(name) => name.into(),
                },
                data: data.replace("\r\n", "\n").replace('\r', "\n"),
                last_event_id: last_event_id.as_str().into(),
            });
        }
    }
    Outcome {
        events,
        last_event_id,
        retry,
    }
}

fn encode(items: &[Item]) -> Vec<u8> {
    let mut wire = Vec::new();
    for item in items {
        match item {
            Item::Frame(e) => e.encode(&mut wire).unwrap(),
            Item::Comment(c) => encode_comment_lines(c, &mut wire),
        }
    }
    wire
}

/// The spec read literally, on the whole input at once: decode to text,
/// split into lines char by char, interpret each line with string methods.
fn reference(bytes: &[u8]) -> Outcome {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = String::from_utf8_lossy(bytes);
    let mut lines = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut current));
            }
            '\n' => lines.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    // `current` is an unterminated line: never processed.

    let (mut data, mut event_type, mut id_buffer) = (String::new(), String::new(), String::new());
    let mut out = Outcome {
        events: Vec::new(),
        last_event_id: String::new(),
        retry: None,
    };
    for line in lines {
        if line.is_empty() {
            out.last_event_id = id_buffer.clone();
            if data.is_empty() {
                event_type.clear();
                continue;
            }
            if data.ends_with('\n') {
                data.pop();
            }
            let event = if event_type.is_empty() {
                "message".to_string()
            } else {
                event_type.clone()
            };
            out.events.push(DecodedEvent {
                event,
                data: std::mem::take(&mut data),
                last_event_id: out.last_event_id.as_str().into(),
            });
            event_type.clear();
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => event_type = value.to_string(),
            "data" => {
                data.push_str(value);
                data.push('\n');
            }
            "id" if !value.contains('\0') => id_buffer = value.to_string(),
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                out.retry = Some(value.parse().unwrap_or(u64::MAX));
            }
            _ => {}
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn encoded_events_decode_back_under_any_chunking(
        items in items(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let wire = encode(&items);
        let want = expected(&items);
        prop_assert_eq!(&decode_chunks([&wire[..]]), &want);
        prop_assert_eq!(decode_chunks(split_at_offsets(&wire, &cuts)), want);
    }

    #[test]
    fn chunking_never_changes_the_result(
        bytes in stream_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = decode_chunks([&bytes[..]]);
        prop_assert_eq!(decode_chunks(split_at_offsets(&bytes, &cuts)), whole);
    }

    #[test]
    fn byte_at_a_time_equals_whole(bytes in stream_bytes()) {
        prop_assert_eq!(decode_chunks(bytes.chunks(1)), decode_chunks([&bytes[..]]));
    }

    #[test]
    fn decoder_agrees_with_the_literal_reading(bytes in stream_bytes()) {
        prop_assert_eq!(decode_chunks([&bytes[..]]), reference(&bytes));
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
    ) {
        let whole = decode_chunks([&bytes[..]]);
        prop_assert_eq!(&decode_chunks(split_at_offsets(&bytes, &cuts)), &whole);
        prop_assert_eq!(whole, reference(&bytes));
    }

    #[test]
    fn limits_not_reached_change_nothing(
        bytes in stream_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        slack in 0usize..4,
    ) {
        let limit = bytes.len() + slack;
        let unlimited = decode_limited((usize::MAX, usize::MAX), [&bytes[..]]);
        prop_assert_eq!(&unlimited, &(decode_chunks([&bytes[..]]), None));
        let chunks = split_at_offsets(&bytes, &cuts);
        prop_assert_eq!(decode_limited((limit, limit), chunks), unlimited);
    }

    #[test]
    fn a_reached_limit_fails_the_same_under_any_chunking(
        bytes in stream_bytes(),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        // An unlimited line now and then lets the event limit be reached
        // more often than behind a line error.
        max_line in prop_oneof![3 => 0usize..24, 1 => Just(usize::MAX)],
        max_event in 0usize..24,
    ) {
        let limits = (max_line, max_event);
        let whole = decode_limited(limits, [&bytes[..]]);
        prop_assert_eq!(&decode_limited(limits, split_at_offsets(&bytes, &cuts)), &whole);
        prop_assert_eq!(&decode_limited(limits, bytes.chunks(1)), &whole);

        // Whatever was delivered is what the unlimited decoder delivers first;
        // without an error, it is all of it.
        let (unlimited, _) = decode_limited((usize::MAX, usize::MAX), [&bytes[..]]);
        let (limited, error) = whole;
        prop_assert!(unlimited.events.starts_with(&limited.events));
        if error.is_none() {
            prop_assert_eq!(limited, unlimited);
        }
    }
}
