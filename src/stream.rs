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

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use crate::message::{Envelope, ErrorData};

/// The frame a successful stream ends with.
pub const DONE_FRAME: &[u8] = b"data: [DONE]\n\n";

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
            HeartbeatFormat::Data => b"data: heartbeat\n\n",
            HeartbeatFormat::Comment => b": heartbeat\n\n",
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
    /// Every [`Sender`] was dropped without `complete` or `fail`.
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

/// Result of [`Sender::try_send_encoded`].
#[derive(Debug)]
pub enum TrySend {
    /// Queued with this event id.
    Sent(u64),
    /// The buffer is full; the frame body comes back untouched.
    Full(Vec<u8>),
}

/// Result of [`EventStream::try_next_chunk`].
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

type Hook = Box<dyn FnOnce(&EndReason) + Send>;
type Canceller = Box<dyn FnOnce() + Send>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum HookKind {
    Completion,
    Timeout,
    Error,
}

/// How a queued frame is numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameId {
    /// The stream's next id.
    Auto,
    /// This id (a frame replayed from a log keeps its own); numbering continues after it.
    Given(u64),
    /// No `id:` line: the frame does not move the client's `Last-Event-ID`.
    Unnumbered,
}

struct Frame {
    id: Option<u64>,
    body: Vec<u8>,
}

/// Length of the `id: N\n` line written before a frame with an id.
fn id_line_len(id: Option<u64>) -> usize {
    id.map_or(0, |id| 5 + id.checked_ilog10().unwrap_or(0) as usize + 1)
}

struct State {
    queue: VecDeque<Frame>,
    pending_bytes: usize,
    next_id: u64,
    /// Set once, when producers can no longer send; the terminal frames are queued then.
    end: Option<EndReason>,
    /// The consumer took the last frame, or went away.
    finished: bool,
    last_delivery: Instant,
    hooks: Vec<(HookKind, Hook)>,
    cancellers: Vec<Canceller>,
}

struct Shared {
    request_id: Box<str>,
    config: StreamConfig,
    deadline: Option<Instant>,
    state: Mutex<State>,
    consumer: AtomicWaker,
    space: Notify,
    senders: AtomicUsize,
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    heartbeats: AtomicU64,
    blocked_nanos: AtomicU64,
    /// The last encoded body's length: the next one is sized from it, so a stream of
    /// similar messages encodes without growing its buffer.
    body_hint: AtomicUsize,
}

