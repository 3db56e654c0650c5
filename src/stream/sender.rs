//! [`Sender`]: the producer side.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::Serialize;
use tokio::time::Instant;

use crate::message::Envelope;

use super::config::*;
use super::shared::*;

/// The producer side. Cheap to clone; when the last clone is dropped without `complete`
/// or `fail`, the stream ends with an `error` message (code `producer_gone`) rather than
/// leaving its client waiting forever.
pub struct Sender {
    pub(super) shared: Arc<Shared>,
}

impl fmt::Debug for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("request_id", &self.shared.request_id)
            .finish()
    }
}

impl Clone for Sender {
    fn clone(&self) -> Self {
        self.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if self.shared.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            let mut wake = Wake::default();
            {
                let mut st = self.shared.lock();
                if st.end.is_none() && !st.finished {
                    self.shared
                        .end_locked(&mut st, EndReason::ProducerGone, &mut wake);
                }
            }
            self.shared.apply(wake);
        }
    }
}

impl Sender {
    pub fn request_id(&self) -> &str {
        &self.shared.request_id
    }

    /// Sends one message, waiting while the buffer is full. Returns its event id.
    pub async fn send<D: Serialize + ?Sized>(
        &self,
        kind: &str,
        data: &D,
    ) -> Result<u64, StreamError> {
        let body = self.encode(&Envelope::new(kind, data, &self.shared.request_id))?;
        self.send_encoded(body).await
    }

    /// Encodes an envelope into a frame body (`data: {json}\n\n`) for
    /// [`send_encoded`](Self::send_encoded) / [`try_send_encoded`](Self::try_send_encoded).
    /// The envelope's `request_id` should be this stream's.
    pub fn encode<D: Serialize + ?Sized>(
        &self,
        envelope: &Envelope<'_, D>,
    ) -> Result<Vec<u8>, StreamError> {
        self.shared.encode_body(envelope)
    }

    /// Encodes arbitrary data text into a frame body: one `data:` line per line of
    /// `data`, as the SSE encoder splits them. For payloads that are not this stream's
    /// envelope: a relayed upstream event, or another protocol's JSON.
    ///
    /// ```
    /// let (tx, _stream) = deepsearch_stream::stream::EventStream::new("r", Default::default()).unwrap();
    /// assert_eq!(tx.encode_data("a\nb"), b"data: a\ndata: b\n\n");
    /// ```
    pub fn encode_data(&self, data: &str) -> Vec<u8> {
        let mut body = Vec::with_capacity(data.len() + 16);
        crate::sse::encode_data_lines(data, &mut body);
        body.push(b'\n');
        body
    }

    /// Queues an encoded frame body without waiting.
    pub fn try_send_encoded(&self, body: Vec<u8>) -> Result<TrySend, StreamError> {
        self.shared.try_push(FrameId::Auto, body)
    }

    /// Queues an encoded frame body numbered as `id` says, without waiting.
    pub fn try_send_frame(&self, id: FrameId, body: Vec<u8>) -> Result<TrySend, StreamError> {
        self.shared.try_push(id, body)
    }

    /// Queues an encoded frame body, waiting while the buffer is full.
    pub async fn send_encoded(&self, body: Vec<u8>) -> Result<u64, StreamError> {
        self.send_frame(FrameId::Auto, body).await
    }

    /// Queues an encoded frame body numbered as `id` says, waiting while the buffer is
    /// full. Returns the id it was sent with (0 for [`FrameId::Unnumbered`]).
    pub async fn send_frame(&self, id: FrameId, body: Vec<u8>) -> Result<u64, StreamError> {
        self.send_frame_blocked_since(id, body, None).await
    }

    /// [`send_encoded`](Self::send_encoded) for a frame that already found the buffer
    /// full at `full_at` ([`TrySend::Full`]): the wait counts from then, even when there
    /// is room by the time this runs.
    pub async fn send_encoded_after_full(
        &self,
        body: Vec<u8>,
        full_at: Instant,
    ) -> Result<u64, StreamError> {
        self.send_frame_blocked_since(FrameId::Auto, body, Some(full_at))
            .await
    }

    async fn send_frame_blocked_since(
        &self,
        id: FrameId,
        mut body: Vec<u8>,
        mut blocked_since: Option<Instant>,
    ) -> Result<u64, StreamError> {
        let result = loop {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.shared.try_push(id, body) {
                Ok(TrySend::Sent(id)) => break Ok(id),
                Ok(TrySend::Full(back)) => body = back,
                Err(e) => break Err(e),
            }
            blocked_since.get_or_insert_with(Instant::now);
            match self.shared.deadline {
                Some(deadline) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(deadline) => {}
                    }
                }
                None => notified.await,
            }
        };
        if let Some(since) = blocked_since {
            let nanos = u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.shared
                .blocked_nanos
                .fetch_add(nanos, Ordering::Relaxed);
        }
        result
    }

    /// Ends the stream successfully: `[DONE]` follows what is buffered.
    pub fn complete(&self) -> Result<(), StreamError> {
        self.end(EndReason::Completed)
    }

    /// Ends the stream successfully with a `[DONE]` that takes the next id: a client that
    /// comes back with that id has read the end (a replayed log's end).
    pub fn complete_numbered(&self) -> Result<(), StreamError> {
        self.shared.lock().number_done = true;
        self.end(EndReason::Completed)
    }

    /// Ends the stream with an `error` message `{"message", "code"}` (`isFinal: true`), then `[DONE]`.
    pub fn fail(&self, message: &str, code: &str) -> Result<(), StreamError> {
        self.end(EndReason::Failed {
            message: message.to_string(),
            code: code.to_string(),
        })
    }

    fn end(&self, reason: EndReason) -> Result<(), StreamError> {
        self.shared.end(reason)
    }

    /// True once no further message can be sent (ended, timed out or consumer gone).
    pub fn is_closed(&self) -> bool {
        let st = self.shared.lock();
        st.end.is_some() || st.finished
    }

    /// Resolves when the consumer has gone away or taken the last frame: lets a producer
    /// stop expensive work even between sends.
    pub async fn closed(&self) {
        loop {
            let notified = self.shared.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().finished {
                return;
            }
            notified.await;
        }
    }

    pub fn stats(&self) -> StreamStats {
        stats(&self.shared)
    }
}
