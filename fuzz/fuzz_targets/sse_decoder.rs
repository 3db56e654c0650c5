#![no_main]

use deepsearch_stream_fuzz::alloc_meter::Meter;

// The decoder check measures what the decoder holds on the heap.
#[global_allocator]
static METER: Meter = Meter;

libfuzzer_sys::fuzz_target!(|data: &[u8]| deepsearch_stream_fuzz::sse_decoder::check(data));
