#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deepsearch_stream_fuzz::sse_roundtrip::check(data));
