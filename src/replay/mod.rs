//! Replay logs: every frame a stream's producer emitted, kept for a while after the
//! stream ends, so a client whose connection dropped can come back with `Last-Event-ID`
//! and get what it missed, once, in order.
//!
//! A log is written by one [`LogWriter`] (the search) and read by at most one
//! [`LogReader`] at a time (the client's connection; a new reader takes over and the old
//! one gets [`ReplayError::Superseded`]). Frames are identified by the stream's own SSE
//! ids, which increase by one per frame; a log ends with [`Entry::Done`].
//!
//! [`ReplayStore`] is the abstraction a store implements: [`MemoryStore`] keeps logs in
//! this process; [`RedisStore`] (feature `redis`) keeps them in Redis Streams, shared
//! by every instance, without the servers noticing. The methods return boxed futures so a service
//! can hold any store as `Arc<dyn ReplayStore>`.

mod key;
mod memory;
#[cfg(feature = "redis")]
mod redis;

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreError, CONNECT_TIMEOUT as REDIS_CONNECT_TIMEOUT};
pub use key::{chat_log_name, scope_of, NoRandomness, StreamKey, KEY_CHARS};
pub use memory::MemoryStore;

pub use crate::stream::frame::error_frame;

/// What a reader gets next from a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A frame: its id and its bytes after the `id:` line (`data: ...\n\n`).
    Frame { id: u64, body: Bytes },
    /// The log has ended: `[DONE]` follows.
    Done,
}

/// Errors of the replay layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The log is unknown, has expired or was evicted, or no longer holds the frames
    /// after the id asked for.
    #[error("the stream can no longer be resumed from there: it has expired or was evicted")]
    Expired,
    /// Another connection resumed the stream and took it over.
    #[error("another connection resumed this stream")]
    Superseded,
    /// The log was replaced by a new search with the same request id.
    #[error("a new search with the same request id replaced this stream")]
    Replaced,
    /// The store failed (a store over the network).
    #[error("replay store: {0}")]
    Store(String),
    /// The client's `Last-Event-ID` is past the log's last id: this server never sent it.
    #[error("Last-Event-ID {after} was never sent on this stream: its last id is {last}")]
    Unsent { after: u64, last: u64 },
    /// The client has read the log's end (`after` is the id of its `[DONE]`).
    #[error("the stream has ended and its end was read")]
    Finished,
    /// The shared store cannot serve this resume: it is unreachable, or the instance
    /// running the search lost it.
    #[error("{0}")]
    Unavailable(String),
}

impl ReplayError {
    /// The `code` of the `error` message a client is sent.
    pub fn code(&self) -> &'static str {
        match self {
            ReplayError::Expired => "expired",
            ReplayError::Superseded => "superseded",
            ReplayError::Replaced => "replaced",
            ReplayError::Unsent { .. } => "unsent_event_id",
            ReplayError::Finished => "finished",
            ReplayError::Store(_) => "replay_store",
            ReplayError::Unavailable(_) => "resume_unavailable",
        }
    }
}

/// How long logs live and how much memory they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// How long a log is kept after its stream ended.
    pub ttl: Duration,
    /// How long a search goes on with no client attached before it is cancelled.
    /// Zero cancels it as soon as its client leaves.
    pub linger: Duration,
    /// Bytes all logs together may hold.
    pub max_bytes: usize,
    /// Bytes one log may hold.
    pub max_log_bytes: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            ttl: Duration::from_secs(300),
            linger: Duration::from_secs(60),
            max_bytes: 256 << 20,
            max_log_bytes: 16 << 20,
        }
    }
}

impl ReplayConfig {
    /// Checks the limits.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_bytes == 0 || self.max_log_bytes == 0 {
            return Err("replay byte budgets must be at least 1".into());
        }
        if self.max_log_bytes > self.max_bytes {
            return Err(format!(
                "the per-stream replay budget ({}) exceeds the total one ({})",
                self.max_log_bytes, self.max_bytes
            ));
        }
        Ok(())
    }
}

/// Where logs live.
pub trait ReplayStore: Send + Sync + fmt::Debug {
    /// Starts a new, empty log for `request_id`, replacing any log of that id (its reader
    /// gets [`ReplayError::Replaced`], its writer stops being able to append).
    fn create<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn LogWriter>, ReplayError>>;

    /// A reader of `request_id`'s log from the frame after `after` (0: from the start),
    /// taking over from the reader attached now, if any. An `after` past the log's last
    /// id is refused without taking over: [`ReplayError::Finished`] when it is the id of
    /// the `[DONE]` of an ended log (last id + 1), else [`ReplayError::Unsent`].
    fn attach<'a>(
        &'a self,
        request_id: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Box<dyn LogReader>, ReplayError>>;

    /// The configuration it enforces.
    fn config(&self) -> &ReplayConfig;
}

/// Appends to one log. Dropped before [`finish`](LogWriter::finish) (its task was
/// aborted), it ends the log with an `error` (code `interrupted`) so no reader waits forever.
pub trait LogWriter: Send + fmt::Debug {
    /// Appends a frame, waiting while the budgets leave no room for it (backpressure:
    /// the producer slows down, nothing is dropped).
    fn append(&self, id: u64, body: Bytes) -> BoxFuture<'_, Result<(), ReplayError>>;

    /// Ends the log, after `last` when given (a final `error` frame, appended even over
    /// the budgets so that a waiting writer can always end its log).
    fn finish(&self, last: Option<(u64, Bytes)>) -> BoxFuture<'_, Result<(), ReplayError>>;

    /// Resolves once no reader has been attached for the linger time (at once when the
    /// log was replaced): the search should be cancelled then.
    fn unattended(&self) -> BoxFuture<'_, ()>;
}

/// Reads one log, in order. Dropping it detaches it (the linger time starts).
pub trait LogReader: Send + fmt::Debug {
    /// The next entry, waiting for the writer when the reader has caught up.
    fn next(&mut self) -> BoxFuture<'_, Result<Entry, ReplayError>>;
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod memory_tests;