/// What must happen after the state lock is released.
#[derive(Default)]
struct Wake {
    consumer: bool,
    producers: bool,
    ended: Option<(EndReason, Vec<Hook>, Vec<Canceller>)>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that
        // matters more than losing the stream entirely, so keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, wake: Wake) {
        if wake.consumer {
            self.consumer.wake();
        }
        if wake.producers {
            self.space.notify_waiters();
        }
        if let Some((reason, hooks, cancellers)) = wake.ended {
            for cancel in cancellers {
                cancel();
            }
            for hook in hooks {
                hook(&reason);
            }
        }
    }

    fn encode_body<D: Serialize + ?Sized>(
        &self,
        env: &Envelope<'_, D>,
    ) -> Result<Vec<u8>, StreamError> {
        let hint = self.body_hint.load(Ordering::Relaxed);
        let mut body = Vec::with_capacity(hint.clamp(96, 64 * 1024) + 16);
        body.extend_from_slice(b"data: ");
        env.write_json(&mut body)
            .map_err(|e| StreamError::Encode(e.to_string()))?;
        // JSON text never holds a raw CR or LF (serde_json escapes them), so one `data:`
        // line is exactly what the general SSE encoder would write.
        body.extend_from_slice(b"\n\n");
        self.body_hint.store(body.len(), Ordering::Relaxed);
        Ok(body)
    }

    /// Marks the end and queues the terminal frames. Caller holds the lock.
    fn end_locked(&self, st: &mut State, reason: EndReason, wake: &mut Wake) {
        let error = match &reason {
            EndReason::Failed { message, code } => Some((message.clone(), code.clone())),
            EndReason::TimedOut => Some((
                format!(
                    "stream timed out after {:.0} s",
                    self.config.timeout.unwrap_or_default().as_secs_f64()
                ),
                "timeout".to_string(),
            )),
            EndReason::ProducerGone => Some((
                "the stream's producer went away without completing it".to_string(),
                "producer_gone".to_string(),
            )),
            EndReason::Completed | EndReason::ConsumerGone => None,
        };
        if let Some((message, code)) = error {
            let data = ErrorData {
                message: &message,
                code: &code,
            };
            let env = Envelope::new("error", &data, &self.request_id).is_final(Some(true));
            // ErrorData holds only strings: encoding cannot fail.
            if let Ok(body) = self.encode_body(&env) {
                let id = st.next_id;
                st.next_id += 1;
                st.pending_bytes += body.len();
                st.queue.push_back(Frame { id: Some(id), body });
            }
        }
        st.queue.push_back(Frame {
            id: None,
            body: DONE_FRAME.to_vec(),
        });
        st.end = Some(reason);
        wake.consumer = true;
        wake.producers = true;
    }

    fn check_timeout_locked(&self, st: &mut State, now: Instant, wake: &mut Wake) {
        if st.end.is_none() && !st.finished && self.deadline.is_some_and(|d| now >= d) {
            self.end_locked(st, EndReason::TimedOut, wake);
        }
    }

    fn closed_error(st: &State) -> StreamError {
        match &st.end {
            Some(EndReason::TimedOut) => StreamError::TimedOut,
            Some(EndReason::ConsumerGone) | None => StreamError::ConsumerGone,
            Some(_) => StreamError::Ended,
        }
    }

    /// Queues `body` under `id`: `Auto` numbers it, `Given` keeps the id of a frame
    /// replayed from elsewhere (later numbering continues after it), `Unnumbered` sends it
    /// without an id line.
    fn try_push(&self, id: FrameId, body: Vec<u8>) -> Result<TrySend, StreamError> {
        let mut wake = Wake::default();
        let result = {
            let mut st = self.lock();
            self.check_timeout_locked(&mut st, Instant::now(), &mut wake);
            if st.end.is_some() || st.finished {
                Err(Self::closed_error(&st))
            } else if st.queue.len() >= self.config.max_pending
                || (!st.queue.is_empty()
                    && st.pending_bytes + body.len() > self.config.max_pending_bytes)
            {
                Ok(TrySend::Full(body))
            } else {
                let id = match id {
                    FrameId::Auto => Some(st.next_id),
                    FrameId::Given(id) => Some(id),
                    FrameId::Unnumbered => None,
                };
                if let Some(id) = id {
                    st.next_id = id + 1;
                }
                st.pending_bytes += body.len();
                st.queue.push_back(Frame { id, body });
                wake.consumer = true;
                Ok(TrySend::Sent(id.unwrap_or(0)))
            }
        };
        self.apply(wake);
        result
    }

    fn finish_locked(&self, st: &mut State, reason: EndReason, wake: &mut Wake) {
        st.finished = true;
        let kind = match reason {
            EndReason::Completed => HookKind::Completion,
            EndReason::TimedOut => HookKind::Timeout,
            _ => HookKind::Error,
        };
        let hooks = std::mem::take(&mut st.hooks)
            .into_iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, h)| h)
            .collect();
        let cancellers = std::mem::take(&mut st.cancellers);
        wake.producers = true;
        wake.ended = Some((reason, hooks, cancellers));
    }

    /// Takes whatever can be handed out now. `Err(deadline)` means "nothing yet; look again
    /// at that instant at the latest" (a heartbeat or timeout falls due then).
    fn try_take(&self, now: Instant) -> Result<TryChunk, Option<Instant>> {
        let mut wake = Wake::default();
        let result = {
            let mut st = self.lock();
            self.take_locked(&mut st, now, &mut wake)
        };
        self.apply(wake);
        result
    }

    fn take_locked(
        &self,
        st: &mut State,
        now: Instant,
        wake: &mut Wake,
    ) -> Result<TryChunk, Option<Instant>> {
        if st.finished {
            return Ok(TryChunk::Ended);
        }
        self.check_timeout_locked(st, now, wake);
        if !st.queue.is_empty() {
            // Whole frames, as many as fit in one chunk (at least one), sized up front.
            let mut frames = 0;
            let mut size = 0;
            let mut bodies = 0;
            for f in &st.queue {
                if frames > 0 && size + f.body.len() + 24 > self.config.max_chunk_bytes {
                    break;
                }
                size += id_line_len(f.id) + f.body.len();
                bodies += f.body.len();
                frames += 1;
            }
            let mut chunk = BytesMut::with_capacity(size);
            let mut messages = 0u64;
            let mut id_text = itoa::Buffer::new();
            for f in st.queue.drain(..frames) {
                if let Some(id) = f.id {
                    messages += 1;
                    chunk.extend_from_slice(b"id: ");
                    chunk.extend_from_slice(id_text.format(id).as_bytes());
                    chunk.extend_from_slice(b"\n");
                }
                chunk.extend_from_slice(&f.body);
            }
            st.pending_bytes = st.pending_bytes.saturating_sub(bodies);
            st.last_delivery = now;
            self.messages_sent.fetch_add(messages, Ordering::Relaxed);
            self.bytes_sent
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            wake.producers = true;
            if st.queue.is_empty() {
                if let Some(reason) = st.end.clone() {
                    self.finish_locked(st, reason, wake);
                }
            }
            return Ok(TryChunk::Chunk(chunk.freeze()));
        }
        let heartbeat_at = self.config.heartbeat.map(|hb| st.last_delivery + hb);
        if heartbeat_at.is_some_and(|at| now >= at) {
            st.last_delivery = now;
            let frame = self.config.heartbeat_format.frame();
            self.heartbeats.fetch_add(1, Ordering::Relaxed);
            self.bytes_sent
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
            return Ok(TryChunk::Chunk(Bytes::from_static(frame)));
        }
        let next = match (heartbeat_at, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        Err(next)
    }

    /// Ends the stream with `reason` unless it has already ended.
    fn end(&self, reason: EndReason) -> Result<(), StreamError> {
        let mut wake = Wake::default();
        let result = {
            let mut st = self.lock();
            self.check_timeout_locked(&mut st, Instant::now(), &mut wake);
            if st.end.is_some() || st.finished {
                Err(Shared::closed_error(&st))
            } else {
                self.end_locked(&mut st, reason, &mut wake);
                Ok(())
            }
        };
        self.apply(wake);
        result
    }

    fn close(&self) {
        let mut wake = Wake::default();
        {
            let mut st = self.lock();
            if st.finished {
                return;
            }
            // Nobody is left to read what is buffered; the producers learn it from `send`.
            st.queue.clear();
            st.pending_bytes = 0;
            if st.end.is_none() {
                st.end = Some(EndReason::ConsumerGone);
            }
            self.finish_locked(&mut st, EndReason::ConsumerGone, &mut wake);
            // A read may be pending when another task closes the stream (a disconnect
            // listener next to the sending loop): it must end now, not at the next timer.
            wake.consumer = true;
        }
        self.apply(wake);
    }
}

