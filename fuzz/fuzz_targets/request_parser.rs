#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| deepsearch_stream_fuzz::request_parser::check(data));
