//! A stream's limits and timers, its errors, and what its calls return.

use std::time::Duration;

use bytes::Bytes;

use super::frame::{HEARTBEAT_COMMENT_FRAME, HEARTBEAT_DATA_FRAME};

/// How an idle stream proves it is alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HeartbeatFormat {
    /// `data: heartbeat` — what the seed's clients and proxies look for.
    #[default]
    Data,
    /// `: heartbeat` — an SSE comment, invisible to `EventSource` listeners.
    Comment,
}

impl HeartbeatFormat {
    pub fn frame(self) -> &'static [u8] {
        match self {
            HeartbeatFormat::Data => HEARTBEAT_DATA_FRAME,
            HeartbeatFormat::Comment => HEARTBEAT_COMMENT_FRAME,
        }
    }
}

/// Limits and timers of one stream.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamConfig {
    /// Idle time after which a heartbeat frame is emitted; `None` disables heartbeats.
    pub heartbeat: Option<Duration>,
    pub heartbeat_format: HeartbeatFormat,
    /// Total lifetime; `None` means no limit.
    pub timeout: Option<Duration>,
    /// Buffered messages at most; `send` waits beyond that.
    pub max_pending: usize,
    /// Buffered bytes at most. One message larger than this still goes through, alone.
    pub max_pending_bytes: usize,
    /// Upper bound of one coalesced chunk handed to the consumer (a single larger frame
    /// is handed out whole).
    pub max_chunk_bytes: usize,
    /// Whether the stream ends with `data: [DONE]`: the seed's, OpenAI's and the AI SDK's
    /// end marker. AG-UI has none, and its clients reject a data line that is not JSON.
    pub done_frame: bool,
}

impl Default for StreamConfig {
    fn default() -> Self {
        StreamConfig {
            heartbeat: Some(Duration::from_secs(10)),
            heartbeat_format: HeartbeatFormat::Data,
            timeout: Some(Duration::from_secs(3600)),
            max_pending: 256,
            max_pending_bytes: 4 << 20,
            max_chunk_bytes: 64 << 10,
            done_frame: true,
        }
    }
}

impl StreamConfig {
    /// Checks the limits; every constructor of a stream calls it.
    pub fn validate(&self) -> Result<(), StreamError> {
        let bad = |what: &str| Err(StreamError::Config(what.to_string()));
        if self.max_pending == 0 {
            return bad("max_pending must be at least 1");
        }
        if self.max_pending_bytes == 0 {
            return bad("max_pending_bytes must be at least 1");
        }
        if self.max_chunk_bytes == 0 {
            return bad("max_chunk_bytes must be at least 1");
        }
        if self.heartbeat.is_some_and(|d| d.is_zero()) {
            return bad("heartbeat must be positive (or disabled)");
        }
        if self.timeout.is_some_and(|d| d.is_zero()) {
            return bad("timeout must be positive (or disabled)");
        }
        Ok(())
    }
}

/// Why a stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    Completed,
    Failed {
        message: String,
        code: String,
    },
    TimedOut,
    ConsumerGone,
    /// Every [`Sender`](super::Sender) was dropped without `complete` or `fail`.
    ProducerGone,
}

/// Errors of the stream layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    #[error("stream closed: the consumer went away")]
    ConsumerGone,
    #[error("stream already ended")]
    Ended,
    #[error("stream timed out")]
    TimedOut,
    #[error("message could not be encoded as JSON: {0}")]
    Encode(String),
    #[error("invalid stream configuration: {0}")]
    Config(String),
}

/// Result of [`Sender::try_send_encoded`](super::Sender::try_send_encoded).
#[derive(Debug)]
pub enum TrySend {
    /// Queued with this event id.
    Sent(u64),
    /// The buffer is full; the frame body comes back untouched.
    Full(Vec<u8>),
}

/// Result of [`EventStream::try_next_chunk`](super::EventStream::try_next_chunk).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TryChunk {
    Chunk(Bytes),
    /// Nothing to hand out now; the stream is still open.
    Empty,
    /// The last frame was already handed out, or the consumer closed the stream.
    Ended,
}

/// A snapshot of a stream's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamStats {
    /// Message frames handed to the consumer (heartbeats and `[DONE]` not included).
    pub messages_sent: u64,
    /// Bytes handed to the consumer, all frames included.
    pub bytes_sent: u64,
    pub heartbeats: u64,
    /// Messages buffered now.
    pub pending: u64,
    /// Time producers spent waiting for buffer space.
    pub blocked: Duration,
}