/// The producer side. Cheap to clone; when the last clone is dropped without `complete`
/// or `fail`, the stream ends with an `error` message (code `producer_gone`) rather than
/// leaving its client waiting forever.
pub struct Sender {
    shared: Arc<Shared>,
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
    pub async fn send_frame(&self, id: FrameId, mut body: Vec<u8>) -> Result<u64, StreamError> {
        let mut blocked_since: Option<Instant> = None;
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

fn stats(shared: &Shared) -> StreamStats {
    let pending = shared
        .lock()
        .queue
        .iter()
        .filter(|f| f.id.is_some())
        .count() as u64;
    StreamStats {
        messages_sent: shared.messages_sent.load(Ordering::Relaxed),
        bytes_sent: shared.bytes_sent.load(Ordering::Relaxed),
        heartbeats: shared.heartbeats.load(Ordering::Relaxed),
        pending,
        blocked: Duration::from_nanos(shared.blocked_nanos.load(Ordering::Relaxed)),
    }
}

/// The consumer side: a [`futures::Stream`] of SSE byte chunks, each one or more whole
/// frames. Dropping it (or calling [`close`](Self::close)) tells the producers the client
/// is gone and cancels producer tasks attached with [`on_close_cancel`](Self::on_close_cancel).
///
/// ```
/// use deepsearch_stream::stream::{EventStream, StreamConfig};
/// use futures::StreamExt;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (tx, mut rx) = EventStream::new("req-1", StreamConfig::default()).unwrap();
/// tx.send("status", "started").await.unwrap();
/// tx.complete().unwrap();
/// let chunk = rx.next().await.unwrap();
/// let text = std::str::from_utf8(&chunk).unwrap();
/// assert!(text.starts_with("id: 1\ndata: {\"type\": \"status\", \"data\": \"started\""));
/// assert!(text.ends_with("\n\ndata: [DONE]\n\n"));
/// assert!(rx.next().await.is_none());
/// # });
/// ```
pub struct EventStream {
    poller: Poller,
}

impl fmt::Debug for EventStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("request_id", &self.poller.shared.request_id)
            .finish()
    }
}

