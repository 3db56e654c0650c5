//! The writer of a log in Redis: it appends to the local copy and to Redis (a tee), keeps
//! the log's lease alive, and marks the log broken when Redis failed under it.

use super::*;

#[derive(Debug)]
pub(super) struct WriterState {
    /// Redis failed for this log: it is no longer written there.
    pub(super) broken: AtomicBool,
    /// The last frame id written.
    pub(super) last: AtomicU64,
}

/// Refreshes the writer's heartbeat and the keys' live expiry until aborted; once the
/// log is broken, marks it so in Redis (when Redis answers again) and stops.
pub(super) async fn heartbeat(
    inner: Arc<Inner>,
    request_id: String,
    gen: u64,
    state: Arc<WriterState>,
) {
    let live = inner.live_expiry().to_string();
    let gen = gen.to_string();
    // Once broken, it tries to say so for a bounded time: Redis may never come back.
    let mut tries_left = MARK_BROKEN_TRIES;
    loop {
        let broken = state.broken.load(Ordering::Acquire);
        if broken {
            if tries_left == 0 {
                return;
            }
            tries_left -= 1;
        }
        let flag: &[u8] = if broken { b"1" } else { b"0" };
        let args = [gen.as_bytes(), live.as_bytes(), flag];
        let beat: Result<i64, String> = inner.run(&inner.scripts.beat, &request_id, &args).await;
        match beat {
            Ok(1) if !broken => {}
            // Marked broken, replaced or ended: nothing more to do.
            Ok(_) => return,
            Err(_) => {}
        }
        tokio::time::sleep(HEARTBEAT).await;
    }
}

/// For a log that could not be created: tries, for a bounded time (Redis may never come
/// back), to leave a broken log of this search in its place.
pub(super) async fn mark_broken_when_back(inner: Arc<Inner>, request_id: String, nonce: String) {
    let live = inner.live_expiry().to_string();
    let stale = ms(STALE).to_string();
    for _ in 0..MARK_BROKEN_TRIES {
        tokio::time::sleep(HEARTBEAT).await;
        let args = [live.as_bytes(), nonce.as_bytes(), stale.as_bytes()];
        let marked: Result<i64, String> = inner
            .run(&inner.scripts.create_broken, &request_id, &args)
            .await;
        if marked.is_ok() {
            return;
        }
    }
}

/// Writes to the local copy, then to Redis (unless Redis failed for this log).
#[derive(Debug)]
pub(super) struct TeeWriter {
    pub(super) inner: Arc<Inner>,
    pub(super) request_id: Arc<str>,
    /// Always `Some` but in `drop`. The concrete type, which is `Sync` (the futures
    /// of `LogWriter` hold `&self` and must be `Send`).
    pub(super) local: Option<MemoryWriter>,
    pub(super) gen: u64,
    pub(super) state: Arc<WriterState>,
    pub(super) heartbeat: Option<JoinHandle<()>>,
    pub(super) finished: AtomicBool,
    /// The local copy was dropped: the log lives in Redis alone.
    pub(super) demoted: AtomicBool,
}

impl TeeWriter {
    fn local(&self) -> &MemoryWriter {
        // Taken only in `drop`.
        self.local.as_ref().expect("local writer")
    }

    fn broken(&self) -> bool {
        self.state.broken.load(Ordering::Acquire)
    }

    /// Appends to the local copy. That waits while the copy is at its budget and its
    /// reader lags (backpressure, as in memory); but with no reader here (the client
    /// reads on another instance, or is away) and Redis healthy, the local copy is
    /// dropped instead and the log lives in Redis alone, so the search never waits on
    /// a copy nobody reads.
    async fn append_local(&self, id: u64, body: &Bytes) -> Result<(), ReplayError> {
        if self.demoted.load(Ordering::Acquire) {
            return Ok(());
        }
        let append = self.local().append(id, body.clone());
        tokio::pin!(append);
        loop {
            tokio::select! {
                appended = &mut append => return appended,
                () = tokio::time::sleep(DEMOTE_AFTER), if !self.broken() => {
                    if !self.inner.local.has_reader(&self.request_id) {
                        self.demoted.store(true, Ordering::Release);
                        self.inner.local.forget(&self.request_id);
                        return Ok(());
                    }
                }
            }
        }
    }

    fn fail(&self, what: &str, error: &str) {
        if !self.state.broken.swap(true, Ordering::AcqRel) {
            store_failed(&self.request_id, what, error);
        }
    }
}

