//! Rule-by-rule decoder tests. Every input goes through `check`, which feeds
//! it whole, split at every byte offset, split at every pair of offsets (for
//! short inputs) and one byte at a time, and requires the same result each way.

use super::*;

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<DecodedEvent>,
    last_event_id: String,
    retry: Option<u64>,
}

fn run(chunks: &[&[u8]]) -> Outcome {
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.feed(chunk, &mut events);
    }
    decoder.finish();
    Outcome {
        events,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
    }
}

fn ev(event: &str, data: &str, last_event_id: &str) -> DecodedEvent {
    DecodedEvent {
        event: event.into(),
        data: data.into(),
        last_event_id: last_event_id.into(),
    }
}

/// `expected` is `(event, data, last_event_id)` per dispatched event.
fn check(input: &[u8], expected: &[(&str, &str, &str)], last_event_id: &str, retry: Option<u64>) {
    let want = Outcome {
        events: expected.iter().map(|&(e, d, id)| ev(e, d, id)).collect(),
        last_event_id: last_event_id.into(),
        retry,
    };
    assert_eq!(run(&[input]), want, "whole input {input:?}");
    for i in 0..=input.len() {
        let (a, b) = input.split_at(i);
        assert_eq!(run(&[a, b]), want, "split at {i} of {input:?}");
    }
    if input.len() <= 64 {
        for i in 0..=input.len() {
            for j in i..=input.len() {
                let parts = [&input[..i], &input[i..j], &input[j..]];
                assert_eq!(run(&parts), want, "split at {i},{j} of {input:?}");
            }
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes), want, "byte by byte {input:?}");
}

fn msg(data: &str) -> (&'static str, &str, &'static str) {
    ("message", data, "")
}

// --- BOM ---

#[test]
fn leading_bom_is_stripped() {
    check(b"\xEF\xBB\xBFdata: a\n\n", &[msg("a")], "", None);
    check(b"\xEF\xBB\xBF\n", &[], "", None);
    check(b"\xEF\xBB\xBF", &[], "", None);
}

#[test]
fn only_one_bom_is_stripped() {
    // The second BOM becomes part of the field name, which is then unknown.
    check(b"\xEF\xBB\xBF\xEF\xBB\xBFdata: a\n\n", &[], "", None);
}

#[test]
fn bom_prefix_that_is_not_a_bom_is_content() {
    check(b"\xEFdata: a\n\n", &[], "", None);
    check(b"\xEF\xBBdata: a\n\n", &[], "", None);
    check(b"\xEF\xBB\ndata: a\n\n", &[msg("a")], "", None);
    check(b"\xEF\xBB\rdata: a\n\n", &[msg("a")], "", None);
}

#[test]
fn bom_later_in_the_stream_is_content() {
    check(b"data: a\n\n\xEF\xBB\xBFdata: b\n\n", &[msg("a")], "", None);
    check(b"data: \xEF\xBB\xBFx\n\n", &[msg("\u{FEFF}x")], "", None);
}

// --- line endings ---

#[test]
fn lf_cr_and_crlf_all_end_lines() {
    check(b"data: a\n\n", &[msg("a")], "", None);
    check(b"data: a\r\r", &[msg("a")], "", None);
    check(b"data: a\r\n\r\n", &[msg("a")], "", None);
    check(
        b"data: a\r\ndata: b\rdata: c\ndata: d\r\n\r\n",
        &[msg("a\nb\nc\nd")],
        "",
        None,
    );
}

#[test]
fn crlf_is_one_line_ending_but_lfcr_is_two() {
    // CRLF CRLF: one line ending, then a blank line.
    check(b"data: a\r\ndata: b\r\n\r\n", &[msg("a\nb")], "", None);
    // LF CR: the CR is a blank line of its own.
    check(b"data: a\n\rdata: b\n\n", &[msg("a"), msg("b")], "", None);
    check(
        b"data: a\r\n\ndata: b\r\r\n",
        &[msg("a"), msg("b")],
        "",
        None,
    );
}

#[test]
fn cr_at_chunk_end_is_acted_on_at_once() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(b"data: a\r\r", &mut out);
    assert_eq!(out, [ev("message", "a", "")]);
    decoder.feed(b"\n", &mut out); // the LF of the CRLF: no extra blank line
    decoder.feed(b"data: b\n\r", &mut out);
    assert_eq!(out.len(), 2);
}

