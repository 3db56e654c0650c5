//! [`EventStream`]: the consumer side, and [`CloseHandle`] to end it from elsewhere.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::task::AtomicWaker;
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::config::*;
use super::sender::Sender;
use super::shared::*;

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
/// assert!(text.starts_with("data: {\"type\": \"status\", \"data\": \"started\""));
/// assert!(text.ends_with("}\nid: 1\n\ndata: [DONE]\n\n"));
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
                id_key: None,
                number_done: false,
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
        stream.drive(tx, producer);
        Ok(stream)
    }

    /// Spawns `producer` on the current tokio runtime to feed this stream through `tx`
    /// (its sender), as [`spawn`](Self::spawn) does, for a stream set up first (see
    /// [`make_resumable`](Self::make_resumable)).
    pub fn drive<F, Fut>(&self, tx: Sender, producer: F)
    where
        F: FnOnce(Sender) -> Fut,
        Fut: Future<Output = Result<(), Failure>> + Send + 'static,
    {
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
        self.on_close_cancel(move || abort.abort());
    }

    pub fn request_id(&self) -> &str {
        &self.poller.shared.request_id
    }

    /// Makes this stream resumable: its ids go out as `<key>.<n>`, and it opens with
    /// `retry:` (when given) and a heartbeat with the id `<key>.<after>`, so a client has
    /// the key before the first event. Call it before the stream is read.
    pub fn make_resumable(&self, key: Arc<str>, after: u64, retry: Option<std::time::Duration>) {
        self.poller.shared.make_resumable(key, after, retry);
    }

    /// Takes what is ready now, without waiting: buffered frames (coalesced), a due
    /// heartbeat, or the timeout's terminal frames.
    pub fn try_next_chunk(&self) -> TryChunk {
        match self.poller.shared.try_take(Instant::now()) {
            Ok(c) => c,
            Err(_) => TryChunk::Empty,
        }
    }

    /// The next frame whole, as its producer queued it (`None` once the stream is
    /// finished or closed): for a reader that stores frames, such as a replay log's
    /// recorder, rather than sending them. It never yields heartbeats.
    pub async fn next_frame(&mut self) -> Option<QueuedFrame> {
        futures::future::poll_fn(|cx| self.poller.poll_frame(cx)).await
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

    /// Waits until `at`; `Ready` once it has passed.
    fn poll_until(&mut self, at: Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = match &mut self.sleep {
            Some(s) => {
                if s.deadline() != at {
                    s.as_mut().reset(at);
                }
                s
            }
            None => self.sleep.insert(Box::pin(tokio::time::sleep_until(at))),
        };
        sleep.as_mut().poll(cx)
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<QueuedFrame>> {
        loop {
            self.shared.consumer.register(cx.waker());
            match self.shared.try_take_frame(Instant::now()) {
                Ok(frame) => return Poll::Ready(frame),
                Err(None) => return Poll::Pending,
                Err(Some(at)) => {
                    if self.poll_until(at, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
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
                    if self.poll_until(at, cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }
}
