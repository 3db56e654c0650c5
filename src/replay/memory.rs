//! [`MemoryStore`]: replay logs in this process's memory, under one lock.
//!
//! Budgets, and what gives when they are reached:
//! 1. Ended logs are dropped `ttl` after they ended, and before that, oldest ended
//!    first, whenever a live log needs room (eviction).
//! 2. With no ended log left to evict, the oldest frames of live logs that their
//!    attached reader has already passed are dropped (trimming), oldest log first; the
//!    same happens within one log that reaches `max_log_bytes`. A resume from before
//!    a dropped frame gets [`ReplayError::Expired`].
//! 3. Beyond that, `append` waits (backpressure on the search) until a reader moves on,
//!    a log ends or is evicted, or the search is abandoned.
//!
//! Expired logs are dropped on a timer (one task per store while it holds ended logs,
//! waking when the oldest is due), and on any operation on the store.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{Entry, LogReader, LogWriter, ReplayConfig, ReplayError, ReplayStore};
use crate::metrics;

/// Replay logs kept in memory. Cheap to clone (the clones share the logs).
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    config: ReplayConfig,
    state: Mutex<State>,
    /// Wakes writers waiting for room.
    space: Notify,
    /// Whether the expiry task runs (see [`Shared::expire_on_time`]).
    expiring: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    logs: HashMap<Arc<str>, Log>,
    /// Bytes held by all logs.
    total: usize,
    /// Ended logs in the order they ended: (when, key, generation). With one TTL for
    /// all, the front is both the first to expire and the first to evict.
    ended: VecDeque<(Instant, Arc<str>, u64)>,
    next_generation: u64,
    next_reader: u64,
}

#[derive(Debug)]
struct Log {
    /// Tells this log from an earlier or later one of the same request id.
    generation: u64,
    frames: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// Highest id dropped from the front (0: none); resuming needs `after >= trimmed_through`.
    trimmed_through: u64,
    done: bool,
    /// The attached reader's token and the id it has passed.
    reader: Option<(u64, u64)>,
    detached_since: Instant,
    /// Wakes the reader (new frame, end, takeover) and the linger watch (attach, detach).
    changed: Arc<Notify>,
}

impl Log {
    /// The id of its last frame (0: none yet).
    fn last_id(&self) -> u64 {
        self.frames
            .back()
            .map_or(self.trimmed_through, |(id, _)| *id)
    }

    /// Drops frames the attached reader has passed, oldest first, until `fits(freed)`
    /// says enough is freed. Returns the bytes freed. A log without a reader keeps
    /// everything: its client may come back from any point.
    fn trim_passed(&mut self, mut fits: impl FnMut(usize) -> bool) -> usize {
        let Some((_, cursor)) = self.reader else {
            return 0;
        };
        let mut freed = 0;
        while !fits(freed) {
            match self.frames.front() {
                Some((id, _)) if *id <= cursor => {
                    let (id, body) = self.frames.pop_front().unwrap_or_default();
                    self.trimmed_through = id;
                    self.bytes -= body.len();
                    freed += body.len();
                    metrics::global().replay_frame_trimmed();
                }
                _ => break,
            }
        }
        freed
    }
}

impl State {
    /// Drops `key`'s log, if it is generation `generation` (any when `None`).
    fn remove(&mut self, key: &str, generation: Option<u64>) -> Option<Log> {
        let matches = self
            .logs
            .get(key)
            .is_some_and(|l| generation.is_none_or(|g| g == l.generation));
        if !matches {
            return None;
        }
        let log = self.logs.remove(key)?;
        self.total -= log.bytes;
        metrics::global().replay_log_removed(log.bytes);
        log.changed.notify_waiters();
        Some(log)
    }

    /// Drops ended logs whose time is up.
    fn purge(&mut self, now: Instant, ttl: std::time::Duration) {
        while let Some((ended_at, key, generation)) = self.ended.front().cloned() {
            let live = self
                .logs
                .get(&key)
                .is_some_and(|l| l.generation == generation);
            if live && now < ended_at + ttl {
                break;
            }
            self.ended.pop_front();
            self.remove(&key, Some(generation));
        }
    }

