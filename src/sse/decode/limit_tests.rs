//! The decoder's memory limits: where exactly they trip, that the error does
//! not depend on chunking, and what is delivered before it.

use super::*;

/// Events, then the error (if any), feeding `chunks` in order with
/// `try_feed` and stopping at the first error, as a careful caller would.
fn run(limits: (usize, usize), chunks: &[&[u8]]) -> (Vec<DecodedEvent>, Option<DecodeError>) {
    let mut decoder = Decoder::with_limits(limits.0, limits.1);
    let mut events = Vec::new();
    for chunk in chunks {
        if let Err(e) = decoder.try_feed(chunk, &mut events) {
            assert_eq!(decoder.error(), Some(e));
            return (events, Some(e));
        }
    }
    decoder.finish();
    (events, decoder.error())
}

/// `run` on the input whole, split at every offset and byte by byte; all
/// must agree, and the agreed outcome is returned.
fn run_any_split(limits: (usize, usize), input: &[u8]) -> (Vec<DecodedEvent>, Option<DecodeError>) {
    let whole = run(limits, &[input]);
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(run(limits, &[a, b]), whole, "split at {i} of {input:?}");
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(limits, &bytes), whole, "byte by byte {input:?}");
    whole
}

fn data(events: &[DecodedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.data.as_str()).collect()
}

const LINE: DecodeError = DecodeError::LineTooLong { limit: 10 };
const EVENT: DecodeError = DecodeError::EventTooLarge { limit: 10 };

#[test]
fn new_uses_the_documented_defaults() {
    let decoder = Decoder::new();
    assert_eq!(decoder.max_line_bytes, 1 << 20);
    assert_eq!(decoder.fields.max_event_bytes, 8 << 20);
    assert_eq!(Decoder::default().max_line_bytes, decoder.max_line_bytes);
    assert_eq!(decoder.error(), None);
}

// --- line limit ---

#[test]
fn line_at_the_limit_is_accepted_one_more_byte_is_not() {
    // "data: 1234" is 10 bytes; line endings do not count.
    for ending in ["\n", "\r", "\r\n"] {
        let ok = format!("data: 1234{ending}{ending}");
        assert_eq!(
            run_any_split((10, 100), ok.as_bytes()),
            (vec![ev("1234")], None)
        );
        let long = format!("data: 12345{ending}{ending}");
        assert_eq!(
            run_any_split((10, 100), long.as_bytes()),
            (vec![], Some(LINE))
        );
    }
}

#[test]
fn line_limit_in_one_chunk_keeps_the_events_before_it() {
    let input = b"data: a\n\nid: 7\ndata: b\n\nretry: 5\ndata: far too long\n\ndata: c\n\n";
    let (events, error) = run_any_split((10, 100), input);
    assert_eq!(data(&events), ["a", "b"]);
    assert_eq!(&*events[1].last_event_id, "7");
    assert_eq!(error, Some(LINE));

    let mut decoder = Decoder::with_limits(10, 100);
    let mut out = Vec::new();
    assert_eq!(decoder.try_feed(input, &mut out), Err(LINE));
    assert_eq!(data(&out), ["a", "b"]);
    // Fields read before the offending line still took effect.
    assert_eq!((decoder.last_event_id(), decoder.retry()), ("7", Some(5)));
}

#[test]
fn line_limit_across_many_small_chunks_trips_before_any_line_ending() {
    let mut decoder = Decoder::with_limits(1000, usize::MAX);
    let mut out = Vec::new();
    decoder.try_feed(b"data: x\n\ndata: ", &mut out).unwrap();
    let mut fed = b"data: ".len();
    // An upstream that never ends its line: error once byte 1001 arrives.
    let result = loop {
        let result = decoder.try_feed(b"0123456789", &mut out);
        fed += 10;
        if result.is_err() || fed > 5000 {
            break result;
        }
    };
    assert_eq!(result, Err(DecodeError::LineTooLong { limit: 1000 }));
    assert_eq!(fed, 1006);
    assert_eq!(data(&out), ["x"]);
    assert!(decoder.line.capacity() == 0, "line buffer released");
}

#[test]
fn unterminated_line_over_the_limit_is_an_error_even_at_end_of_stream() {
    assert_eq!(
        run_any_split((10, 100), b"data: a\n\ndata: 12345"),
        (vec![ev("a")], Some(LINE))
    );
    assert_eq!(
        run_any_split((10, 100), b"data: a\n\ndata: 1234"),
        (vec![ev("a")], None)
    );
}

