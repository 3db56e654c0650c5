//! A request in, a stream (or a JSON reply) out: the part of serving that does not
//! depend on the HTTP framework.

use std::sync::Arc;
use std::time::Instant;

use super::admission::{count_refusal, Admission, StreamPermit};
use super::query::{last_event_id, query_to_body};
use super::resume::{self, replay_config};
use super::wire::{self, Disconnect, Format};
use super::{parse_request, ApiError, ErrorCode, Limits, OpenStreams, Route, SearchRequest};
use crate::deepsearch::{DeepSearch, Filter};
use crate::metrics;
use crate::proxy::{self, ProxyOptions};
use crate::replay::{MemoryStore, ReplayConfig, ReplayStore};
use crate::stream::{EventStream, StreamConfig};

/// The chats (AI SDK chat ids) whose search is running here, each with how many
/// searches of it run (a new message replaces the chat's log while the older search
/// still winds down): what the AI SDK's resume asks about.
#[derive(Debug, Default)]
struct ActiveChats(std::sync::Mutex<std::collections::HashMap<String, usize>>);

/// A running search of a chat; dropped when its log is finished.
struct ActiveChat {
    chats: Arc<ActiveChats>,
    id: String,
}

impl ActiveChats {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, usize>> {
        // The map stays consistent whatever panicked while holding it.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn enter(self: &Arc<Self>, id: &str) -> ActiveChat {
        *self.lock().entry(id.to_string()).or_default() += 1;
        ActiveChat {
            chats: Arc::clone(self),
            id: id.to_string(),
        }
    }

    fn is_active(&self, id: &str) -> bool {
        self.lock().contains_key(id)
    }
}

impl Drop for ActiveChat {
    fn drop(&mut self) {
        let mut chats = self.chats.lock();
        if let Some(n) = chats.get_mut(&self.id) {
            *n -= 1;
            if *n == 0 {
                chats.remove(&self.id);
            }
        }
    }
}

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
    /// MCP tool calls in progress, for `notifications/cancelled`.
    mcp_calls: Arc<super::mcp::OpenCalls>,
    /// Base URL of a deepsearch service every search is relayed to, instead of run here.
    upstream: Option<String>,
    /// Where streams are logged for resuming.
    replay: Arc<dyn ReplayStore>,
    chats: Arc<ActiveChats>,
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
            mcp_calls: Arc::default(),
            upstream: None,
            replay: Arc::new(MemoryStore::new(ReplayConfig::default())),
            chats: Arc::default(),
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

    /// The MCP tool calls in progress.
    pub fn mcp_calls(&self) -> &Arc<super::mcp::OpenCalls> {
        &self.mcp_calls
    }

    /// A slot of the concurrency limit for an MCP tool call, counted under `/mcp`.
    pub(crate) fn admit_mcp(&self) -> Result<StreamPermit, ApiError> {
        let path = super::mcp::PATH;
        self.admission
            .admit_at(path)
            .inspect_err(|e| metrics::global().request(path, e.status, Default::default()))
    }

    /// Checks a request body for `route`.
    pub fn parse(
        &self,
        route: Route,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<SearchRequest, ApiError> {
        let result = parse_request(route, content_type, body, &self.limits, &self.engines);
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
            return self
                .serve(stream, permit, &req.request_id, route.format())
                .await;
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
        let format = route.format();
        let stream = match format.encoder(&req.request_id, &req.search.query, &req.wire) {
            None => deepsearch.stream(
                &req.request_id,
                req.search.clone(),
                self.stream_config.clone(),
            )?,
            Some(encoder) => wire::spawn(
                encoder,
                deepsearch,
                req.search.clone(),
                &req.request_id,
                self.stream_config.clone(),
            )
            .map_err(ApiError::internal)?,
        };
        self.serve(stream, permit, &req.request_id, format).await
    }

    /// Logs `search` for resuming (the recorder holds `permit` until the search ends) and
    /// answers with a stream reading the log from its start.
    ///
    /// `format` decides what a client leaving does to the search ([`Disconnect`]) and
    /// how the connection's stream ends and keeps alive.
    async fn serve(
        &self,
        search: EventStream,
        permit: StreamPermit,
        request_id: &str,
        format: Format,
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
        let search_handle = search.close_handle();
        let linger = format.disconnect() != Disconnect::RunToEnd;
        let chat = (format == Format::AiSdk).then(|| self.chats.enter(request_id));
        tokio::spawn(async move {
            resume::record(search, writer, id, (permit, chat), linger).await;
            drop(recording);
            // What the search held (engine answers, its documents) is free now.
            crate::memory::release_soon();
        });
        let config = self.connection_config(format);
        let stream = resume::replay(request_id, config, reader, format)?;
        if format.disconnect() == Disconnect::Cancel {
            // No way back for this client: its search ends with its connection.
            stream.on_close_cancel(move || search_handle.close());
        }
        Ok(self.count(stream))
    }

    /// The settings of a connection's stream in `format`: its heartbeat and end frame.
    fn connection_config(&self, format: Format) -> StreamConfig {
        let mut config = replay_config(&self.stream_config);
        if let Some(heartbeat) = format.heartbeat() {
            config.heartbeat_format = heartbeat;
        }
        config.done_frame = format.done_frame();
        config
    }

    /// `GET /api/chat/{id}/stream`: the chat's running search from its first frame (the
    /// AI SDK resumes without an event id), or `None` (204) when none runs here.
    pub(crate) async fn resume_chat(&self, chat_id: &str) -> Option<EventStream> {
        if !self.chats.is_active(chat_id) {
            return None;
        }
        let reader = self.replay.attach(chat_id, 0).await.ok()?;
        let config = self.connection_config(Format::AiSdk);
        let stream = resume::replay(chat_id, config, reader, Format::AiSdk).ok()?;
        metrics::global().resume("resumed");
        Some(self.counted(stream))
    }

    /// A client back with `Last-Event-ID`: the frames after `after`, then the live rest;
    /// `error` (code `expired`) and `[DONE]` when the log is gone or no longer has them.
    async fn resume(&self, route: Route, request_id: &str, after: u64) -> Result<Reply, ApiError> {
        let config = replay_config(&self.stream_config);
        let stream = match self.replay.attach(request_id, after).await {
            Ok(reader) => {
                metrics::global().resume("resumed");
                resume::replay(request_id, config, reader, route.format())?
            }
            Err(e) => {
                metrics::global().resume(e.code());
                resume::refused(request_id, config, &e, route.format())?
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
        Reply::Stream(self.counted(stream))
    }

    fn counted(&self, stream: EventStream) -> EventStream {
        let registry = metrics::global();
        registry.stream_opened();
        let handle = stream.close_handle();
        stream.on_close_cancel(move || registry.stream_closed(&handle.stats()));
        stream
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
        Ok(route
            .format()
            .whole(&req.request_id, &req.search.query, &req.wire, &result))
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