    /// Evicts the oldest ended log; false when there is none.
    fn evict_oldest_ended(&mut self) -> bool {
        while let Some((_, key, generation)) = self.ended.pop_front() {
            if self.remove(&key, Some(generation)).is_some() {
                metrics::global().replay_log_evicted();
                return true;
            }
        }
        false
    }

    /// Makes room for `need` more bytes in `key`'s log; true when they fit now.
    fn make_room(&mut self, key: &str, need: usize, config: &ReplayConfig) -> bool {
        let Some(log) = self.logs.get_mut(key) else {
            return false;
        };
        let own = log.bytes;
        let freed = log.trim_passed(|freed| own - freed + need <= config.max_log_bytes);
        self.total -= freed;
        metrics::global().replay_bytes_freed(freed);
        let log = &self.logs[key];
        // One frame larger than the budget still goes through, alone.
        if log.bytes + need > config.max_log_bytes && !log.frames.is_empty() {
            return false;
        }
        let fits = |total: usize| total + need <= config.max_bytes || total == 0;
        while !fits(self.total) && self.evict_oldest_ended() {}
        if !fits(self.total) {
            let mut live: Vec<(u64, Arc<str>)> = self
                .logs
                .iter()
                .map(|(k, l)| (l.generation, Arc::clone(k)))
                .collect();
            live.sort_unstable();
            for (_, k) in live {
                let total = self.total;
                if let Some(l) = self.logs.get_mut(&k) {
                    let freed = l.trim_passed(|freed| fits(total - freed));
                    self.total -= freed;
                    metrics::global().replay_bytes_freed(freed);
                }
                if fits(self.total) {
                    break;
                }
            }
        }
        fits(self.total)
    }

    fn push(&mut self, key: &str, id: u64, body: Bytes) {
        if let Some(log) = self.logs.get_mut(key) {
            log.bytes += body.len();
            self.total += body.len();
            metrics::global().replay_bytes_added(body.len());
            log.frames.push_back((id, body));
            log.changed.notify_waiters();
        }
    }
}

impl MemoryStore {
    pub fn new(config: ReplayConfig) -> Self {
        MemoryStore {
            shared: Arc::new(Shared {
                config,
                state: Mutex::new(State::default()),
                space: Notify::new(),
                expiring: AtomicBool::new(false),
            }),
        }
    }

    /// Bytes held by all logs now.
    pub fn bytes(&self) -> usize {
        self.shared.lock().total
    }

    /// Logs held now (live and ended).
    pub fn len(&self) -> usize {
        self.shared.lock().logs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts a new, empty log for `request_id` (see [`ReplayStore::create`]).
    pub(crate) fn create_writer(&self, request_id: &str) -> MemoryWriter {
        let key: Arc<str> = request_id.into();
        let generation = {
            let mut st = self.shared.lock_purged();
            st.remove(&key, None);
            let generation = st.next_generation;
            st.next_generation += 1;
            st.logs.insert(
                Arc::clone(&key),
                Log {
                    generation,
                    frames: VecDeque::new(),
                    bytes: 0,
                    trimmed_through: 0,
                    done: false,
                    reader: None,
                    detached_since: Instant::now(),
                    changed: Arc::new(Notify::new()),
                },
            );
            metrics::global().replay_log_added();
            generation
        };
        self.shared.space.notify_waiters();
        MemoryWriter {
            shared: Arc::clone(&self.shared),
            key,
            generation,
        }
    }

    /// Whether `key`'s log has a reader attached now.
    #[cfg(feature = "redis")]
    pub(crate) fn has_reader(&self, key: &str) -> bool {
        let st = self.shared.lock();
        st.logs.get(key).is_some_and(|l| l.reader.is_some())
    }

    /// Drops `key`'s log at once (a shared store took it over): its writer's appends
    /// fail, a reader attached now gets [`ReplayError::Expired`].
    #[cfg(feature = "redis")]
    pub(crate) fn forget(&self, key: &str) {
        self.shared.lock().remove(key, None);
        self.shared.space.notify_waiters();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the state consistent before anything can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Locks and drops what has expired.
    fn lock_purged(&self) -> MutexGuard<'_, State> {
        let mut st = self.lock();
        st.purge(Instant::now(), self.config.ttl);
        st
    }
}

impl Shared {
    /// Starts the task that drops ended logs when their time is up, unless it runs. It
    /// ends once no ended log is left (the next `finish` starts another), and with the
    /// store: it holds it weakly.
    fn expire_on_time(shared: &Arc<Shared>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // No timer without a runtime: expiry stays on the next operation.
        };
        if shared.expiring.swap(true, Ordering::AcqRel) {
            return;
        }
        runtime.spawn(expire(Arc::downgrade(shared)));
    }
}