#[test]
fn every_kind_of_line_counts() {
    for (line, fits) in [
        (":comment..", true),
        (":comment...", false),
        ("id: 123456", true),
        ("id: 1234567", false),
        ("event: xxx", true),
        ("event: xxxx", false),
        ("retry: 123", true),
        ("retry: 1234", false),
        ("unknown:xx", true),
        ("unknown:xxx", false),
    ] {
        let input = format!("{line}\ndata: a\n\n");
        let (events, error) = run_any_split((10, 100), input.as_bytes());
        let expected = if fits { (1, None) } else { (0, Some(LINE)) };
        assert_eq!((events.len(), error), expected, "{line}");
    }
}

#[test]
fn a_bom_does_not_count_but_a_broken_one_does() {
    assert_eq!(
        run_any_split((10, 100), b"\xEF\xBB\xBFdata: 1234\n\n"),
        (vec![ev("1234")], None)
    );
    // Not a BOM: its bytes start the first line (an unknown field).
    assert_eq!(
        run_any_split((10, 100), b"\xEF\xBBdata: 12\n\n"),
        (vec![], None)
    );
    assert_eq!(
        run_any_split((10, 100), b"\xEF\xBBdata: 123\n\n"),
        (vec![], Some(LINE))
    );
}

#[test]
fn lossy_expansion_does_not_count_against_limits() {
    // Four invalid bytes decode to 12 bytes of U+FFFD; the wire holds 10.
    let input = b"data:\xFF\xFF\xFF\xFF\n\n";
    let (events, error) = run_any_split((10, 4), input);
    assert_eq!(
        (data(&events), error),
        (vec!["\u{FFFD}".repeat(4).as_str()], None)
    );
}

#[test]
fn zero_limits_allow_only_blank_lines_and_empty_data() {
    assert_eq!(run_any_split((0, 0), b"\n\r\n\r"), (vec![], None));
    assert_eq!(
        run_any_split((0, 0), b"\nx"),
        (vec![], Some(DecodeError::LineTooLong { limit: 0 }))
    );
    assert_eq!(run_any_split((5, 0), b"data\n\n"), (vec![ev("")], None));
    let too_large = DecodeError::EventTooLarge { limit: 0 };
    assert_eq!(
        run_any_split((5, 0), b"data\ndata\n\n"),
        (vec![], Some(too_large))
    );
}

// --- event limit ---

#[test]
fn event_data_at_the_limit_is_accepted_one_more_byte_is_not() {
    // Dispatched data "aaa\nbbb\ncc" is exactly 10 bytes.
    let ok = b"data: aaa\ndata: bbb\ndata: cc\n\n";
    assert_eq!(
        run_any_split((100, 10), ok),
        (vec![ev("aaa\nbbb\ncc")], None)
    );
    let over = b"data: aaa\ndata: bbb\ndata: ccc\n\n";
    assert_eq!(run_any_split((100, 10), over), (vec![], Some(EVENT)));
    // Empty data lines count for their joining LF.
    let lfs = "data\n".repeat(11) + "\n";
    assert_eq!(
        run_any_split((100, 10), lfs.as_bytes()),
        (vec![ev(&"\n".repeat(10))], None)
    );
    let lfs = "data\n".repeat(12) + "\n";
    assert_eq!(
        run_any_split((100, 10), lfs.as_bytes()),
        (vec![], Some(EVENT))
    );
}

#[test]
fn endless_data_lines_trip_the_event_limit_before_the_event_ends() {
    let mut decoder = Decoder::with_limits(100, 1000);
    let mut out = Vec::new();
    decoder.try_feed(b"data: first\n\n", &mut out).unwrap();
    let mut lines = 0;
    let result = loop {
        let result = decoder.try_feed(b"data: 123456789\n", &mut out);
        if result.is_err() || lines > 1000 {
            break result;
        }
        lines += 1;
    };
    assert_eq!(result, Err(DecodeError::EventTooLarge { limit: 1000 }));
    // 100 lines of 9 bytes and their 99 LFs fit (999); the next does not.
    assert_eq!(lines, 100);
    assert_eq!(data(&out), ["first"]);
    assert!(decoder.fields.data.capacity() == 0, "data buffer released");
}

