//! `synthetic_stream()`: an `EventStream` fed by a Rust task with generated messages, for
//! load tests and benchmarks that must measure the consumer side alone.

use pyo3::prelude::*;
use serde::Serialize;

use super::stream::{checked_yield_every, stream_config, PyEventStream};
use crate::stream::EventStream;

#[derive(Serialize)]
struct Payload<'a> {
    seq: u64,
    text: &'a str,
}

/// A stream whose producer is a Rust task sending `count` messages of type `type` whose
/// data is `{"seq": n, "text": "x" * payload_bytes}`, then completing.
#[pyfunction]
#[pyo3(signature = (
    request_id, count, *, payload_bytes = 200, r#type = "bench", heartbeat = Some(10.0),
    timeout = Some(3600.0), max_pending = 256, max_pending_bytes = 4194304,
    max_chunk_bytes = 65536, yield_every = 32
), text_signature = "(request_id, count, *, payload_bytes=200, type='bench', heartbeat=10.0, timeout=3600.0, max_pending=256, max_pending_bytes=4194304, max_chunk_bytes=65536, yield_every=32)")]
#[allow(clippy::too_many_arguments)]
pub fn synthetic_stream(
    request_id: &str,
    count: u64,
    payload_bytes: usize,
    r#type: &str,
    heartbeat: Option<f64>,
    timeout: Option<f64>,
    max_pending: usize,
    max_pending_bytes: usize,
    max_chunk_bytes: usize,
    yield_every: u32,
) -> PyResult<PyEventStream> {
    let yield_every = checked_yield_every(yield_every)?;
    let config = stream_config(
        heartbeat,
        timeout,
        max_pending,
        max_pending_bytes,
        max_chunk_bytes,
        "data",
    )?;
    let kind = r#type.to_owned();
    let text = "x".repeat(payload_bytes);
    let _runtime = pyo3_async_runtimes::tokio::get_runtime().enter();
    let stream = EventStream::spawn(request_id, config, move |tx| async move {
        for seq in 0..count {
            tx.send(&kind, &Payload { seq, text: &text }).await?;
        }
        Ok(())
    })?;
    let sender = stream.sender();
    Ok(PyEventStream::from_parts(sender, stream, yield_every))
}
