//! The state one stream's producers and consumer share, behind one lock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::task::AtomicWaker;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::message::Envelope;

use super::config::*;
use super::frame::{data_frame, error_frame, id_line_len, write_frame, DONE_FRAME};

pub(super) type Hook = Box<dyn FnOnce(&EndReason) + Send>;
pub(super) type Canceller = Box<dyn FnOnce() + Send>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum HookKind {
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

pub(super) struct Frame {
    pub(super) id: Option<u64>,
    pub(super) body: Vec<u8>,
    /// The `[DONE]` frame.
    pub(super) done: bool,
}

/// One frame as its producer queued it, for a reader that stores frames rather than
/// sending them ([`EventStream::next_frame`](super::EventStream::next_frame)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedFrame {
    /// A frame with its id, and its bytes after the `id:` line.
    Numbered { id: u64, body: Bytes },
    /// A frame without id.
    Unnumbered(Bytes),
    /// `[DONE]`: the stream has ended.
    Done,
}

pub(super) struct State {
    pub(super) queue: VecDeque<Frame>,
    pub(super) pending_bytes: usize,
    pub(super) next_id: u64,
    /// Set once, when producers can no longer send; the terminal frames are queued then.
    pub(super) end: Option<EndReason>,
    /// The consumer took the last frame, or went away.
    pub(super) finished: bool,
    pub(super) last_delivery: Instant,
    pub(super) hooks: Vec<(HookKind, Hook)>,
    pub(super) cancellers: Vec<Canceller>,
    /// Written before each id (`id: <key>.<n>`): a resumable stream's secret key.
    pub(super) id_key: Option<Arc<str>>,
    /// Whether a successful end's `[DONE]` takes the next id, so a client that comes
    /// back with it can be told it has read the end.
    pub(super) number_done: bool,
}

pub(super) struct Shared {
    pub(super) request_id: Box<str>,
    pub(super) config: StreamConfig,
    pub(super) deadline: Option<Instant>,
    pub(super) state: Mutex<State>,
    pub(super) consumer: AtomicWaker,
    pub(super) space: Notify,
    pub(super) senders: AtomicUsize,
    pub(super) messages_sent: AtomicU64,
    pub(super) bytes_sent: AtomicU64,
    pub(super) heartbeats: AtomicU64,
    pub(super) blocked_nanos: AtomicU64,
    /// The last encoded body's length: the next one is sized from it, so a stream of
    /// similar messages encodes without growing its buffer.
    pub(super) body_hint: AtomicUsize,
}

/// What must happen after the state lock is released.
#[derive(Default)]
pub(super) struct Wake {
    pub(super) consumer: bool,
    pub(super) producers: bool,
    pub(super) ended: Option<(EndReason, Vec<Hook>, Vec<Canceller>)>,
}

impl Shared {
    pub(super) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that
        // matters more than losing the stream entirely, so keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn apply(&self, wake: Wake) {
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

    pub(super) fn encode_body<D: Serialize + ?Sized>(
        &self,
        env: &Envelope<'_, D>,
    ) -> Result<Vec<u8>, StreamError> {
        let hint = self.body_hint.load(Ordering::Relaxed);
        let body = data_frame(env, hint.clamp(96, 64 * 1024) + 16)
            .map_err(|e| StreamError::Encode(e.to_string()))?;
        self.body_hint.store(body.len(), Ordering::Relaxed);
        Ok(body)
    }