impl EventStream {
    /// A new stream and its first sender.
    pub fn new(
        request_id: &str,
        config: StreamConfig,
    ) -> Result<(Sender, EventStream), StreamError> {
        config.validate()?;
        let now = Instant::now();
        let shared = Arc::new(Shared {
            request_id: request_id.into(),
            deadline: config.timeout.map(|t| now + t),
            config,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                pending_bytes: 0,
                next_id: 1,
                end: None,
                finished: false,
                last_delivery: now,
                hooks: Vec::new(),
                cancellers: Vec::new(),
            }),
            consumer: AtomicWaker::new(),
            space: Notify::new(),
            senders: AtomicUsize::new(1),
            messages_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            blocked_nanos: AtomicU64::new(0),
            body_hint: AtomicUsize::new(0),
        });
        let sender = Sender {
            shared: shared.clone(),
        };
        Ok((
            sender,
            EventStream {
                poller: Poller::new(shared),
            },
        ))
    }

    /// A stream fed by `producer`, spawned on the current tokio runtime. `Ok` completes the
    /// stream, `Err` fails it; the task is aborted when the consumer goes away.
    pub fn spawn<F, Fut>(
        request_id: &str,
        config: StreamConfig,
        producer: F,
    ) -> Result<EventStream, StreamError>
    where
        F: FnOnce(Sender) -> Fut,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
        let (tx, stream) = EventStream::new(request_id, config)?;
        let done = tx.clone();
        let work = producer(tx);
        let task = tokio::spawn(async move {
            // Ending twice (or after the consumer left) is harmless: ignore that error.
            let _ = match work.await {
                Ok(()) => done.complete(),
                Err(f) => done.fail(&f.message, &f.code),
            };
        });
        let abort = task.abort_handle();
        stream.on_close_cancel(move || abort.abort());
        Ok(stream)
    }

    pub fn request_id(&self) -> &str {
        &self.poller.shared.request_id
    }

    /// Takes what is ready now, without waiting: buffered frames (coalesced), a due
    /// heartbeat, or the timeout's terminal frames.
    pub fn try_next_chunk(&self) -> TryChunk {
        match self.poller.shared.try_take(Instant::now()) {
            Ok(c) => c,
            Err(_) => TryChunk::Empty,
        }
    }

    /// A `'static` future for the next chunk (`None` at the end), for consumers that cannot
    /// hold `&mut self` across the wait (the Python binding). Only one may be pending at a
    /// time; it does not close the stream when dropped.
    pub fn next_chunk_owned(&self) -> impl Future<Output = Option<Bytes>> + Send + 'static {
        let mut poller = Poller::new(self.poller.shared.clone());
        futures::future::poll_fn(move |cx| poller.poll_chunk(cx))
    }

    /// Registers a canceller run once when the stream ends for any reason (consumer gone
    /// included); runs it at once if the stream has already ended.
    pub fn on_close_cancel(&self, cancel: impl FnOnce() + Send + 'static) {
        let mut st = self.poller.shared.lock();
        if st.finished {
            drop(st);
            cancel();
        } else {
            st.cancellers.push(Box::new(cancel));
        }
    }

    /// Runs `hook` when the stream completes normally (the consumer took `[DONE]`).
    pub fn on_completion(&self, hook: impl FnOnce(&EndReason) + Send + 'static) {
        self.add_hook(HookKind::Completion, Box::new(hook));
    }

    /// Runs `hook` when the stream times out.
    pub fn on_timeout(&self, hook: impl FnOnce(&EndReason) + Send + 'static) {
        self.add_hook(HookKind::Timeout, Box::new(hook));
    }

    /// Runs `hook` when the stream fails, its producer disappears, or its consumer leaves.
    pub fn on_error(&self, hook: impl FnOnce(&EndReason) + Send + 'static) {
        self.add_hook(HookKind::Error, Box::new(hook));
    }

    fn add_hook(&self, kind: HookKind, hook: Hook) {
        self.poller.shared.lock().hooks.push((kind, hook));
    }

    /// The consumer is gone: drops what is buffered, fails pending and later sends with
    /// [`StreamError::ConsumerGone`], cancels attached producer tasks. Idempotent.
    pub fn close(&self) {
        self.poller.shared.close();
    }

    /// Another sender for this stream.
    pub fn sender(&self) -> Sender {
        self.poller.shared.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            shared: self.poller.shared.clone(),
        }
    }

    /// A handle that closes this stream from elsewhere, as if the consumer went away.
    pub fn close_handle(&self) -> CloseHandle {
        CloseHandle {
            shared: self.poller.shared.clone(),
        }
    }

    /// True when the stream has nothing more to give.
    pub fn is_finished(&self) -> bool {
        self.poller.shared.lock().finished
    }

    pub fn stats(&self) -> StreamStats {
        stats(&self.poller.shared)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        self.poller.shared.close();
    }
}

