//! The streams a service is serving, so that a server stopping can end each one with an
//! `error` (code `shutdown`) and `[DONE]` instead of cutting it, and the recorders logging
//! them, so that it exits only once those logs are complete (a resume elsewhere then reads
//! the `shutdown` error and `[DONE]`, not `interrupted`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use tokio::sync::watch;

use crate::stream::{CloseHandle, EventStream};

/// `message` of the `error` each open stream gets when the server stops.
pub const SHUTDOWN_MESSAGE: &str = "server is shutting down";
/// `code` of that `error`.
pub const SHUTDOWN_CODE: &str = super::ErrorCode::Shutdown.as_str();

#[derive(Debug, Default)]
struct Inner {
    closing: bool,
    streams: HashMap<u64, CloseHandle>,
}

/// The streams being served now. Each is tracked from its start until it ends (for any
/// reason: completed, failed, timed out, client gone), through a [`CloseHandle`], which
/// does not count as a producer: a stream whose producers vanish still ends on its own.
#[derive(Debug)]
pub struct OpenStreams {
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    closing: watch::Sender<bool>,
    /// Recorders still writing their logs.
    recording: watch::Sender<usize>,
}

/// Counts one recorder as writing until dropped.
#[derive(Debug)]
pub struct Recording(Arc<OpenStreams>);

impl Drop for Recording {
    fn drop(&mut self) {
        self.0.recording.send_modify(|n| *n -= 1);
    }
}

impl Default for OpenStreams {
    fn default() -> Self {
        OpenStreams {
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(0),
            closing: watch::Sender::new(false),
            recording: watch::Sender::new(0),
        }
    }
}

impl OpenStreams {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent across a panic elsewhere: keep using it.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tracks `stream` until it ends. Once shutdown has begun, fails it at once instead.
    pub fn track(self: &Arc<Self>, stream: &EventStream) {
        let handle = stream.close_handle();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut inner = self.lock();
            if inner.closing {
                drop(inner);
                let _ = handle.fail(SHUTDOWN_MESSAGE, SHUTDOWN_CODE);
                return;
            }
            inner.streams.insert(id, handle);
        }
        // Runs when the stream ends, after its own lock is released; at once if it
        // already has. Weak: a finished server need not outlive its last stream.
        let this: Weak<Self> = Arc::downgrade(self);
        stream.on_close_cancel(move || {
            if let Some(this) = this.upgrade() {
                this.lock().streams.remove(&id);
            }
        });
    }

    /// Streams being served now.
    pub fn len(&self) -> usize {
        self.lock().streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True once [`begin_shutdown`](Self::begin_shutdown) was called.
    pub fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// Resolves once shutdown has begun.
    pub async fn closing(&self) {
        let mut rx = self.closing.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we borrow it.
        let _ = rx.wait_for(|closing| *closing).await;
    }

    fn snapshot(&self) -> Vec<CloseHandle> {
        self.lock().streams.values().cloned().collect()
    }

    /// Ends every open stream with an `error` (code `shutdown`) and `[DONE]`, and every
    /// stream started from now on too. Returns how many were open.
    pub fn begin_shutdown(&self) -> usize {
        let open = {
            let mut inner = self.lock();
            inner.closing = true;
            inner.streams.values().cloned().collect::<Vec<_>>()
        };
        self.closing.send_replace(true);
        // Outside our lock: ending a stream may run its close callbacks, which take it.
        for handle in &open {
            let _ = handle.fail(SHUTDOWN_MESSAGE, SHUTDOWN_CODE);
        }
        open.len()
    }

    /// Counts a recorder (the task logging a search for resuming) until the guard drops.
    pub fn recording(self: &Arc<Self>) -> Recording {
        self.recording.send_modify(|n| *n += 1);
        Recording(Arc::clone(self))
    }

    /// Waits, at most `timeout`, until no recorder is writing; false if some still were.
    /// After [`begin_shutdown`](Self::begin_shutdown) their searches end at once, so this
    /// is the time their logs take to be written out (to Redis, say).
    pub async fn recorded(&self, timeout: std::time::Duration) -> bool {
        let mut rx = self.recording.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail while we borrow it.
        let settled = tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0)).await;
        settled.is_ok()
    }

    /// Closes every stream still open, as if its client had gone: their bodies end and
    /// their searches are cancelled. Returns how many there were.
    pub fn close_all(&self) -> usize {
        let open = self.snapshot();
        for handle in &open {
            handle.close();
        }
        open.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::OpenStreams;

    #[tokio::test]
    async fn recorded_waits_for_every_recorder() {
        let streams = OpenStreams::new();
        assert!(streams.recorded(Duration::ZERO).await, "none: at once");
        let (first, second) = (streams.recording(), streams.recording());
        assert!(!streams.recorded(Duration::from_millis(20)).await);
        drop(first);
        assert!(!streams.recorded(Duration::from_millis(20)).await);
        let waiting = tokio::spawn({
            let streams = std::sync::Arc::clone(&streams);
            async move { streams.recorded(Duration::from_secs(10)).await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(second);
        assert!(waiting.await.unwrap(), "woken by the last one");
    }
}
