//! A request in, a stream (or a JSON reply) out: the part of serving that does not
//! depend on the HTTP framework.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::genie::GenieFormat;
use super::{parse_request, ApiError, GenieSink, Limits, Route, SearchRequest};
use crate::deepsearch::{DeepSearch, Filter, Message};
use crate::metrics;
use crate::stream::{CloseHandle, EventStream, Failure, StreamConfig};

/// What a request is answered with.
#[derive(Debug)]
pub enum Reply {
    /// 200 with the SSE headers and this stream as the body.
    Stream(EventStream),
    /// A JSON body with this status.
    Json { status: u16, body: Vec<u8> },
}

/// One slot of the concurrency limit, and the request's metrics; released (and the
/// metrics recorded) when dropped.
#[derive(Debug)]
pub struct StreamPermit {
    open: Arc<AtomicUsize>,
    route: Route,
    started: Instant,
    status: u16,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        metrics::global().request(self.route.path(), self.status, self.started.elapsed());
    }
}

/// The search service behind both servers.
#[derive(Debug, Clone)]
pub struct Service {
    deepsearch: Arc<DeepSearch>,
    limits: Limits,
    stream_config: StreamConfig,
    open: Arc<AtomicUsize>,
    /// Streams being served, so a shutdown can end each one properly.
    live: Arc<Mutex<HashMap<u64, CloseHandle>>>,
    next_id: Arc<AtomicU64>,
}

impl Service {
    pub fn new(deepsearch: DeepSearch, limits: Limits, stream_config: StreamConfig) -> Self {
        Self::from_shared(Arc::new(deepsearch), limits, stream_config)
    }

    /// A service over a `DeepSearch` shared with other users.
    pub fn from_shared(
        deepsearch: Arc<DeepSearch>,
        limits: Limits,
        stream_config: StreamConfig,
    ) -> Self {
        Service {
            deepsearch,
            limits,
            stream_config,
            open: Arc::new(AtomicUsize::new(0)),
            live: Arc::default(),
            next_id: Arc::default(),
        }
    }

    pub fn deepsearch(&self) -> &Arc<DeepSearch> {
        &self.deepsearch
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Searches in progress now.
    pub fn open_streams(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Checks a request body for `route`.
    pub fn parse(
        &self,
        route: Route,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<SearchRequest, ApiError> {
        let engines: Vec<String> = self
            .deepsearch
            .engine_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let result = parse_request(route, content_type, body, &self.limits, &engines);
        if let Err(e) = &result {
            metrics::global().request(route.path(), e.status, std::time::Duration::ZERO);
        }
        result
    }

    /// Takes a slot of the concurrency limit, or refuses with 503 and `Retry-After`.
    pub fn admit(&self, route: Route) -> Result<StreamPermit, ApiError> {
        let taken = self.open.fetch_add(1, Ordering::AcqRel);
        if taken >= self.limits.max_streams {
            self.open.fetch_sub(1, Ordering::AcqRel);
            let mut e = ApiError::new(
                503,
                "overloaded",
                None,
                format!(
                    "{} searches are in progress, the most this server runs at once; retry shortly",
                    self.limits.max_streams
                ),
            );
            e.retry_after = Some(1);
            metrics::global().request(route.path(), 503, std::time::Duration::ZERO);
            return Err(e);
        }
        Ok(StreamPermit {
            open: Arc::clone(&self.open),
            route,
            started: Instant::now(),
            status: 200,
        })
    }

    /// Starts the search `req` asked for: a stream when `req.stream`, else it runs to the
    /// end and the reply is the result as JSON. Must be called on a tokio runtime.
    pub async fn start(&self, route: Route, req: SearchRequest) -> Result<Reply, ApiError> {
        let mut permit = self.admit(route)?;
        let deepsearch = Arc::new(self.deepsearch.with_engines(&req.engines)?);
        if !req.stream {
            return match self.run_to_end(route, &deepsearch, &req).await {
                Ok(body) => Ok(Reply::Json { status: 200, body }),
                Err(e) => {
                    permit.status = e.status;
                    Err(e)
                }
            };
        }
        let stream = match route {
            Route::DeepSearch => deepsearch.stream(
                &req.request_id,
                req.search.clone(),
                self.stream_config.clone(),
            )?,
            Route::GenieTool => {
                let format = GenieFormat::new(&req.request_id, &req.search.query, true);
                let search = req.search.clone();
                EventStream::spawn(
                    &req.request_id,
                    self.stream_config.clone(),
                    move |tx| async move {
                        let mut sink = GenieSink::new(tx, format);
                        deepsearch
                            .run(&search, &mut sink)
                            .await
                            .map(drop)
                            .map_err(Failure::from)
                    },
                )
                .map_err(|e| ApiError::new(500, "internal", None, e.to_string()))?
            }
        };
        let registry = metrics::global();
        registry.stream_opened();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.live).insert(id, stream.close_handle());
        let live = Arc::clone(&self.live);
        stream.on_close_cancel(move || {
            if let Some(handle) = lock(&live).remove(&id) {
                registry.stream_closed(&handle.stats());
            }
            drop(permit);
        });
        Ok(Reply::Stream(stream))
    }

    /// Ends every open stream with an `error` message (`code`, e.g. `shutdown`) and
    /// `[DONE]`; returns how many were still running.
    pub fn fail_all(&self, message: &str, code: &str) -> usize {
        let handles: Vec<CloseHandle> = lock(&self.live).values().cloned().collect();
        handles
            .iter()
            .filter(|h| h.fail(message, code).is_ok())
            .count()
    }

    async fn run_to_end(
        &self,
        route: Route,
        deepsearch: &DeepSearch,
        req: &SearchRequest,
    ) -> Result<Vec<u8>, ApiError> {
        let mut search = req.search.clone();
        search.mode.filter = Filter::Result;
        let result = deepsearch.search(&search).await?;
        let mut body = Vec::with_capacity(1024);
        match route {
            Route::DeepSearch => {
                let _ = crate::json_compat::to_python_json(&result, &mut body);
            }
            Route::GenieTool => {
                let format = GenieFormat::new(&req.request_id, &req.search.query, false);
                body = format.encode(&Message::Final(result)).unwrap_or_default();
            }
        }
        Ok(body)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