impl futures::Stream for EventStream {
    type Item = Bytes;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        self.poller.poll_chunk(cx)
    }
}

/// Closes a stream from outside its consumer: for a consumer future that was cancelled or
/// a chunk that could not be handed on.
#[derive(Clone)]
pub struct CloseHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for CloseHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseHandle")
            .field("request_id", &self.shared.request_id)
            .finish()
    }
}

impl CloseHandle {
    /// Same as [`EventStream::close`].
    pub fn close(&self) {
        self.shared.close();
    }

    /// Ends the stream with an `error` message `{"message", "code"}` (`isFinal: true`),
    /// then `[DONE]`, as [`Sender::fail`] would, without holding a sender (holding one
    /// would keep a stream whose producers all vanished from ending). For a server
    /// telling its open streams it is shutting down. `Err` when it has already ended.
    ///
    /// ```
    /// use deepsearch_stream::stream::{EventStream, StreamConfig};
    /// use futures::StreamExt;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (_tx, mut rx) = EventStream::new("r", StreamConfig::default()).unwrap();
    /// let handle = rx.close_handle();
    /// handle.fail("server is shutting down", "shutdown").unwrap();
    /// assert!(handle.fail("again", "shutdown").is_err());
    /// let text = String::from_utf8(rx.next().await.unwrap().to_vec()).unwrap();
    /// assert!(text.contains(r#""code": "shutdown""#) && text.ends_with("data: [DONE]\n\n"));
    /// # });
    /// ```
    pub fn fail(&self, message: &str, code: &str) -> Result<(), StreamError> {
        self.shared.end(EndReason::Failed {
            message: message.to_string(),
            code: code.to_string(),
        })
    }

    /// The stream's counters now (its final ones once it has ended).
    pub fn stats(&self) -> StreamStats {
        stats(&self.shared)
    }
}

/// A producer's failure, turned into an `error` message by [`EventStream::spawn`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub message: String,
    pub code: String,
}

impl Failure {
    pub fn new(message: impl Into<String>, code: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: code.into(),
        }
    }
}

impl From<StreamError> for Failure {
    fn from(e: StreamError) -> Self {
        let code = match e {
            StreamError::TimedOut => "timeout",
            StreamError::ConsumerGone => "consumer_gone",
            _ => "error",
        };
        Failure::new(e.to_string(), code)
    }
}

struct Poller {
    shared: Arc<Shared>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Poller {
    fn new(shared: Arc<Shared>) -> Self {
        Poller {
            shared,
            sleep: None,
        }
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
        loop {
            // Register before looking, so a frame pushed in between still wakes us.
            self.shared.consumer.register(cx.waker());
            match self.shared.try_take(Instant::now()) {
                Ok(TryChunk::Chunk(b)) => return Poll::Ready(Some(b)),
                Ok(TryChunk::Ended) => return Poll::Ready(None),
                Ok(TryChunk::Empty) | Err(None) => return Poll::Pending,
                Err(Some(at)) => {
                    let sleep = match &mut self.sleep {
                        Some(s) => {
                            if s.deadline() != at {
                                s.as_mut().reset(at);
                            }
                            s
                        }
                        None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
                    };
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
