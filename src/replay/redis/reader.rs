//! The readers of [`RedisStore`](super::RedisStore): of this instance's own copy, and
//! of another instance's log in Redis.

use std::collections::VecDeque;
use std::sync::Arc;

use ::redis::aio::MultiplexedConnection;
use ::redis::Value;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::time::Instant;

use super::{keys, ms, timed, unavailable, Inner, BATCH, BLOCK, OP_TIMEOUT, STALE};
use crate::replay::memory::INTERRUPTED_CODE;
use crate::replay::{error_frame, Entry, LogReader, ReplayError};

pub(super) fn text(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

pub(super) fn int(v: &Value) -> Result<u64, ReplayError> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => text(other).and_then(|t| std::str::from_utf8(t).ok()?.parse().ok()),
    }
    .ok_or_else(|| unavailable("unexpected value from Redis"))
}

/// The error a script's refusal (`{why}`) stands for.
pub(super) fn refusal(why: &Value) -> ReplayError {
    match text(why) {
        Some(b"expired") => ReplayError::Expired,
        Some(b"replaced") => ReplayError::Replaced,
        Some(b"superseded") => ReplayError::Superseded,
        Some(b"finished") => ReplayError::Finished,
        Some(b"broken") => ReplayError::Unavailable(
            "the instance running this search lost its connection to the replay store \
             (Redis): it cannot be resumed here"
                .into(),
        ),
        _ => unavailable("unexpected answer from Redis"),
    }
}

/// A reader of this instance's own copy; ends with `superseded` (or `replaced`) when a
/// reader attached on another instance (or a new search of the id started there).
#[derive(Debug)]
pub(super) struct LocalReader {
    pub(super) inner: Arc<Inner>,
    pub(super) request_id: Arc<str>,
    pub(super) local: Box<dyn LogReader>,
    /// Redis's generation of the log and this reader's token, when Redis answered.
    pub(super) watch: Option<(u64, u64)>,
    /// When to look at Redis next (a steady stream of frames must not put it off).
    pub(super) next_check: Instant,
}

impl LogReader for LocalReader {
    fn next(&mut self) -> BoxFuture<'_, Result<Entry, ReplayError>> {
        async move {
            let Some((gen, token)) = self.watch else {
                return self.local.next().await;
            };
            loop {
                tokio::select! {
                    // Cancel-safe: a memory reader moves only when it returns an entry.
                    entry = self.local.next() => return entry,
                    () = tokio::time::sleep_until(self.next_check) => {}
                }
                self.next_check = Instant::now() + BLOCK;
                let [_, meta] = keys(&self.request_id);
                let mut conn = self.inner.conn.clone();
                let now: Result<(Option<u64>, Option<u64>), String> = timed(
                    ::redis::cmd("HMGET")
                        .arg(meta)
                        .arg("gen")
                        .arg("reader")
                        .query_async(&mut conn),
                    OP_TIMEOUT,
                )
                .await;
                // A failing Redis does not end a live stream.
                match now {
                    Ok((Some(g), _)) if g != gen => return Err(ReplayError::Replaced),
                    Ok((_, Some(t))) if t != token => return Err(ReplayError::Superseded),
                    _ => {}
                }
            }
        }
        .boxed()
    }
}

/// A reader of another instance's log, tailing it with `XREAD BLOCK`.
#[derive(Debug)]
pub(super) struct RedisReader {
    pub(super) inner: Arc<Inner>,
    pub(super) request_id: Arc<str>,
    pub(super) blocking: MultiplexedConnection,
    pub(super) gen: u64,
    pub(super) token: u64,
    /// The last frame id handed out.
    pub(super) cursor: u64,
    pub(super) ready: VecDeque<Entry>,
    /// `interrupted` was handed out: `Done` follows.
    pub(super) ended: bool,
}

impl RedisReader {
    /// Fetches what follows the cursor into `ready`; false when there is nothing yet.
    async fn fetch(&mut self) -> Result<bool, ReplayError> {
        let (gen, token) = (self.gen.to_string(), self.token.to_string());
        let from = format!("({}-0", self.cursor);
        let (count, stale) = (BATCH.to_string(), ms(STALE).to_string());
        let args = [
            gen.as_bytes(),
            token.as_bytes(),
            from.as_bytes(),
            count.as_bytes(),
            stale.as_bytes(),
        ];
        let answer: Vec<Value> = self
            .inner
            .run(&self.inner.scripts.read, &self.request_id, &args)
            .await
            .map_err(unavailable)?;
        let (stale, done, entries) = match answer.as_slice() {
            [why] => return Err(refusal(why)),
            [_, stale, done, entries @ ..] => (int(stale)? == 1, int(done)? == 1, entries),
            _ => return Err(unavailable("unexpected answer to read")),
        };
        let mut cursor = self.cursor;
        for pair in entries.chunks(2) {
            let [id, body] = pair else { break };
            let id = text(id)
                .and_then(|t| std::str::from_utf8(t).ok())
                .unwrap_or("");
            let (n, seq) = id
                .split_once('-')
                .and_then(|(n, s)| Some((n.parse::<u64>().ok()?, s)))
                .ok_or_else(|| unavailable("unexpected entry id"))?;
            match seq {
                "0" if n == cursor + 1 => {
                    cursor = n;
                    let body = Bytes::copy_from_slice(text(body).unwrap_or_default());
                    self.ready.push_back(Entry::Frame { id: n, body });
                }
                "1" if n == cursor => {
                    self.ready.push_back(Entry::Done);
                    break;
                }
                // Frames after the cursor were deleted for room.
                _ if self.ready.is_empty() => return Err(ReplayError::Expired),
                _ => break,
            }
        }
        if self.ready.is_empty() {
            if done {
                // The client asked from past the log's last frame: nothing more comes.
                self.ready.push_back(Entry::Done);
            } else if stale {
                let message = "the instance running this search stopped before it could end \
                               its stream";
                let body = error_frame(&self.request_id, message, INTERRUPTED_CODE);
                self.ended = true;
                self.ready.push_back(Entry::Frame {
                    id: cursor + 1,
                    body: Bytes::from(body),
                });
            }
        }
        Ok(!self.ready.is_empty())
    }
}

impl LogReader for RedisReader {
    fn next(&mut self) -> BoxFuture<'_, Result<Entry, ReplayError>> {
        async move {
            loop {
                if let Some(entry) = self.ready.pop_front() {
                    if let Entry::Frame { id, .. } = &entry {
                        self.cursor = *id;
                    }
                    return Ok(entry);
                }
                if self.ended {
                    return Ok(Entry::Done);
                }
                if self.fetch().await? {
                    continue;
                }
                // Caught up: wait for the next entry, a block at most, then look again
                // (takeover, replacement and the writer's liveness are checked there).
                let [log, _] = keys(&self.request_id);
                let _: Value = timed(
                    ::redis::cmd("XREAD")
                        .arg("BLOCK")
                        .arg(ms(BLOCK))
                        .arg("COUNT")
                        .arg(1)
                        .arg("STREAMS")
                        .arg(log)
                        .arg(format!("{}-0", self.cursor))
                        .query_async(&mut self.blocking),
                    BLOCK + OP_TIMEOUT,
                )
                .await
                .map_err(unavailable)?;
            }
        }
        .boxed()
    }
}