async fn expire(shared: Weak<Shared>) {
    loop {
        let due = {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            let ttl = shared.config.ttl;
            let mut st = shared.lock();
            st.purge(Instant::now(), ttl);
            let due = st.ended.front().map(|(ended_at, _, _)| *ended_at + ttl);
            if due.is_none() {
                // Under the lock: a `finish` after this sees the flag down and restarts it.
                shared.expiring.store(false, Ordering::Release);
            }
            drop(st);
            shared.space.notify_waiters();
            due
        };
        match due {
            Some(at) => tokio::time::sleep_until(at).await,
            None => return,
        }
    }
}

/// Why a reader cannot start after `after` in a log whose last id is `last`: it read the
/// end (`after` is the id of the `[DONE]` of an ended log), or the id was never sent.
pub(super) fn past_the_end(last: u64, done: bool, after: u64) -> Option<ReplayError> {
    match after.checked_sub(last) {
        None | Some(0) => None,
        Some(1) if done => Some(ReplayError::Finished),
        Some(_) => Some(ReplayError::Unsent { after, last }),
    }
}

/// The log `key` of `generation`, or why it is gone.
fn log_of<'a>(st: &'a mut State, key: &str, generation: u64) -> Result<&'a mut Log, ReplayError> {
    match st.logs.get_mut(key) {
        Some(log) if log.generation == generation => Ok(log),
        Some(_) => Err(ReplayError::Replaced),
        None => Err(ReplayError::Expired),
    }
}

impl ReplayStore for MemoryStore {
    fn create<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn LogWriter>, ReplayError>> {
        let writer = self.create_writer(request_id);
        async move { Ok(Box::new(writer) as Box<dyn LogWriter>) }.boxed()
    }

    fn attach<'a>(
        &'a self,
        request_id: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Box<dyn LogReader>, ReplayError>> {
        async move {
            let mut st = self.shared.lock_purged();
            let token = st.next_reader;
            st.next_reader += 1;
            let Some((key, log)) = st.logs.get_key_value(request_id) else {
                return Err(ReplayError::Expired);
            };
            if after < log.trimmed_through {
                return Err(ReplayError::Expired);
            }
            if let Some(refusal) = past_the_end(log.last_id(), log.done, after) {
                // Refused before taking over: the attached reader keeps the stream.
                return Err(refusal);
            }
            let (key, generation) = (Arc::clone(key), log.generation);
            if let Some(log) = st.logs.get_mut(request_id) {
                // The reader attached until now finds it is no longer the one, and ends.
                log.reader = Some((token, after));
                log.changed.notify_waiters();
            }
            Ok(Box::new(MemoryReader {
                shared: Arc::clone(&self.shared),
                key,
                generation,
                token,
                cursor: after,
            }) as Box<dyn LogReader>)
        }
        .boxed()
    }

    fn config(&self) -> &ReplayConfig {
        &self.shared.config
    }
}

#[derive(Debug)]
pub(crate) struct MemoryWriter {
    shared: Arc<Shared>,
    key: Arc<str>,
    generation: u64,
}