#[test]
fn lf_after_cr_is_skipped_even_after_empty_chunks() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for chunk in [&b"data: a\r"[..], b"", b"", b"\ndata: b\n\n"] {
        decoder.feed(chunk, &mut out);
    }
    assert_eq!(out, [ev("message", "a\nb", "")]);
}

#[test]
fn lf_is_skipped_only_right_after_cr() {
    check(b"data: a\rx\ndata: b\n\n", &[msg("a\nb")], "", None);
    check(b"data: a\r\r\n", &[msg("a")], "", None);
}

// --- UTF-8 ---

#[test]
fn multibyte_characters_survive_any_split() {
    check("data: é€😀\n\n".as_bytes(), &[msg("é€😀")], "", None);
    check(
        "event: ü\nid: ß\ndata: 日本\n\n".as_bytes(),
        &[("ü", "日本", "ß")],
        "ß",
        None,
    );
}

#[test]
fn invalid_utf8_is_decoded_lossily_per_line() {
    check(b"data: \xFF\n\n", &[msg("\u{FFFD}")], "", None);
    // A sequence cut short by a line ending is one replacement character.
    check(
        b"data: \xE2\x82\ndata: x\n\n",
        &[msg("\u{FFFD}\nx")],
        "",
        None,
    );
    // ASCII after a broken sequence is kept.
    check(
        b"data: \xE2x\xF0\x9F\n\n",
        &[msg("\u{FFFD}x\u{FFFD}")],
        "",
        None,
    );
    check(
        b"event: \xC0\nid: \xFE\ndata: \x80\n\n",
        &[("\u{FFFD}", "\u{FFFD}", "\u{FFFD}")],
        "\u{FFFD}",
        None,
    );
}

#[test]
fn invalid_utf8_in_field_name_makes_it_unknown() {
    check(b"dat\xE1: a\n\n", &[], "", None);
}

// --- blank lines and comments ---

#[test]
fn blank_lines_without_data_dispatch_nothing() {
    check(b"\n\n\r\n\r\r", &[], "", None);
    check(b"data: a\n\n\n\n", &[msg("a")], "", None);
}

#[test]
fn comment_lines_are_ignored() {
    check(b":test stream\n\n", &[], "", None);
    check(b": data: x\n\n", &[], "", None);
    check(b":\n:\r\n", &[], "", None);
    check(b"data: a\n: between\ndata: b\n\n", &[msg("a\nb")], "", None);
}

// --- field parsing ---

#[test]
fn one_leading_space_is_removed_from_values() {
    check(
        b"data:test\n\ndata: test\n\n",
        &[msg("test"), msg("test")],
        "",
        None,
    );
    check(b"data:  two\n\n", &[msg(" two")], "", None);
    check(b"data:\ttab\n\n", &[msg("\ttab")], "", None);
    check(b"data: \n\n", &[msg("")], "", None);
}

#[test]
fn only_the_first_colon_separates() {
    check(b"data: a:b\n\n", &[msg("a:b")], "", None);
    check(b"data:: x\n\n", &[msg(": x")], "", None);
}

#[test]
fn line_without_colon_is_a_field_with_empty_value() {
    check(b"data\n\n", &[msg("")], "", None);
    check(b"data\ndata\n\n", &[msg("\n")], "", None);
    check(b"id: 1\nid\ndata: x\n\n", &[msg("x")], "", None);
    check(b"event: e\nevent\ndata: x\n\n", &[msg("x")], "", None);
}

#[test]
fn field_names_are_exact() {
    check(b"data : x\n\n", &[], "", None);
    check(b"Data: x\n\n", &[], "", None);
    check(b" data: x\n\n", &[], "", None);
    check(b"datas: x\n\n", &[], "", None);
}

#[test]
fn unknown_fields_are_ignored() {
    check(b"foo: bar\ndata: x\nbaz\n\n", &[msg("x")], "", None);
}

// --- event ---

#[test]
fn event_sets_the_type_and_last_one_wins() {
    check(b"event: add\ndata: 1\n\n", &[("add", "1", "")], "", None);
    check(
        b"event: a\nevent: b\ndata: 1\n\n",
        &[("b", "1", "")],
        "",
        None,
    );
    check(b"event:\ndata: 1\n\n", &[msg("1")], "", None);
    check(b"event: add\nevent:\ndata: 1\n\n", &[msg("1")], "", None);
}