impl LogWriter for TeeWriter {
    fn append(&self, id: u64, body: Bytes) -> BoxFuture<'_, Result<(), ReplayError>> {
        async move {
            self.append_local(id, &body).await?;
            self.state.last.store(id, Ordering::Release);
            if self.broken() {
                return Ok(());
            }
            let (gen, id, max) = (
                self.gen.to_string(),
                id.to_string(),
                self.inner.config.max_log_bytes.to_string(),
            );
            let live = self.inner.live_expiry().to_string();
            let args = [
                gen.as_bytes(),
                id.as_bytes(),
                &body[..],
                max.as_bytes(),
                live.as_bytes(),
            ];
            let appended: Result<i64, String> = self
                .inner
                .run(&self.inner.scripts.append, &self.request_id, &args)
                .await;
            match appended {
                Ok(-1) => Err(ReplayError::Replaced),
                Ok(trimmed) => {
                    for _ in 0..trimmed {
                        metrics::global().replay_frame_trimmed();
                    }
                    Ok(())
                }
                Err(e) => {
                    self.fail("appending a frame", &e);
                    Ok(())
                }
            }
        }
        .boxed()
    }

    fn finish(&self, last: Option<(u64, Bytes)>) -> BoxFuture<'_, Result<(), ReplayError>> {
        async move {
            if !self.demoted.load(Ordering::Acquire) {
                self.local().finish(last.clone()).await?;
            }
            self.finished.store(true, Ordering::Release);
            if self.broken() {
                // The heartbeat marks the Redis copy broken, then stops.
                return Ok(());
            }
            if let Some(h) = &self.heartbeat {
                h.abort();
            }
            finish_remote(&self.inner, &self.request_id, self.gen, last)
                .await
                .map_err(|e| {
                    self.fail("ending a log", &e);
                    unavailable(e)
                })
        }
        .boxed()
    }

    fn unattended(&self) -> BoxFuture<'_, ()> {
        async move {
            // A reader elsewhere beats every block or so: it counts as attached while
            // its last beat is younger than the linger, and than STALE (a linger
            // shorter than its beat must not abandon a search it reads).
            let linger = ms(self.inner.config.linger.max(STALE));
            let gen = self.gen.to_string();
            loop {
                self.local().unattended().await;
                if self.broken() {
                    return;
                }
                // No reader here for the linger time: is one reading on another instance?
                let age: Result<i64, String> = self
                    .inner
                    .run(
                        &self.inner.scripts.reader_age,
                        &self.request_id,
                        &[gen.as_bytes()],
                    )
                    .await;
                match age.map(u64::try_from) {
                    Ok(Ok(age)) if age < linger => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    _ => return,
                }
            }
        }
        .boxed()
    }
}

async fn finish_remote(
    inner: &Inner,
    request_id: &str,
    gen: u64,
    last: Option<(u64, Bytes)>,
) -> Result<(), String> {
    let (gen, ttl) = (gen.to_string(), ms(inner.config.ttl).to_string());
    let last_id = last.as_ref().map(|(id, _)| id.to_string());
    let mut args: Vec<&[u8]> = vec![gen.as_bytes(), ttl.as_bytes()];
    if let (Some(id), Some((_, body))) = (&last_id, &last) {
        args.push(id.as_bytes());
        args.push(body);
    }
    inner
        .run::<i64>(&inner.scripts.finish, request_id, &args)
        .await
        .map(drop)
}

impl Drop for TeeWriter {
    fn drop(&mut self) {
        // The local writer ends the local copy with `interrupted` itself.
        drop(self.local.take());
        if self.finished.load(Ordering::Acquire) || self.broken() {
            return;
        }
        if let Some(h) = &self.heartbeat {
            h.abort();
        }
        // Ends the Redis copy the same way, so readers elsewhere need not wait for the
        // heartbeat to go stale.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let inner = Arc::clone(&self.inner);
        let (request_id, gen) = (Arc::clone(&self.request_id), self.gen);
        let id = self.state.last.load(Ordering::Acquire) + 1;
        runtime.spawn(async move {
            let message = "the search stopped before it could end its stream";
            let body = crate::stream::frame::error_frame(&request_id, message, INTERRUPTED_CODE);
            let _ = finish_remote(&inner, &request_id, gen, Some((id, Bytes::from(body)))).await;
        });
    }
}
