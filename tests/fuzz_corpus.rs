//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the
//! fuzz targets' own property checks, so that plain `cargo test` on the
//! stable toolchain keeps every input the fuzzer found interesting passing.
//! `make fuzz` (nightly, cargo-fuzz) searches for new ones.

#[path = "../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod fuzz_checks;

// The decoder check measures what the decoder holds on the heap.
#[global_allocator]
static METER: fuzz_checks::alloc_meter::Meter = fuzz_checks::alloc_meter::Meter;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Runs `check` on every file of the target's corpus; fails naming each input
/// that broke a property. `min_inputs` keeps the test from passing on an
/// empty or misplaced corpus.
fn replay(target: &str, min_inputs: usize, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= min_inputs,
        "{}: {} inputs, expected at least {min_inputs}",
        dir.display(),
        inputs.len()
    );
    let failed: Vec<String> = inputs
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("corpus file");
            catch_unwind(AssertUnwindSafe(|| check(&data))).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(failed.is_empty(), "properties broken by {failed:#?}");
}

#[test]
fn sse_decoder_corpus() {
    replay("sse_decoder", 50, fuzz_checks::sse_decoder::check);
}

#[test]
fn sse_roundtrip_corpus() {
    replay("sse_roundtrip", 10, fuzz_checks::sse_roundtrip::check);
}

#[test]
fn request_parser_corpus() {
    replay("request_parser", 20, fuzz_checks::request_parser::check);
}

// --- what the fuzzer found, kept as plain tests ---

/// genie-tool batches reports by `token` in every mode; in the default
/// (general) mode the token used to be taken unchecked: 8861704 pieces per
/// report was accepted, and 0, -1 or 2.5 silently became 5.
#[test]
fn genie_tool_token_is_checked_in_general_mode_too() {
    use deepsearch_stream::api::{parse_request, Limits, Route};
    use deepsearch_stream::deepsearch::Batching;

    let parse = |body: &str| {
        parse_request(
            Route::GenieTool,
            Some("application/json"),
            body.as_bytes(),
            &Limits::default(),
            &[],
        )
    };
    for token in ["8861704", "1000001", "0", "-1", "2.5", "1e300"] {
        let body = format!(r#"{{"query": "q", "stream_mode": {{"token": {token}}}}}"#);
        let error = parse(&body).unwrap_err();
        assert_eq!(
            (error.status, error.field.as_deref()),
            (422, Some("stream_mode")),
            "{body}"
        );
        assert!(
            error.message.contains("token must be a whole number"),
            "{error:?}"
        );
    }
    for (token, batch) in [("1", 1), ("1000000", 1_000_000), ("3.0", 3), ("null", 5)] {
        let body =
            format!(r#"{{"query": "q", "streamMode": {{"mode": "general", "token": {token}}}}}"#);
        let request = parse(&body).unwrap();
        assert_eq!(
            request.search.mode.batching,
            Batching::Tokens(batch),
            "{body}"
        );
    }
    let request = parse(r#"{"query": "q", "stream_mode": "final"}"#).unwrap();
    assert_eq!(request.search.mode.batching, Batching::Tokens(5));
}
