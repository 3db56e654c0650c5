//! Property checks behind the fuzz targets, one module per target.
//!
//! Each `check(data)` decodes the fuzzer's bytes into an input, runs the code
//! under test and panics when a property does not hold. The same modules are
//! compiled into the main crate's `tests/fuzz_corpus.rs` (by path), which
//! replays the committed corpus on the stable toolchain; so they use nothing
//! but `deepsearch_stream`, `serde_json` and `std`.

pub mod alloc_meter;
mod bytes_reader;
pub mod request_parser;
pub mod sse_decoder;
pub mod sse_roundtrip;
