//! [`RedisStore`] (feature `redis`): replay logs in Redis Streams, shared by every
//! instance behind a load balancer, so a client can resume on another instance while
//! the search goes on where it started.
//!
//! Per `request_id`, two keys:
//! - `deepsearch:log:{id}`, a stream: frame `n` is the entry `n-0` (field `b`: its
//!   bytes after the `id:` line), the end of the log is `last-1` (after the last frame,
//!   before any later one), so a reader reads after frame `n` with `XRANGE (n-0` or
//!   `XREAD ... n-0` and tells a gap (trimmed frames) from the next frame by its id;
//! - `deepsearch:meta:{id}`, a hash: `gen` (bumped by each new search of the id: older
//!   writers and readers find they were replaced), `reader` (bumped by each attach on
//!   any instance: older readers find they were superseded), `wbeat`/`rbeat` (the
//!   writer's and the last remote reader's heartbeats, Redis server time in ms, so
//!   instances' clocks do not matter), `bytes` (the log's size), `done`, `broken`,
//!   `writer` (a nonce of the search that created it).
//!
//! Every change is one Lua script, so a check and its write are atomic. Both keys expire:
//! `ttl` after the end, and while live a generous expiry refreshed by the writer's
//! heartbeat, so the log of a crashed instance goes away too.
//!
//! The instance running a search also keeps the log in a local [`MemoryStore`] (a tee):
//! its own client reads from memory and never waits on Redis. A Redis failure while
//! writing is logged once per stream and counted (`deepsearch_replay_store_errors_total`);
//! the stream goes on, the Redis copy is marked broken (once Redis is back) and stops
//! there, and a resume on another instance gets `resume_unavailable`. A search that
//! starts while Redis is away gets a broken log of its own once Redis is back, so a
//! resume elsewhere is not served an older search's log of the same id.
//!
//! The local copy waits for room like any memory log while its reader lags; with no
//! reader here (the client reads elsewhere, or is away) it is dropped instead and the log
//! lives in Redis alone, so a search never waits on a copy nobody reads.
//!
//! A reader on another instance tails the stream with `XREAD BLOCK` (one connection of
//! its own, blocks of [`BLOCK`]); when it has caught up and the writer's heartbeat is
//! older than [`STALE`] (its instance died), it ends with `interrupted` and `[DONE]`.
//!
//! Takeover works across instances: every attach bumps `reader`; a remote reader checks
//! it at each read (at least every [`BLOCK`]), a reader of the local copy every
//! [`BLOCK`] (a Redis that fails then does not end it). The linger counts a reader
//! elsewhere as attached while its last read is younger than the linger and [`STALE`].
//!
//! Budgets: one log holds at most `max_log_bytes` (its oldest frames are deleted to make
//! room, whether read or not; a resume from before them gets `expired`). The total of
//! all logs is bounded by their expiry and Redis's own `maxmemory`, not by
//! `max_bytes`, which bounds only the local copies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{AsyncConnectionConfig, Client, Script, Value};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::memory::{MemoryWriter, INTERRUPTED_CODE};
use super::{LogReader, LogWriter, MemoryStore, ReplayConfig, ReplayError, ReplayStore};
use crate::metrics;

mod reader;
mod scripts;
mod writer;

use writer::{heartbeat, mark_broken_when_back, TeeWriter, WriterState};

use reader::{int, refusal, text, LocalReader, RedisReader};
use scripts::Scripts;

/// Longest wait for Redis when a service starts (`--redis`, `redis_url`): past it, the
/// service does not start.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for one Redis command on the live path: past it, Redis counts as gone.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a writer refreshes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// A writer whose heartbeat is older than this is taken for dead.
pub const STALE: Duration = Duration::from_secs(5);
/// Longest `XREAD BLOCK` of a reader (it rechecks takeover and liveness between blocks).
pub const BLOCK: Duration = Duration::from_secs(1);
/// How long an append waits for room in the local copy before checking whether anyone
/// reads it.
const DEMOTE_AFTER: Duration = Duration::from_millis(50);
/// How many times, a [`HEARTBEAT`] apart, a writer tries to mark its log broken in Redis
/// before giving up (Redis may never come back).
const MARK_BROKEN_TRIES: u32 = 60;
/// Entries a reader fetches at once.
const BATCH: usize = 64;