impl LogWriter for MemoryWriter {
    fn append(&self, id: u64, body: Bytes) -> BoxFuture<'_, Result<(), ReplayError>> {
        async move {
            loop {
                let notified = self.shared.space.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                {
                    let mut st = self.shared.lock_purged();
                    log_of(&mut st, &self.key, self.generation).map_err(|e| match e {
                        // Only ended logs are evicted: a live one that is gone was replaced.
                        ReplayError::Expired => ReplayError::Replaced,
                        other => other,
                    })?;
                    if st.make_room(&self.key, body.len(), &self.shared.config) {
                        st.push(&self.key, id, body);
                        return Ok(());
                    }
                }
                notified.await;
            }
        }
        .boxed()
    }

    fn finish(&self, last: Option<(u64, Bytes)>) -> BoxFuture<'_, Result<(), ReplayError>> {
        async move {
            {
                let mut st = self.shared.lock();
                let log = log_of(&mut st, &self.key, self.generation)?;
                if log.done {
                    return Ok(());
                }
                log.done = true;
                log.changed.notify_waiters();
                if let Some((id, body)) = last {
                    st.push(&self.key, id, body);
                }
                st.ended
                    .push_back((Instant::now(), Arc::clone(&self.key), self.generation));
            }
            // An ended log can be evicted: room for writers waiting.
            self.shared.space.notify_waiters();
            Shared::expire_on_time(&self.shared);
            Ok(())
        }
        .boxed()
    }

    fn unattended(&self) -> BoxFuture<'_, ()> {
        async move {
            loop {
                let changed: Arc<Notify>;
                let (notified, deadline) = {
                    let mut st = self.shared.lock();
                    let Ok(log) = log_of(&mut st, &self.key, self.generation) else {
                        return;
                    };
                    let deadline = match log.reader {
                        Some(_) => None,
                        None => Some(log.detached_since + self.shared.config.linger),
                    };
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return;
                    }
                    changed = Arc::clone(&log.changed);
                    // Every notification is sent under the lock: enabled before we let
                    // go of it, this wait cannot miss an attach or detach.
                    let mut notified = Box::pin(changed.notified());
                    notified.as_mut().enable();
                    (notified, deadline)
                };
                match deadline {
                    Some(at) => {
                        tokio::select! {
                            () = notified => {}
                            () = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => notified.await,
                }
            }
        }
        .boxed()
    }
}

impl Drop for MemoryWriter {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let Ok(log) = log_of(&mut st, &self.key, self.generation) else {
            return;
        };
        if log.done {
            return;
        }
        log.done = true;
        log.changed.notify_waiters();
        let id = log.last_id() + 1;
        let message = "the search stopped before it could end its stream";
        let body = super::error_frame(&self.key, message, INTERRUPTED_CODE);
        st.push(&self.key, id, Bytes::from(body));
        st.ended
            .push_back((Instant::now(), Arc::clone(&self.key), self.generation));
        drop(st);
        self.shared.space.notify_waiters();
    }
}

/// `code` of the `error` ending a log whose writer vanished without ending it.
pub const INTERRUPTED_CODE: &str = "interrupted";

#[derive(Debug)]
struct MemoryReader {
    shared: Arc<Shared>,
    key: Arc<str>,
    generation: u64,
    token: u64,
    /// The last id handed out.
    cursor: u64,
}

impl LogReader for MemoryReader {
    fn next(&mut self) -> BoxFuture<'_, Result<Entry, ReplayError>> {
        async move {
            loop {
                let changed: Arc<Notify>;
                let notified = {
                    let mut st = self.shared.lock_purged();
                    let log = log_of(&mut st, &self.key, self.generation)?;
                    if log.reader.is_none_or(|(token, _)| token != self.token) {
                        return Err(ReplayError::Superseded);
                    }
                    if self.cursor < log.trimmed_through {
                        return Err(ReplayError::Expired);
                    }
                    let next = log.frames.partition_point(|(id, _)| *id <= self.cursor);
                    if let Some((id, body)) = log.frames.get(next).cloned() {
                        self.cursor = id;
                        log.reader = Some((self.token, id));
                        drop(st);
                        // Frames it passed may be trimmed now: room for a waiting writer.
                        self.shared.space.notify_waiters();
                        return Ok(Entry::Frame { id, body });
                    }
                    if log.done {
                        return Ok(Entry::Done);
                    }
                    changed = Arc::clone(&log.changed);
                    // Notifications are sent under the lock: enabled before it is let
                    // go, this wait cannot miss a frame.
                    let mut notified = Box::pin(changed.notified());
                    notified.as_mut().enable();
                    notified
                };
                notified.await;
            }
        }
        .boxed()
    }
}

impl Drop for MemoryReader {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        if let Ok(log) = log_of(&mut st, &self.key, self.generation) {
            if log.reader.is_some_and(|(t, _)| t == self.token) {
                log.reader = None;
                log.detached_since = Instant::now();
                log.changed.notify_waiters();
            }
        }
    }
}
