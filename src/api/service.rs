//! A request in, a stream (or a JSON reply) out: the part of serving that does not
//! depend on the HTTP framework.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admission::{count_refusal, Admission, StreamPermit};
use super::query::{last_event_id, query_to_body, ResumePoint};
use super::resume::{self, replay_config};
use super::wire::{self, Disconnect, Format};
use super::{parse_request, ApiError, ErrorCode, Limits, OpenStreams, Route, SearchRequest};
use crate::deepsearch::{DeepSearch, Filter};
use crate::metrics;
use crate::proxy::{self, ProxyOptions};
use crate::replay::{
    chat_log_name, MemoryStore, ReplayConfig, ReplayError, ReplayStore, StreamKey,
};
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
    /// 204: a resume of a stream whose end the client has read (`EventSource` stops).
    NoContent,
}

/// How long a client waits before reconnecting, sent as `retry:` at the start of each
/// stream, unless configured otherwise ([`Service::with_retry`]).
pub const DEFAULT_RETRY: Duration = Duration::from_millis(3000);

/// The streamed searches running now, by (scope, request id): a new search may not take
/// a request id a live one holds.
type LiveIds = Arc<Mutex<HashSet<(String, String)>>>;

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
    /// `retry:` of every stream; `None`: not sent.
    retry: Option<Duration>,
    live: LiveIds,
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
            retry: Some(DEFAULT_RETRY),
            live: LiveIds::default(),
        }
    }

    /// Sends `retry:` with this delay at the start of every stream (`None`: no `retry:`;
    /// default [`DEFAULT_RETRY`]).
    pub fn with_retry(mut self, retry: Option<Duration>) -> Self {
        self.retry = retry;
        self
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
    /// A streamed search is logged for resuming under a new secret key, which its event
    /// ids carry (`<key>.<n>`); a request with a resume point (see
    /// [`with_resume`](Self::with_resume)) starts nothing and reads the log its key
    /// names instead, ignoring the other fields. A streamed search whose `request_id` a
    /// live one holds is refused with 409 `request_id_in_use`.
    ///
    /// `scope` says who started it (see [`crate::replay::scope_of`]; "" without an API
    /// key): a resume finds only streams of its own scope.
    pub async fn start(
        &self,
        route: Route,
        req: SearchRequest,
        scope: &str,
    ) -> Result<Reply, ApiError> {
        if let (true, Some(point)) = (req.stream, &req.resume) {
            return self.resume(route, &req.request_id, point, scope).await;
        }
        let live = match req.stream {
            true => Some(self.hold_request_id(scope, &req.request_id)?),
            false => None,
        };
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
                .serve(stream, permit, &req.request_id, scope, live, route.format())
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
        self.serve(stream, permit, &req.request_id, scope, live, format)
            .await
    }

    /// Marks `request_id` as taken by a live search of `scope` until the guard is
    /// dropped; 409 `request_id_in_use` while another holds it, so a new search can never
    /// stop a live one (a client proves a stream is its own only by its key, resuming).
    fn hold_request_id(&self, scope: &str, request_id: &str) -> Result<LiveId, ApiError> {
        let entry = (scope.to_string(), request_id.to_string());
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !live.insert(entry.clone()) {
            return Err(ApiError::new(
                409,
                ErrorCode::RequestIdInUse,
                Some("request_id"),
                "a search with this request_id is running; resume it with the \
                 Last-Event-ID its stream sent, or choose another request_id",
            ));
        }
        Ok(LiveId {
            live: Arc::clone(&self.live),
            entry,
        })
    }

    /// Logs `search` for resuming under a new key (the recorder holds `permit` until the
    /// log is finished, the search its request id while it runs) and answers with a
    /// stream reading the log from its start.
    ///
    /// `format` decides what a client leaving does to the search ([`Disconnect`]), how
    /// the connection's stream ends and keeps alive, and whether its frames carry ids.
    async fn serve(
        &self,
        search: EventStream,
        permit: StreamPermit,
        request_id: &str,
        scope: &str,
        live: Option<LiveId>,
        format: Format,
    ) -> Result<Reply, ApiError> {
        let internal = |e: crate::replay::ReplayError| {
            ApiError::new(500, ErrorCode::ReplayStore, None, e.to_string())
        };
        let key = StreamKey::generate().map_err(ApiError::internal)?;
        // A chat is found again by its id (the AI SDK's resume has no event id); any
        // other stream by the key its ids carry.
        let name = match format {
            Format::AiSdk => chat_log_name(scope, request_id),
            _ => key.log_name(scope),
        };
        // Once shutdown has begun this ends the new search at once, with `shutdown`.
        self.streams.track(&search);
        // The request id is free once the search's stream has ended: before its log is
        // finished, so a client that has read [DONE] can reuse it at once.
        if let Some(live) = live {
            search.on_close_cancel(move || drop(live));
        }
        let writer = self.replay.create(&name).await.map_err(internal)?;
        // Attached before the recorder starts, so its linger cannot begin unattended.
        let reader = self.replay.attach(&name, 0).await.map_err(internal)?;
        let (recording, id) = (self.streams.recording(), request_id.into());
        let search_handle = search.close_handle();
        let linger = format.disconnect() != Disconnect::RunToEnd;
        let chat = (format == Format::AiSdk).then(|| self.chats.enter(&name));
        tokio::spawn(async move {
            resume::record(search, writer, id, (permit, chat), linger).await;
            drop(recording);
            // What the search held (engine answers, its documents) is free now.
            crate::memory::release_soon();
        });
        let config = self.connection_config(format);
        let resumable = format.resumable().then_some(resume::Resumable {
            key: &key,
            after: 0,
            retry: self.retry,
        });
        let stream = resume::replay(request_id, config, reader, format, resumable)?;
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

    /// `GET /api/chat/{id}/stream`: the chat's running search of `scope` from its first
    /// frame (the AI SDK resumes without an event id), or `None` (204) when none runs here.
    pub(crate) async fn resume_chat(&self, scope: &str, chat_id: &str) -> Option<EventStream> {
        let name = chat_log_name(scope, chat_id);
        if !self.chats.is_active(&name) {
            return None;
        }
        let reader = self.replay.attach(&name, 0).await.ok()?;
        let config = self.connection_config(Format::AiSdk);
        let stream = resume::replay(chat_id, config, reader, Format::AiSdk, None).ok()?;
        metrics::global().resume("resumed");
        Some(self.counted(stream))
    }

    /// A client back with `Last-Event-ID`: the frames after its id, then the live rest;
    /// 204 when it has read the end; 400 `unsent_event_id` for an id past the log's last
    /// (the live reader keeps the stream); `error` (code `expired`) and `[DONE]` when
    /// the log is gone, no longer has them, or is not the client's (wrong key or scope:
    /// answered as for an unknown stream, so nothing tells a stranger a stream exists).
    async fn resume(
        &self,
        route: Route,
        request_id: &str,
        point: &ResumePoint,
        scope: &str,
    ) -> Result<Reply, ApiError> {
        let config = self.connection_config(route.format());
        let attached = match &point.key {
            Some(key) => (self.replay.attach(&key.log_name(scope), point.after).await)
                .map(|reader| (reader, key)),
            None => Err(ReplayError::Expired),
        };
        let stream = match attached {
            Ok((reader, key)) => {
                metrics::global().resume("resumed");
                resume::replay(
                    request_id,
                    config,
                    reader,
                    route.format(),
                    Some(resume::Resumable {
                        key,
                        after: point.after,
                        retry: self.retry,
                    }),
                )?
            }
            Err(ReplayError::Finished) => {
                metrics::global().resume(ReplayError::Finished.code());
                return Ok(Reply::NoContent);
            }
            Err(e @ ReplayError::Unsent { .. }) => {
                metrics::global().resume(e.code());
                count_refusal(route, 400);
                return Err(ApiError::new(
                    400,
                    ErrorCode::UnsentEventId,
                    Some("Last-Event-ID"),
                    e.to_string(),
                ));
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

/// A request id held by a live search; released when the search's log is finished.
#[derive(Debug)]
struct LiveId {
    live: LiveIds,
    entry: (String, String),
}

impl Drop for LiveId {
    fn drop(&mut self) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.remove(&self.entry);
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