#[test]
fn event_type_is_reset_after_every_dispatch() {
    check(
        b"event: a\ndata: 1\n\ndata: 2\n\n",
        &[("a", "1", ""), msg("2")],
        "",
        None,
    );
    // Also when the blank line dispatches nothing.
    check(b"event: a\n\ndata: 2\n\n", &[msg("2")], "", None);
}

// --- data ---

#[test]
fn data_lines_join_with_lf_and_one_trailing_lf_is_removed() {
    check(
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        &[msg("YHOO\n+2\n10")],
        "",
        None,
    );
    check(b"data: a\ndata:\n\n", &[msg("a\n")], "", None);
    check(b"data:\ndata:\ndata:\n\n", &[msg("\n\n")], "", None);
}

#[test]
fn data_may_hold_nul() {
    check(b"data: a\0b\n\n", &[msg("a\0b")], "", None);
}

// --- id ---

#[test]
fn id_sets_and_persists_across_events() {
    check(
        b"id: 1\ndata: a\n\ndata: b\n\n",
        &[("message", "a", "1"), ("message", "b", "1")],
        "1",
        None,
    );
}

#[test]
fn empty_id_resets() {
    check(
        b"id: 1\ndata: a\n\nid\ndata: b\n\nid: 2\n\nid:\ndata: c\n\n",
        &[
            ("message", "a", "1"),
            ("message", "b", ""),
            ("message", "c", ""),
        ],
        "",
        None,
    );
}

#[test]
fn id_with_nul_is_ignored() {
    check(
        b"id: 1\nid: a\0b\ndata: x\n\n",
        &[("message", "x", "1")],
        "1",
        None,
    );
    check(b"id: \0\ndata: x\n\n", &[msg("x")], "", None);
}

#[test]
fn id_takes_effect_at_dispatch_even_without_data() {
    check(b"id: 5\n\n", &[], "5", None);
    check(b"id: 5\n\ndata: x\n\n", &[("message", "x", "5")], "5", None);
}

#[test]
fn undispatched_id_does_not_change_last_event_id() {
    check(b"id: 1\n\nid: 2\n", &[], "1", None);
    check(b"id: 1\n\nid: 2\ndata: x\n", &[], "1", None);
}

#[test]
fn events_share_the_last_event_id_until_it_changes() {
    use std::sync::Arc;

    // A long id (at the line limit) then many tiny events: one copy of the id.
    let long_id = "i".repeat(Decoder::DEFAULT_MAX_LINE_BYTES - "id: ".len());
    let mut input = format!("id: {long_id}\n");
    input.push_str(&"data: x\n\n".repeat(1000));
    input.push_str("id: 2\ndata: y\n\ndata: z\n\n");
    let mut decoder = Decoder::new();
    let mut events = Vec::new();
    decoder.try_feed(input.as_bytes(), &mut events).unwrap();
    assert_eq!(events.len(), 1002);
    let first = &events[0].last_event_id;
    assert_eq!(**first, *long_id);
    assert!(events[..1000]
        .iter()
        .all(|e| Arc::ptr_eq(&e.last_event_id, first)));
    // A changed id is a new value, shared in turn by the events after it.
    let (changed, next) = (&events[1000].last_event_id, &events[1001].last_event_id);
    assert_eq!(&**changed, "2");
    assert!(!Arc::ptr_eq(changed, first));
    assert!(Arc::ptr_eq(changed, next));

    // Setting the same id again, or reconnecting, keeps the shared value.
    decoder.finish();
    let mut later = Vec::new();
    decoder
        .try_feed(b"data: after\n\nid: 2\ndata: same\n\n", &mut later)
        .unwrap();
    assert_eq!(later.len(), 2);
    assert!(later.iter().all(|e| Arc::ptr_eq(&e.last_event_id, changed)));
}

#[test]
fn id_keeps_inner_spaces() {
    check(
        b"id:  a b \ndata: x\n\n",
        &[("message", "x", " a b ")],
        " a b ",
        None,
    );
}

// --- retry ---

