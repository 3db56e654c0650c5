//! A request in, a stream (or a JSON reply) out: the part of serving that does not
//! depend on the HTTP framework.

use std::sync::Arc;
use std::time::Instant;

use super::admission::{count_refusal, Admission, StreamPermit};
use super::genie::GenieFormat;
use super::query::{last_event_id, query_to_body};
use super::resume::{self, replay_config};
use super::{
    parse_request, ApiError, ErrorCode, GenieSink, Limits, OpenStreams, Route, SearchRequest,
};
use crate::deepsearch::{DeepSearch, Filter, Message};
use crate::metrics;
use crate::proxy::{self, ProxyOptions};
use crate::replay::{MemoryStore, ReplayConfig, ReplayStore};
use crate::stream::{EventStream, Failure, StreamConfig};

/// What a request is answered with.
#[derive(Debug)]
pub enum Reply {
    /// 200 with the SSE headers and this stream as the body.
    Stream(EventStream),
    /// A JSON body with this status.
    Json { status: u16, body: Vec<u8> },
}

/// The search service behind both servers.
#[derive(Debug, Clone)]
pub struct Service {
    deepsearch: Arc<DeepSearch>,
    /// Names of the engines `search_engines` may pick from.
    engines: Arc<[String]>,
    limits: Limits,
    stream_config: StreamConfig,
    admission: Admission,
    streams: Arc<OpenStreams>,
    /// Base URL of a deepsearch service every search is relayed to, instead of run here.
    upstream: Option<String>,
    /// Where streams are logged for resuming.
    replay: Arc<dyn ReplayStore>,
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
        // Fixed with the service: worked out once, not on every request.
        let engines = deepsearch
            .engine_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        Service {
            deepsearch,
            engines,
            admission: Admission::new(limits.max_streams),
            limits,
            stream_config,
            streams: OpenStreams::new(),
            upstream: None,
            replay: Arc::new(MemoryStore::new(ReplayConfig::default())),
        }
    }

    /// Logs streams in `store` (default: in memory, [`ReplayConfig::default`]).
    pub fn with_replay(mut self, store: Arc<dyn ReplayStore>) -> Self {
        self.replay = store;
        self
    }

    /// The replay store streams are logged in.
    pub fn replay(&self) -> &Arc<dyn ReplayStore> {
        &self.replay
    }

    /// Relays every search to the deepsearch service at `base_url` (its route of the
    /// same name), as the seed's streaming proxy does: the upstream's events go out
    /// through this service's own streams, heartbeats and limits, and an upstream that
    /// fails, refuses or breaks off becomes an `error` message and `[DONE]`.
    pub fn with_upstream(mut self, base_url: &str) -> Result<Self, ApiError> {
        let url = reqwest::Url::parse(base_url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| {
                ApiError::new(
                    500,
                    ErrorCode::InvalidSetting,
                    Some("upstream"),
                    format!("upstream must be an http(s) URL, got {base_url:?}"),
                )
            })?;
        self.upstream = Some(url.as_str().trim_end_matches('/').to_string());
        Ok(self)
    }

    /// The upstream URL searches are relayed to, when one is set.
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    pub fn deepsearch(&self) -> &Arc<DeepSearch> {
        &self.deepsearch
    }

    /// Heartbeat, timeout and buffer limits of every stream this service opens.
    pub fn stream_config(&self) -> &StreamConfig {
        &self.stream_config
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Searches in progress now.
    pub fn open_streams(&self) -> usize {
        self.admission.open()
    }

    /// Checks a request body for `route`.
    pub fn parse(
        &self,
        route: Route,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<SearchRequest, ApiError> {
        let ceiling = &self.deepsearch.settings().budget;
        let result = parse_request(route, content_type, body, &self.limits, &self.engines)
            .and_then(|req| {
                req.search
                    .budget
                    .check_within(ceiling)
                    .map_err(ApiError::from)?;
                Ok(req)
            });
        if let Err(e) = &result {
            count_refusal(route, e.status);
        }
        result
    }

    /// Checks the query string of `GET /deepsearch?query=...`: the same fields as the
    /// POST body, through the same parser.
    pub fn parse_query(&self, route: Route, query: &str) -> Result<SearchRequest, ApiError> {
        let body = query_to_body(query);
        self.parse(route, Some(super::JSON_CONTENT_TYPE), &body)
    }

    /// Marks `req` as a resume when the client sent `Last-Event-ID` (the header, else the
    /// `last_event_id` query parameter); refuses a bad value with 400.
    pub fn with_resume(
        &self,
        route: Route,
        mut req: SearchRequest,
        header: Option<&str>,
        query: Option<&str>,
    ) -> Result<SearchRequest, ApiError> {
        match last_event_id(header, query) {
            Ok(after) => {
                req.resume = after;
                Ok(req)
            }
            Err(e) => {
                count_refusal(route, e.status);
                Err(e)
            }
        }
    }

    /// Takes a slot of the concurrency limit, or refuses with 503 and `Retry-After`.
    pub fn admit(&self, route: Route) -> Result<StreamPermit, ApiError> {
        self.admission
            .admit(route)
            .inspect_err(|e| count_refusal(route, e.status))
    }

    /// Starts the search `req` asked for: a stream when `req.stream`, else it runs to the
    /// end and the reply is the result as JSON. Must be called on a tokio runtime.
    ///
    /// A streamed search is logged for resuming; a request with a resume point (see
    /// [`with_resume`](Self::with_resume)) starts nothing and reads the log of its
    /// `request_id` instead, ignoring the other fields.
    pub async fn start(&self, route: Route, req: SearchRequest) -> Result<Reply, ApiError> {
        if let (true, Some(after)) = (req.stream, req.resume) {
            return self.resume(route, &req.request_id, after).await;
        }
        let mut permit = self.admit(route)?;
        if let Some(base) = &self.upstream {
            let url = format!("{base}{}", route.path());
            if !req.stream {
                return relay_json(&url, req.body).await.inspect_err(|e| {
                    permit.set_status(e.status);
                });
            }
            let stream = proxy::spawn(
                &req.request_id,
                &url,
                req.body.clone(),
                ProxyOptions::default(),
                self.stream_config.clone(),
            )
            .map_err(ApiError::internal)?;
            return self.serve(stream, permit, &req.request_id).await;
        }
        let deepsearch = Arc::new(self.deepsearch.with_engines(&req.engines)?);
        if !req.stream {
            return match self.run_to_end(route, &deepsearch, &req).await {
                Ok(body) => Ok(Reply::Json { status: 200, body }),
                Err(e) => {
                    permit.set_status(e.status);
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
                .map_err(ApiError::internal)?
            }
        };
        self.serve(stream, permit, &req.request_id).await
    }

    /// Logs `search` for resuming (the recorder holds `permit` until the search ends) and
    /// answers with a stream reading the log from its start.
    async fn serve(
        &self,
        search: EventStream,
        permit: StreamPermit,
        request_id: &str,
    ) -> Result<Reply, ApiError> {
        let internal = |e: crate::replay::ReplayError| {
            ApiError::new(500, ErrorCode::ReplayStore, None, e.to_string())
        };
        // Once shutdown has begun this ends the new search at once, with `shutdown`.
        self.streams.track(&search);
        let writer = self.replay.create(request_id).await.map_err(internal)?;
        // Attached before the recorder starts, so its linger cannot begin unattended.
        let reader = self.replay.attach(request_id, 0).await.map_err(internal)?;
        let (recording, id) = (self.streams.recording(), request_id.into());
        tokio::spawn(async move {
            resume::record(search, writer, id, permit).await;
            drop(recording);
        });
        let stream = resume::replay(request_id, replay_config(&self.stream_config), reader)?;
        Ok(self.count(stream))
    }

    /// A client back with `Last-Event-ID`: the frames after `after`, then the live rest;
    /// `error` (code `expired`) and `[DONE]` when the log is gone or no longer has them.
    async fn resume(&self, route: Route, request_id: &str, after: u64) -> Result<Reply, ApiError> {
        let config = replay_config(&self.stream_config);
        let stream = match self.replay.attach(request_id, after).await {
            Ok(reader) => {
                metrics::global().resume("resumed");
                resume::replay(request_id, config, reader)?
            }
            Err(e) => {
                metrics::global().resume(e.code());
                resume::refused(request_id, config, &e)?
            }
        };
        let started = Instant::now();
        stream.on_close_cancel(move || {
            metrics::global().request(route.path(), 200, started.elapsed());
        });
        Ok(self.count(stream))
    }

    /// Counts a connection's stream in the metrics until it ends.
    fn count(&self, stream: EventStream) -> Reply {
        let registry = metrics::global();
        registry.stream_opened();
        let handle = stream.close_handle();
        stream.on_close_cancel(move || registry.stream_closed(&handle.stats()));
        Reply::Stream(stream)
    }

    /// The streams being served, for a server shutting down
    /// ([`OpenStreams::begin_shutdown`]).
    pub fn streams(&self) -> &Arc<OpenStreams> {
        &self.streams
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

/// Relays a non-streaming search: the upstream's status and JSON body, or 502 when it
/// cannot be reached or does not answer JSON.
async fn relay_json(url: &str, body: bytes::Bytes) -> Result<Reply, ApiError> {
    let unreachable =
        |message: String| ApiError::new(502, ErrorCode::UpstreamUnreachable, None, message);
    let client = crate::http::shared_client().map_err(|e| unreachable(e.to_string()))?;
    let response = client
        .post(url)
        .header("content-type", super::JSON_CONTENT_TYPE)
        .body(body)
        .send()
        .await
        .map_err(|e| unreachable(format!("upstream request failed: {}", e.without_url())))?;
    let status = response.status().as_u16();
    let is_json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(super::JSON_CONTENT_TYPE));
    let body = response
        .bytes()
        .await
        .map_err(|e| unreachable(format!("upstream answer broke off: {}", e.without_url())))?;
    if !is_json {
        return Err(ApiError::new(
            502,
            ErrorCode::UpstreamProtocol,
            None,
            format!("upstream answered HTTP {status} without JSON"),
        ));
    }
    Ok(Reply::Json {
        status,
        body: body.to_vec(),
    })
}
