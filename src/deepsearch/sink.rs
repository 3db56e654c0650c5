//! Where a search's messages go, and how answer pieces are batched on the way.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::messages::Message;
use super::options::{Batching, Filter};
use super::DeepSearchError;
use crate::stream::{Sender, StreamError};

/// A destination for messages. Every message is awaited: a full destination makes the
/// search wait (backpressure), a closed one stops it.
pub trait Sink: Send {
    fn emit(
        &mut self,
        message: Message,
    ) -> impl Future<Output = Result<(), DeepSearchError>> + Send;
}

/// Streams each message as an envelope on an [`EventStream`](crate::stream::EventStream).
impl Sink for Sender {
    async fn emit(&mut self, message: Message) -> Result<(), DeepSearchError> {
        match self.send(message.kind(), &message).await {
            Ok(_) => Ok(()),
            Err(StreamError::Encode(e)) => Err(DeepSearchError::Internal(e)),
            Err(StreamError::TimedOut) => Err(DeepSearchError::TimedOut),
            Err(_) => Err(DeepSearchError::Closed),
        }
    }
}

/// Collects the messages, for callers that want them all at the end (and for tests).
impl Sink for Vec<Message> {
    async fn emit(&mut self, message: Message) -> Result<(), DeepSearchError> {
        self.push(message);
        Ok(())
    }
}

/// Discards everything: the non-streaming search only needs the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct Discard;

impl Sink for Discard {
    async fn emit(&mut self, _message: Message) -> Result<(), DeepSearchError> {
        Ok(())
    }
}

/// A sink seen through a `stream_mode` filter.
pub(crate) struct Filtered<'s, S> {
    pub sink: &'s mut S,
    pub filter: Filter,
}

impl<S: Sink> Filtered<'_, S> {
    pub async fn emit(&mut self, message: Message) -> Result<(), DeepSearchError> {
        if self.filter.passes(message.kind()) {
            self.sink.emit(message).await
        } else {
            Ok(())
        }
    }
}

/// Groups answer pieces per the `stream_mode` batching.
#[derive(Debug)]
pub(crate) struct Batcher {
    batching: Batching,
    held: String,
    pieces: usize,
    due: Option<Instant>,
}

impl Batcher {
    pub fn new(batching: Batching) -> Self {
        Batcher {
            batching,
            held: String::new(),
            pieces: 0,
            due: None,
        }
    }

    /// When held text must go out even if no piece arrives (time batching only).
    pub fn deadline(&self) -> Option<Instant> {
        self.due
    }

    /// Adds a piece; returns a batch when one is complete.
    pub fn push(&mut self, piece: String, now: Instant) -> Option<String> {
        if piece.is_empty() {
            return None;
        }
        match self.batching {
            Batching::General => Some(piece),
            Batching::Tokens(n) => {
                self.held.push_str(&piece);
                self.pieces += 1;
                (self.pieces >= n).then(|| self.take())
            }
            Batching::Every(interval) => {
                self.held.push_str(&piece);
                let due = *self.due.get_or_insert(now + interval);
                (now >= due).then(|| self.take())
            }
        }
    }

    /// What is held, when its time has come (or at the end).
    pub fn flush(&mut self) -> Option<String> {
        (!self.held.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> String {
        self.pieces = 0;
        self.due = None;
        std::mem::take(&mut self.held)
    }
}

/// How long to wait for the next piece before flushing a time batch.
pub(crate) fn until(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_batches() {
        let now = Instant::now();
        let mut b = Batcher::new(Batching::Tokens(2));
        assert_eq!(b.push("a".into(), now), None);
        assert_eq!(b.push(" b".into(), now).as_deref(), Some("a b"));
        assert_eq!(b.push(" c".into(), now), None);
        assert_eq!(b.flush().as_deref(), Some(" c"));
        assert_eq!(b.flush(), None);
    }

    #[test]
    fn time_batches() {
        let t0 = Instant::now();
        let mut b = Batcher::new(Batching::Every(Duration::from_secs(1)));
        assert_eq!(b.push("a".into(), t0), None);
        assert_eq!(b.deadline(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(b.push("b".into(), t0 + Duration::from_millis(500)), None);
        assert_eq!(
            b.push("c".into(), t0 + Duration::from_secs(1)).as_deref(),
            Some("abc")
        );
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn general_passes_through() {
        let mut b = Batcher::new(Batching::General);
        assert_eq!(b.push("x".into(), Instant::now()).as_deref(), Some("x"));
        assert_eq!(b.push(String::new(), Instant::now()), None);
        assert_eq!(b.flush(), None);
    }
}