#[test]
fn retry_accepts_ascii_digits_only() {
    check(b"retry: 3000\n", &[], "", Some(3000));
    check(b"retry:007\n", &[], "", Some(7));
    check(b"retry: 0\n", &[], "", Some(0));
    for bad in [
        &b"retry:\n"[..],
        b"retry\n",
        b"retry: \n",
        b"retry:  1\n",
        b"retry: 1 \n",
        b"retry: -1\n",
        b"retry: +1\n",
        b"retry: 1.5\n",
        b"retry: 10a\n",
        b"retry: 1e3\n",
        "retry: ٣\n".as_bytes(),
    ] {
        check(bad, &[], "", None);
    }
}

#[test]
fn invalid_retry_keeps_the_previous_value() {
    check(
        b"retry: 10\nretry: x\nretry: 20\nretry: \n",
        &[],
        "",
        Some(20),
    );
}

#[test]
fn huge_retry_saturates() {
    check(b"retry: 18446744073709551615\n", &[], "", Some(u64::MAX));
    check(b"retry: 99999999999999999999999\n", &[], "", Some(u64::MAX));
}

#[test]
fn retry_does_not_need_a_dispatch_and_does_not_dispatch() {
    check(b"retry: 5\ndata: x\n", &[], "", Some(5));
    check(b"data: x\nretry: 5\n\n", &[msg("x")], "", Some(5));
}

// --- end of stream ---

#[test]
fn incomplete_event_at_end_is_discarded() {
    check(b"data: x\n", &[], "", None);
    check(b"data: x", &[], "", None);
    check(b"data: x\n\ndata: y", &[msg("x")], "", None);
    check(b"data: x\n\ndata: y\r", &[msg("x")], "", None);
    check(
        b"data: first\n\ndata: second\n\ndata:",
        &[msg("first"), msg("second")],
        "",
        None,
    );
}

#[test]
fn unterminated_last_line_is_not_processed() {
    check(b"id: 1\n\nid: 2", &[], "1", None);
    check(b"retry: 9", &[], "", None);
}

#[test]
fn finish_resets_line_state_and_pending_event() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(
        b"retry: 7\nid: 1\n\nevent: e\nid: 2\ndata: lost\ndata: partial",
        &mut out,
    );
    decoder.finish();
    assert!(decoder.line.is_empty());
    assert!(!decoder.pending_cr);
    // The unterminated line is gone: this LF is a blank line with no data.
    decoder.feed(b"\ndata: next\n\n", &mut out);
    assert_eq!(out, [ev("message", "next", "1")]);
    assert_eq!(decoder.retry(), Some(7));
}

#[test]
fn finish_clears_pending_cr() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(b"data: a\r", &mut out);
    assert!(decoder.pending_cr);
    decoder.finish();
    assert!(!decoder.pending_cr);
}

#[test]
fn a_new_stream_after_finish_may_start_with_a_bom() {
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    decoder.feed(b"\xEF\xBB\xBFdata: a\n\n", &mut out);
    decoder.finish();
    decoder.feed(b"\xEF\xBB", &mut out);
    decoder.feed(b"\xBFdata: b\n\n", &mut out);
    assert_eq!(out, [ev("message", "a", ""), ev("message", "b", "")]);
}

#[test]
fn decode_all_matches_decoder() {
    let input = b"id: 3\nevent: x\ndata: 1\n\ndata: 2";
    assert_eq!(decode_all(input), run(&[input]).events);
}

// --- chunking ---

#[test]
fn long_lines_across_many_chunks() {
    let data = "x".repeat(10_000) + "é" + &"y".repeat(777);
    let input = format!("data: {data}\r\ndata: {data}\r\n\r\n");
    let want = format!("{data}\n{data}");
    for size in [1, 2, 3, 7, 64, 4096] {
        let chunks: Vec<&[u8]> = input.as_bytes().chunks(size).collect();
        let got = run(&chunks);
        assert_eq!(got.events.len(), 1, "chunk size {size}");
        assert_eq!(got.events[0].data, want, "chunk size {size}");
    }
}

#[test]
fn many_events_in_one_chunk_come_out_in_order() {
    let input: String = (0..100)
        .map(|i| format!("id: {i}\ndata: {i}\n\n"))
        .collect();
    let events = decode_all(input.as_bytes());
    assert_eq!(events.len(), 100);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(
            (e.data.as_str(), &*e.last_event_id),
            (&*i.to_string(), &*i.to_string())
        );
    }
}
