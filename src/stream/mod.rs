//! `EventStream`: one SSE stream per request, between any number of producers ([`Sender`])
//! and exactly one consumer (the HTTP response body).
//!
//! What it guarantees, and why:
//! - **Backpressure, never loss.** The buffer is bounded by message count and bytes; `send`
//!   waits while it is full. The seed's `BackPressureSSEPrinter` dropped a message after
//!   100 ms of waiting; here a message is either delivered or its sender gets an error.
//! - **Heartbeats only when idle.** The consumer makes a heartbeat itself when nothing was
//!   handed to it for `heartbeat`; heartbeats therefore never queue behind a full buffer.
//! - **A clean end.** Completion, failure and timeout each end with `data: [DONE]`; failure
//!   and timeout first send an `error` message with `isFinal: true`.
//! - **Cancellation.** When the consumer goes away, waiting and later sends fail with
//!   [`StreamError::ConsumerGone`] and producer tasks attached to the stream are cancelled.
//! - **Cheap consumption.** Buffered frames are handed out coalesced into one chunk (up to
//!   `max_chunk_bytes`), so a Python consumer pays one crossing for many events.

mod config;
mod consumer;
pub mod frame;
mod sender;
mod shared;

pub use config::{
    EndReason, HeartbeatFormat, StreamConfig, StreamError, StreamStats, TryChunk, TrySend,
};
pub use consumer::{CloseHandle, EventStream, Failure};
pub use frame::DONE_FRAME;
pub use sender::Sender;
pub use shared::{FrameId, QueuedFrame};

#[cfg(test)]
mod tests;