#[test]
fn the_limit_is_per_event() {
    let input = "data: 1234567890\n\n".repeat(50);
    let (events, error) = run_any_split((100, 10), input.as_bytes());
    assert_eq!((events.len(), error), (50, None));
}

#[test]
fn event_and_id_fields_do_not_count_toward_the_event_limit() {
    let input = b"event: 123456789\nid: 123456789\ndata: 1234567890\n\n";
    let (events, error) = run_any_split((100, 10), input);
    assert_eq!((events.len(), error), (1, None));
}

#[test]
fn finish_resets_the_count() {
    let mut decoder = Decoder::with_limits(100, 10);
    let mut out = Vec::new();
    decoder.try_feed(b"data: 12345678\n", &mut out).unwrap();
    decoder.finish();
    decoder.try_feed(b"data: 1234567890\n\n", &mut out).unwrap();
    assert_eq!(data(&out), ["1234567890"]);
}

#[test]
fn the_line_limit_is_checked_before_the_event_limit() {
    let (_, error) = run_any_split((10, 3), b"data: 12345\n\n");
    assert_eq!(error, Some(LINE));
}

// --- poisoning and `feed` ---

#[test]
fn a_poisoned_decoder_refuses_all_input_even_after_finish() {
    let mut decoder = Decoder::with_limits(10, 100);
    let mut out = Vec::new();
    assert_eq!(
        decoder.try_feed(b"id: 1\ndata: a\n\nid: 0123456789", &mut out),
        Err(LINE)
    );
    assert_eq!(out.len(), 1);
    assert_eq!(decoder.try_feed(b"\ndata: b\n\n", &mut out), Err(LINE));
    assert_eq!(decoder.try_feed(b"", &mut out), Err(LINE));
    decoder.finish();
    assert_eq!(decoder.try_feed(b"data: c\n\n", &mut out), Err(LINE));
    decoder.feed(b"data: d\n\n", &mut out);
    assert_eq!((out.len(), decoder.error()), (1, Some(LINE)));
    assert_eq!(decoder.last_event_id(), "1");
}

#[test]
fn the_first_error_is_the_one_kept() {
    let mut decoder = Decoder::with_limits(10, 3);
    let mut out = Vec::new();
    assert_eq!(
        decoder.try_feed(b"data: 1234\n", &mut out),
        Err(DecodeError::EventTooLarge { limit: 3 })
    );
    assert_eq!(
        decoder.try_feed(b"data: 12345678\n", &mut out),
        Err(DecodeError::EventTooLarge { limit: 3 })
    );
}

#[test]
fn feed_stops_quietly_and_reports_through_error() {
    let mut decoder = Decoder::with_limits(10, 100);
    let mut out = Vec::new();
    decoder.feed(b"data: a\n\ndata: b\n\n", &mut out);
    assert_eq!(decoder.error(), None);
    decoder.feed(b"data: ", &mut out);
    decoder.feed(b"0123456789\n\ndata: c\n\n", &mut out);
    decoder.feed(b"data: d\n\n", &mut out);
    decoder.finish();
    assert_eq!(data(&out), ["a", "b"]);
    assert_eq!(decoder.error(), Some(LINE));
}

#[test]
fn decode_all_has_no_limits() {
    let line = "x".repeat(Decoder::DEFAULT_MAX_LINE_BYTES + 1);
    let events = decode_all(format!("data: {line}\n\n").as_bytes());
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].data.len(), line.len());
}

#[test]
fn default_limits_accept_a_line_of_exactly_one_mib() {
    let value = "x".repeat(Decoder::DEFAULT_MAX_LINE_BYTES - b"data: ".len());
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder
        .try_feed(format!("data: {value}\n\n").as_bytes(), &mut out)
        .unwrap();
    assert_eq!(out.len(), 1);
    let err = decoder.try_feed(format!("data: {value}x").as_bytes(), &mut out);
    assert_eq!(err, Err(DecodeError::LineTooLong { limit: 1 << 20 }));
}

#[test]
fn errors_describe_the_limit() {
    assert_eq!(
        LINE.to_string(),
        "SSE line longer than the limit of 10 bytes"
    );
    assert_eq!(
        EVENT.to_string(),
        "SSE event data larger than the limit of 10 bytes"
    );
}

fn ev(data: &str) -> DecodedEvent {
    DecodedEvent {
        event: "message".into(),
        data: data.into(),
        last_event_id: "".into(),
    }
}