    /// Marks the end and queues the terminal frames. Caller holds the lock.
    pub(super) fn end_locked(&self, st: &mut State, reason: EndReason, wake: &mut Wake) {
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
            let body = error_frame(&self.request_id, &message, &code);
            let id = st.next_id;
            st.next_id += 1;
            st.pending_bytes += body.len();
            st.queue.push_back(Frame {
                id: Some(id),
                body,
                done: false,
            });
        }
        let done_id = (st.number_done && reason == EndReason::Completed).then_some(st.next_id);
        // Without its bytes the frame still marks the end for the consumer.
        let done = if self.config.done_frame {
            DONE_FRAME.to_vec()
        } else {
            Vec::new()
        };
        st.queue.push_back(Frame {
            id: done_id,
            body: done,
            done: true,
        });
        st.end = Some(reason);
        wake.consumer = true;
        wake.producers = true;
    }

    pub(super) fn check_timeout_locked(&self, st: &mut State, now: Instant, wake: &mut Wake) {
        if st.end.is_none() && !st.finished && self.deadline.is_some_and(|d| now >= d) {
            self.end_locked(st, EndReason::TimedOut, wake);
        }
    }

    pub(super) fn closed_error(st: &State) -> StreamError {
        match &st.end {
            Some(EndReason::TimedOut) => StreamError::TimedOut,
            Some(EndReason::ConsumerGone) | None => StreamError::ConsumerGone,
            Some(_) => StreamError::Ended,
        }
    }

    /// Queues `body` under `id`: `Auto` numbers it, `Given` keeps the id of a frame
    /// replayed from elsewhere (later numbering continues after it), `Unnumbered` sends it
    /// without an id line.
    pub(super) fn try_push(&self, id: FrameId, body: Vec<u8>) -> Result<TrySend, StreamError> {
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
                st.queue.push_back(Frame {
                    id,
                    body,
                    done: false,
                });
                wake.consumer = true;
                Ok(TrySend::Sent(id.unwrap_or(0)))
            }
        };
        self.apply(wake);
        result
    }

    pub(super) fn finish_locked(&self, st: &mut State, reason: EndReason, wake: &mut Wake) {
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
    pub(super) fn try_take(&self, now: Instant) -> Result<TryChunk, Option<Instant>> {
        let mut wake = Wake::default();
        let result = {
            let mut st = self.lock();
            self.take_locked(&mut st, now, &mut wake)
        };
        self.apply(wake);
        result
    }

    pub(super) fn take_locked(
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
                size += id_line_len(st.id_key.as_deref(), f.id) + f.body.len();
                bodies += f.body.len();
                frames += 1;
            }
            let mut chunk = BytesMut::with_capacity(size);
            let mut messages = 0u64;
            let key = st.id_key.clone();
            for f in st.queue.drain(..frames) {
                if f.id.is_some() && !f.done {
                    messages += 1;
                }
                write_frame(&mut chunk, key.as_deref(), f.id, &f.body);
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

    /// Takes the next frame whole, as queued: no coalescing, no `id:` line, no heartbeats.
    /// `Err(deadline)` as for [`try_take`](Self::try_take) (the timeout falls due then).
    pub(super) fn try_take_frame(
        &self,
        now: Instant,
    ) -> Result<Option<QueuedFrame>, Option<Instant>> {
        let mut wake = Wake::default();
        let result = {
            let mut st = self.lock();
            if st.finished {
                Ok(None)
            } else {
                self.check_timeout_locked(&mut st, now, &mut wake);
                match st.queue.pop_front() {
                    Some(f) => {
                        st.pending_bytes = st.pending_bytes.saturating_sub(f.body.len());
                        st.last_delivery = now;
                        let len = id_line_len(st.id_key.as_deref(), f.id) + f.body.len();
                        self.bytes_sent.fetch_add(len as u64, Ordering::Relaxed);
                        wake.producers = true;
                        if st.queue.is_empty() {
                            if let Some(reason) = st.end.clone() {
                                self.finish_locked(&mut st, reason, &mut wake);
                            }
                        }
                        Ok(Some(match (f.done, f.id) {
                            (true, _) => QueuedFrame::Done,
                            (false, Some(id)) => {
                                self.messages_sent.fetch_add(1, Ordering::Relaxed);
                                QueuedFrame::Numbered {
                                    id,
                                    body: Bytes::from(f.body),
                                }
                            }
                            (false, None) => QueuedFrame::Unnumbered(Bytes::from(f.body)),
                        }))
                    }
                    None => Err(self.deadline),
                }
            }
        };
        self.apply(wake);
        result
    }

    /// Makes the stream resumable: ids written `<key>.<n>`, and the opening frame
    /// (`retry:`, a heartbeat with the id `<key>.<after>`) ahead of everything queued. Called before the
    /// consumer takes anything.
    pub(super) fn make_resumable(&self, key: Arc<str>, after: u64, retry: Option<Duration>) {
        let mut wake = Wake::default();
        {
            let mut st = self.lock();
            let heartbeat = self.config.heartbeat_format.frame();
            let body = super::frame::opening_frame(&key, after, retry, heartbeat);
            st.pending_bytes += body.len();
            st.queue.push_front(Frame {
                id: None,
                body,
                done: false,
            });
            st.id_key = Some(key);
            // The ids go on after the resume point, even when no frame follows it.
            st.next_id = st.next_id.max(after.saturating_add(1));
            wake.consumer = true;
        }
        self.apply(wake);
    }

    /// Ends the stream with `reason` unless it has already ended.
    pub(super) fn end(&self, reason: EndReason) -> Result<(), StreamError> {
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

    pub(super) fn close(&self) {
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

pub(super) fn stats(shared: &Shared) -> StreamStats {
    let pending = shared
        .lock()
        .queue
        .iter()
        .filter(|f| f.id.is_some() && !f.done)
        .count() as u64;
    StreamStats {
        messages_sent: shared.messages_sent.load(Ordering::Relaxed),
        bytes_sent: shared.bytes_sent.load(Ordering::Relaxed),
        heartbeats: shared.heartbeats.load(Ordering::Relaxed),
        pending,
        blocked: Duration::from_nanos(shared.blocked_nanos.load(Ordering::Relaxed)),
    }
}