/// Why a Redis store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisStoreError {
    #[error("invalid Redis URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach Redis at {url}: {reason}")]
    Unreachable { url: String, reason: String },
}

/// The URL without its credentials, for messages: the user-info (`user:pw@`) and any
/// `pass` or `password` query parameter, however malformed the rest is.
fn shown(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let mut out = match base.rsplit_once('@') {
        Some((before, host)) => match before.find("://") {
            Some(i) => format!("{}***@{host}", &before[..i + 3]),
            None => format!("***@{host}"),
        },
        None => base.to_string(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| {
                let key = param.split_once('=').map_or(param, |(k, _)| k);
                if ["pass", "password"].contains(&key.to_ascii_lowercase().as_str()) {
                    format!("{key}=***")
                } else {
                    param.to_string()
                }
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

fn unavailable(e: impl std::fmt::Display) -> ReplayError {
    ReplayError::Unavailable(format!("the replay store (Redis) failed: {e}"))
}

#[derive(Debug)]
struct Inner {
    client: Client,
    conn: ConnectionManager,
    config: ReplayConfig,
    local: MemoryStore,
    scripts: Scripts,
}

/// Replay logs in Redis Streams (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

fn keys(request_id: &str) -> [String; 2] {
    [
        format!("deepsearch:log:{request_id}"),
        format!("deepsearch:meta:{request_id}"),
    ]
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

async fn timed<T>(
    f: impl std::future::Future<Output = ::redis::RedisResult<T>>,
    limit: Duration,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} ms", limit.as_millis())),
    }
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) and checks that Redis answers, within
    /// `connect_timeout`. Must be called on a tokio runtime.
    pub async fn connect(
        url: &str,
        config: ReplayConfig,
        connect_timeout: Duration,
    ) -> Result<Self, RedisStoreError> {
        let client = Client::open(url).map_err(|e| RedisStoreError::InvalidUrl {
            url: shown(url),
            reason: e.to_string(),
        })?;
        let unreachable = |reason: String| RedisStoreError::Unreachable {
            url: shown(url),
            reason,
        };
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(OP_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(2));
        let mut conn = timed(
            client.get_connection_manager_with_config(manager),
            connect_timeout,
        )
        .await
        .map_err(unreachable)?;
        let pong: String = timed(::redis::cmd("PING").query_async(&mut conn), connect_timeout)
            .await
            .map_err(unreachable)?;
        if pong != "PONG" {
            return Err(unreachable(format!("PING answered {pong:?}")));
        }
        Ok(RedisStore {
            inner: Arc::new(Inner {
                client,
                conn,
                local: MemoryStore::new(config.clone()),
                config,
                scripts: Scripts::new(),
            }),
        })
    }
}

impl Inner {
    /// How long a live log is kept without a heartbeat (its writer died).
    fn live_expiry(&self) -> u64 {
        ms(self.config.ttl + self.config.linger + Duration::from_secs(60))
    }

    async fn run<T: ::redis::FromRedisValue>(
        &self,
        script: &Script,
        request_id: &str,
        args: &[&[u8]],
    ) -> Result<T, String> {
        let [log, meta] = keys(request_id);
        let mut invocation = script.key(log);
        invocation.key(meta);
        for a in args {
            invocation.arg(*a);
        }
        let mut conn = self.conn.clone();
        timed(invocation.invoke_async(&mut conn), OP_TIMEOUT).await
    }
}

/// The store-wide error count and a warning, once per stream.
fn store_failed(request_id: &str, what: &str, error: &str) {
    metrics::global().replay_store_error();
    tracing::warn!(
        request_id,
        error,
        "replay store (Redis) failed while {what}; the stream goes on, resuming it on \
         another instance is unavailable"
    );
}

impl ReplayStore for RedisStore {
    fn create<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn LogWriter>, ReplayError>> {
        async move {
            let local = self.inner.local.create_writer(request_id);
            let live = self.inner.live_expiry().to_string();
            let nonce = uuid::Uuid::new_v4().simple().to_string();
            let args = [live.as_bytes(), nonce.as_bytes()];
            let gen: Result<u64, String> = self
                .inner
                .run::<i64>(&self.inner.scripts.create, request_id, &args)
                .await
                // Its -1 answers a call this writer gave up on, never this one.
                .and_then(|gen| u64::try_from(gen).map_err(|_| format!("create answered {gen}")));
            let state = Arc::new(WriterState {
                broken: AtomicBool::new(false),
                last: AtomicU64::new(0),
            });
            let gen = match gen {
                Ok(gen) => Some(gen),
                Err(e) => {
                    store_failed(request_id, "creating a log", &e);
                    state.broken.store(true, Ordering::Release);
                    // Not aborted with the writer: the mark matters after the search too.
                    tokio::spawn(mark_broken_when_back(
                        Arc::clone(&self.inner),
                        request_id.to_string(),
                        nonce,
                    ));
                    None
                }
            };
            let heartbeat = gen.map(|gen| {
                let inner = Arc::clone(&self.inner);
                let state = Arc::clone(&state);
                let id = request_id.to_string();
                tokio::spawn(heartbeat(inner, id, gen, state))
            });
            Ok(Box::new(TeeWriter {
                inner: Arc::clone(&self.inner),
                request_id: request_id.into(),
                local: Some(local),
                gen: gen.unwrap_or(0),
                state,
                heartbeat,
                finished: AtomicBool::new(false),
                demoted: AtomicBool::new(false),
            }) as Box<dyn LogWriter>)
        }
        .boxed()
    }

    fn attach<'a>(
        &'a self,
        request_id: &'a str,
        after: u64,
    ) -> BoxFuture<'a, Result<Box<dyn LogReader>, ReplayError>> {
        async move {
            match self.inner.local.attach(request_id, after).await {
                Ok(local) => {
                    // This instance runs (or ran) the search: read the local copy, and
                    // take over from a reader on another instance.
                    let took: Result<Vec<u64>, String> = self
                        .inner
                        .run(&self.inner.scripts.take, request_id, &[])
                        .await;
                    let watch = match took.as_deref() {
                        Ok([gen, token]) => Some((*gen, *token)),
                        _ => None,
                    };
                    return Ok(Box::new(LocalReader {
                        inner: Arc::clone(&self.inner),
                        request_id: request_id.into(),
                        local,
                        watch,
                        next_check: Instant::now() + BLOCK,
                    }) as Box<dyn LogReader>);
                }
                Err(ReplayError::Expired) => {}
                Err(e) => return Err(e),
            }
            let next = format!("{}-0", after.saturating_add(1));
            let end = format!("{after}-1");
            let from = format!("({after}-0");
            let number = after.to_string();
            let args = [
                next.as_bytes(),
                end.as_bytes(),
                from.as_bytes(),
                number.as_bytes(),
            ];
            let answer: Vec<Value> = self
                .inner
                .run(&self.inner.scripts.attach, request_id, &args)
                .await
                .map_err(unavailable)?;
            let (gen, token) = match answer.as_slice() {
                [why, last] if text(why) == Some(b"unsent") => {
                    let last = int(last)?;
                    return Err(ReplayError::Unsent { after, last });
                }
                [_, gen, token] => (int(gen)?, int(token)?),
                [why] => return Err(refusal(why)),
                _ => return Err(unavailable("unexpected answer to attach")),
            };
            // XREAD BLOCK holds its connection: each remote reader has one of its own.
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(OP_TIMEOUT))
                .set_response_timeout(Some(BLOCK + OP_TIMEOUT));
            let blocking = timed(
                self.inner
                    .client
                    .get_multiplexed_async_connection_with_config(&config),
                OP_TIMEOUT * 2,
            )
            .await
            .map_err(unavailable)?;
            Ok(Box::new(RedisReader {
                inner: Arc::clone(&self.inner),
                request_id: request_id.into(),
                blocking,
                gen,
                token,
                cursor: after,
                ready: VecDeque::new(),
                ended: false,
            }) as Box<dyn LogReader>)
        }
        .boxed()
    }

    fn config(&self) -> &ReplayConfig {
        &self.inner.config
    }
}
