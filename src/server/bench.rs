//! The bench-only routes of `bench/CONTRACT.md` (`--bench-routes`, off by default):
//! `POST /bench/stream`, `POST /bench/idle`, `GET /bench/producer?id=`.
//!
//! The registry keeps small records only — never a stream or a response — so a stream
//! whose client left but which nobody closed still shows up as a producer that did not
//! stop, which is what the cancellation measurement looks for.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};

use super::routes::stream_response;
use super::App;
use crate::api::{new_request_id, valid_request_id, ApiError, ErrorCode};
use crate::stream::{EventStream, Failure};

/// Producers remembered for `/bench/producer`.
const KEPT: usize = 4096;

#[derive(Debug, Default)]
struct Record {
    sent: AtomicU64,
    stopped: AtomicBool,
    stopped_at_ns: AtomicU64,
    /// 0 running, 1 done, 2 cancelled, 3 error.
    reason: AtomicU8,
}

/// Records by id, and ids oldest first (for forgetting beyond [`KEPT`]).
type Registry = (HashMap<String, Arc<Record>>, VecDeque<String>);

/// The producers of `/bench/stream`, by id.
#[derive(Debug, Default)]
pub struct Producers {
    inner: Mutex<Registry>,
}

impl Producers {
    fn add(&self, id: &str) -> Arc<Record> {
        let record = Arc::new(Record::default());
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *guard;
        if map.insert(id.to_string(), Arc::clone(&record)).is_none() {
            order.push_back(id.to_string());
        }
        while order.len() > KEPT {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        record
    }

    fn get(&self, id: &str) -> Option<Arc<Record>> {
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.get(id).cloned()
    }
}

/// Marks its record stopped when dropped: the loop ended, or the task was aborted.
struct StopGuard(Arc<Record>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        self.0.stopped_at_ns.store(ns, Ordering::Release);
        // Aborted while running: the client left.
        let _ = self
            .0
            .reason
            .compare_exchange(0, 2, Ordering::AcqRel, Ordering::Acquire);
        self.0.stopped.store(true, Ordering::Release);
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamBody {
    id: Option<String>,
    count: Option<u64>,
    #[serde(default = "default_payload")]
    payload_bytes: usize,
    #[serde(default)]
    interval_ms: f64,
}

fn default_payload() -> usize {
    200
}

#[derive(Serialize)]
struct Payload<'a> {
    seq: u64,
    text: &'a str,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(400, ErrorCode::InvalidRequest, None, message)
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes, empty: T) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(empty);
    }
    serde_json::from_slice(body).map_err(|e| bad(format!("bad bench body: {e}")))
}

fn checked_id(id: Option<String>) -> Result<String, ApiError> {
    match id {
        None => Ok(new_request_id()),
        Some(id) if valid_request_id(&id) => Ok(id),
        Some(_) => Err(bad(
            "id must be 1 to 128 characters from A-Z a-z 0-9 . _ : -",
        )),
    }
}

async fn stream(State(app): State<App>, body: Bytes) -> Response {
    let empty = StreamBody {
        id: None,
        count: None,
        payload_bytes: 200,
        interval_ms: 0.0,
    };
    let req = match parse(&body, empty) {
        Ok(r) => r,
        Err(e) => return super::routes::error_response(&e),
    };
    if req.payload_bytes > 1 << 20 || !(req.interval_ms.is_finite() && req.interval_ms >= 0.0) {
        return super::routes::error_response(&bad(
            "payload_bytes must be 0 to 1048576 and interval_ms a number >= 0",
        ));
    }
    let id = match checked_id(req.id) {
        Ok(id) => id,
        Err(e) => return super::routes::error_response(&e),
    };
    let record = app.bench_producers().add(&id);
    let text = "x".repeat(req.payload_bytes);
    let interval = Duration::from_secs_f64(req.interval_ms / 1000.0);
    let count = req.count;
    let spawned = EventStream::spawn(&id, app.service().stream_config().clone(), move |tx| {
        let guard = StopGuard(record);
        async move {
            let mut seq = 0u64;
            while count.is_none_or(|c| seq < c) {
                if tx
                    .send("bench", &Payload { seq, text: &text })
                    .await
                    .is_err()
                {
                    guard.0.reason.store(2, Ordering::Release);
                    return Ok(());
                }
                seq += 1;
                guard.0.sent.store(seq, Ordering::Release);
                if !interval.is_zero() {
                    tokio::time::sleep(interval).await;
                }
            }
            guard.0.reason.store(1, Ordering::Release);
            Ok::<(), Failure>(())
        }
    });
    match spawned {
        Ok(stream) => stream_response(stream),
        Err(e) => super::routes::error_response(&ApiError::internal(e)),
    }
}

async fn idle(State(app): State<App>, body: Bytes) -> Response {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct IdleBody {
        id: Option<String>,
    }
    let req = match parse(&body, IdleBody { id: None }) {
        Ok(r) => r,
        Err(e) => return super::routes::error_response(&e),
    };
    let id = match checked_id(req.id) {
        Ok(id) => id,
        Err(e) => return super::routes::error_response(&e),
    };
    match EventStream::new(&id, app.service().stream_config().clone()) {
        Ok((tx, stream)) => {
            // The sender lives as long as the stream: no message, heartbeats only.
            stream.on_close_cancel(move || drop(tx));
            stream_response(stream)
        }
        Err(e) => super::routes::error_response(&ApiError::internal(e)),
    }
}

#[derive(Deserialize)]
struct ProducerQuery {
    id: String,
}

#[derive(Serialize)]
struct ProducerState<'a> {
    id: &'a str,
    sent: u64,
    stopped: bool,
    stopped_at_ns: Option<u64>,
    reason: Option<&'static str>,
}

async fn producer(State(app): State<App>, Query(q): Query<ProducerQuery>) -> Response {
    let Some(record) = app.bench_producers().get(&q.id) else {
        return super::routes::error_response(&ApiError::new(
            404,
            ErrorCode::NotFound,
            None,
            format!("no bench producer {:?}", q.id),
        ));
    };
    let stopped = record.stopped.load(Ordering::Acquire);
    let state = ProducerState {
        id: &q.id,
        sent: record.sent.load(Ordering::Acquire),
        stopped,
        stopped_at_ns: stopped.then(|| record.stopped_at_ns.load(Ordering::Acquire)),
        reason: match (stopped, record.reason.load(Ordering::Acquire)) {
            (false, _) => None,
            (true, 1) => Some("done"),
            (true, 2) => Some("cancelled"),
            (true, 3) => Some("error"),
            (true, _) => Some("stopped"),
        },
    };
    let body = serde_json::to_vec(&state).unwrap_or_default();
    let mut res = Response::new(body.into());
    res.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(crate::api::JSON_CONTENT_TYPE),
    );
    res
}

/// The bench routes, for [`App::router`] when `--bench-routes` is on.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/bench/stream", post(stream))
        .route("/bench/idle", post(idle))
        .route("/bench/producer", get(producer))
}
