"""Type stubs for the Rust extension ``deepsearch_stream._core``."""

from collections.abc import Awaitable, Callable, Coroutine, Generator, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, final

from typing_extensions import Self, disjoint_base

__version__: str

class DeepSearchStreamError(Exception):
    """Base class of every error raised by deepsearch_stream."""

class StreamClosedError(DeepSearchStreamError):
    """The stream can take no more messages: its consumer went away or it already ended."""

class StreamTimeoutError(StreamClosedError):
    """The stream reached its timeout."""

class EncodeError(DeepSearchStreamError):
    """A message could not be encoded."""

class DecodeError(DeepSearchStreamError):
    """An SSE stream broke the decoder's line or event size limit."""

class ConfigError(DeepSearchStreamError):
    """An option is out of range or malformed."""

class InvalidRequestError(DeepSearchStreamError):
    """A search request is malformed or out of range; the message names the field."""

class SearchEngineError(DeepSearchStreamError):
    """A search engine could not be set up (unknown name, missing key or URL, unreadable corpus)."""

class LlmError(DeepSearchStreamError):
    """The language model failed (unreachable, rejected the key, context too long, ...)."""

@final
class _Ready:
    """An awaitable that is already complete (the no-wait fast path)."""

    def __await__(self) -> Generator[None, None, Any]: ...
    def __iter__(self) -> _Ready: ...
    def __next__(self) -> None: ...
    def send(self, value: object, /) -> None: ...
    def throw(self, exc: BaseException, /, *args: object) -> None: ...
    def close(self) -> None: ...

@final
class EventStream:
    """One SSE stream for one request, between producers and one consumer.

    Producers ``await send(type, data)``: each message becomes a frame
    ``id: <n>`` / ``data: {"type", "data", "requestId", "timestamp"}`` with the JSON written
    exactly as ``json.dumps(..., ensure_ascii=False)`` would. While ``max_pending``
    messages (or ``max_pending_bytes``) are buffered, ``send`` waits: nothing is dropped.

    The consumer iterates: ``async for chunk in stream`` yields ``bytes`` holding one or
    more whole frames, a heartbeat after ``heartbeat`` idle seconds, and ``data: [DONE]``
    last. The object can be passed as is to sse-starlette's ``EventSourceResponse`` (with
    ``ping=0``) or Starlette's ``StreamingResponse``.

    Ending: ``complete()`` sends ``[DONE]``; ``fail(message, code)`` sends an ``error``
    message then ``[DONE]``; after ``timeout`` seconds an ``error`` with code ``timeout``
    and ``[DONE]`` are sent. When the consumer goes away (``aclose()``, the consuming task
    is cancelled, the object is dropped) ``send`` raises ``StreamClosedError`` and a task
    started with ``start()`` is cancelled.

    When frames are already buffered, ``__anext__`` and ``send`` return an awaitable that
    completes without suspending; every ``yield_every`` chunks the iterator yields to the
    event loop once anyway, so a server's disconnect detection keeps running.
    """

    def __new__(
        cls,
        request_id: str,
        *,
        heartbeat: float | None = 10.0,
        timeout: float | None = 3600.0,
        max_pending: int = 256,
        max_pending_bytes: int = 4194304,
        max_chunk_bytes: int = 65536,
        heartbeat_format: Literal["data", "comment"] | str = "data",
        yield_every: int = 32,
    ) -> EventStream: ...
    @property
    def request_id(self) -> str:
        """The request id every message carries as ``requestId``."""
    @property
    def closed(self) -> bool:
        """True once no message can be sent any more."""
    def send(
        self,
        type: str,
        data: Any,
        *,
        message_id: str | None = None,
        is_final: bool | None = None,
        digital_employee: str | None = None,
    ) -> Awaitable[None]:
        """Queue one message; the awaitable waits while the buffer is full.

        Raises ``TypeError``/``ValueError`` for data ``json.dumps`` would refuse (and for
        non-finite floats), ``StreamClosedError`` once the stream cannot take messages.
        """
    def complete(self) -> None:
        """End the stream: ``[DONE]`` follows what is buffered."""
    def fail(self, message: str, code: str = "error") -> None:
        """End the stream with an ``error`` message ``{"message", "code"}``, then ``[DONE]``."""
    def start(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` as the producer task (returns the ``asyncio.Task``).

        The stream completes when it returns, fails when it raises, and the task is
        cancelled when the consumer goes away.
        """
    def close(self) -> None:
        """Close from the consumer side: buffered frames are dropped, producers stop."""
    def aclose(self) -> Awaitable[None]:
        """Async form of ``close()``."""
    def stats(self) -> dict[str, float]:
        """Counters: messages_sent, bytes_sent, heartbeats, pending, blocked_seconds."""
    def __aiter__(self) -> EventStream: ...
    def __anext__(self) -> Awaitable[bytes]: ...

def synthetic_stream(
    request_id: str,
    count: int,
    *,
    payload_bytes: int = 200,
    type: str = "bench",
    heartbeat: float | None = 10.0,
    timeout: float | None = 3600.0,
    max_pending: int = 256,
    max_pending_bytes: int = 4194304,
    max_chunk_bytes: int = 65536,
    yield_every: int = 32,
) -> EventStream:
    """An ``EventStream`` fed by a Rust task: ``count`` messages of type ``type`` with data
    ``{"seq": n, "text": "x" * payload_bytes}``, then ``[DONE]``. For load tests and
    benchmarks of the consuming side."""

def proxy(
    url: str,
    body: bytes | bytearray | str | dict[str, Any] | list[Any],
    *,
    request_id: str = "",
    headers: Mapping[str, str] | None = None,
    timeout: float | None = 3600.0,
    connect_timeout: float | None = 10.0,
    idle_timeout: float | None = 60.0,
    heartbeat: float | None = 10.0,
    heartbeat_format: Literal["data", "comment"] | str = "data",
    max_pending: int = 256,
    max_pending_bytes: int = 4194304,
    max_chunk_bytes: int = 65536,
    yield_every: int = 32,
) -> EventStream:
    """Relay a deepsearch service's SSE answer: POST ``body`` to ``url``, return the stream.

    ``body`` is sent as is (``bytes``), as UTF-8 (``str``) or as JSON (``dict``/``list``),
    with ``Content-Type: application/json`` and ``Accept: text/event-stream`` unless
    ``headers`` (e.g. ``Authorization``, ``Last-Event-ID``) say otherwise. Each upstream
    event's data becomes one of the stream's messages, under the stream's own ids and
    heartbeats and with backpressure (nothing is dropped); upstream heartbeats are not
    relayed and the upstream's ``[DONE]`` completes the stream.

    Any failure ends the stream with an ``error`` message, then ``[DONE]``; its ``code``
    is ``upstream_unreachable`` (no connection), ``upstream_status`` (non-2xx; the message
    holds the status and the start of the body), ``upstream_protocol`` (not
    ``text/event-stream``, or an oversized line or event), ``upstream_truncated`` (closed
    without ``[DONE]``) or ``upstream_timeout`` (no response head within
    ``connect_timeout``, silence for ``idle_timeout``, or the whole relay past
    ``timeout``). Closing the stream (``aclose()``, cancelling its consumer) closes the
    upstream connection at once.

    Raises ``ConfigError`` for a bad URL, header or option, ``TypeError`` for a body of
    another type (or data ``json.dumps`` would refuse).
    """

@final
class SseDecoder:
    """The core's incremental ``text/event-stream`` decoder (WHATWG HTML § 9.2).

    ``feed(chunk)`` takes bytes split anywhere and returns the events it completed, each
    as ``(event, data, last_event_id)``: ``event`` is ``"message"`` unless the frame named
    one, ``data`` its ``data`` lines joined with ``\n``, ``last_event_id`` the stream's
    last id at dispatch (it persists over frames without an ``id``). Comments are not
    events. A line over ``max_line_bytes`` or an event's data over ``max_event_bytes``
    raises ``DecodeError``, and so does every later call. ``finish()`` ends the stream:
    an incomplete event is discarded, the last id is kept (for ``Last-Event-ID``).
    """

    def __new__(
        cls, *, max_line_bytes: int = 1048576, max_event_bytes: int = 8388608
    ) -> SseDecoder: ...
    def feed(self, chunk: bytes) -> list[tuple[str, str, str]]:
        """The events completed by ``chunk``, in order."""
    def finish(self) -> None:
        """End of the stream: drop an incomplete event, keep the last id."""
    @property
    def last_event_id(self) -> str:
        """The last event id dispatched; empty until one is set."""
    @property
    def retry(self) -> int | None:
        """The last valid ``retry:`` value, in milliseconds."""

def index_corpus(
    corpus: str | PathLike[str],
    cache_dir: str | PathLike[str] | None = None,
    progress: Callable[[int, int], object] | None = None,
) -> dict[str, Any]:
    """Build (or reuse, when no file changed) the ``local`` engine's index of ``corpus``.

    Returns ``{"corpus", "index_dir", "documents", "passages", "rebuilt"}``: the
    canonical folder, the index in use, the files and passages indexed, and whether it
    had to be built. ``cache_dir`` defaults to ``DEEPSEARCH_CACHE_DIR``, else
    ``~/.cache/deepsearch-stream``. While building, ``progress(files_done, files_total)``
    is called at most every 0.1 s and once at the end; an exception it raises stops
    nothing but is raised afterwards. Blocks without holding the GIL. Raises
    ``SearchEngineError`` for a folder that cannot be read.
    """

@disjoint_base
class DeepSearch:
    """A configured DeepSearch service: engines, planner/reasoner/writer, and limits.

    ``engines`` names the search engines in merge order (``local``, ``searxng``,
    ``tavily``, ``brave``, ``serper``, ``jina``; empty or ``None`` means ``["local"]``);
    their keys and URLs come from the environment (``SEARXNG_URL``, ``TAVILY_API_KEY``,
    ...), and a missing one raises ``SearchEngineError`` naming the variable. ``corpus``
    is the directory the ``local`` engine indexes (default ``DEEPSEARCH_CORPUS_DIR``);
    building its index blocks, without holding the GIL, and is cached under
    ``cache_dir``. ``llm`` is ``None`` (a model from ``DEEPSEARCH_LLM_MODEL`` and friends,
    else offline), ``"offline"``, or a dict with ``base_url``, ``model``, ``api_key``,
    ``timeout``, ``connect_timeout``, ``idle_timeout``, ``temperature``, ``max_tokens``.
    ``locale`` (``"en"`` or ``"zh"``) sets the language of ``status``/``progress`` lines.
    ``read_pages`` fetches the pages of that many top documents before answering, behind
    an SSRF guard that refuses loopback, private and metadata addresses unless
    ``allow_private_pages``.
    ``max_search_calls``, ``max_llm_tokens`` and ``search_deadline`` (seconds) are every
    search's budget when its request sets none, and the most a request's ``budget`` may
    ask for (``None``: no limit); a spent budget stops the searching and the answer is
    written from what was found, with a ``warning`` naming it. An engine failing
    ``breaker_failures`` calls in a row (0: never) is skipped for ``breaker_cooldown``
    seconds.
    """

    def __new__(
        cls,
        engines: Sequence[str] | None = None,
        corpus: str | PathLike[str] | None = None,
        llm: str | Mapping[str, Any] | None = None,
        *,
        locale: str = "en",
        cache_dir: str | PathLike[str] | None = None,
        max_queries: int = 4,
        docs_per_query: int = 5,
        concurrency: int = 8,
        engine_timeout: float = 10.0,
        answer_sentences: int = 6,
        max_sources: int = 12,
        read_pages: int = 0,
        allow_private_pages: bool = False,
        max_search_calls: int | None = None,
        max_llm_tokens: int | None = None,
        search_deadline: float | None = None,
        breaker_failures: int = 3,
        breaker_cooldown: float = 30.0,
    ) -> Self: ...
    @property
    def engines(self) -> list[str]:
        """Engine names, in the order their results are merged."""
    @property
    def llm(self) -> str:
        """``"offline"`` or the model's name."""
    def sse(
        self,
        query: str,
        request_id: str,
        max_loop: int = 3,
        stream_mode: str | Mapping[str, Any] | None = None,
        *,
        stream: bool = True,
        heartbeat: float | None = 10.0,
        timeout: float | None = 3600.0,
        heartbeat_format: Literal["data", "comment"] | str = "data",
        max_pending: int = 256,
        max_pending_bytes: int = 4194304,
        max_chunk_bytes: int = 65536,
        yield_every: int = 32,
    ) -> EventStream:
        """Start a search; its messages arrive as SSE frames on the returned stream.

        Messages: ``status``, then per round ``progress``, ``plan``, ``warning`` (an engine
        call failed; the round goes on), ``intermediate``; then ``answer`` pieces and
        ``final``. ``stream_mode`` is ``"all"``, ``"intermediate"`` (no answer pieces),
        ``"final"`` (``status`` and ``final``), or ``{"mode": "general"|"token"|"time",
        "token": n, "time": seconds}`` to batch answer pieces. ``stream=False`` sends the
        ``final`` message alone. A failure ends with an ``error`` message, then
        ``[DONE]``. Closing the stream stops the search and its requests in flight.

        Raises ``InvalidRequestError`` for an empty or oversized query, ``max_loop``
        outside 1..10 or a bad ``stream_mode``; ``ConfigError`` for bad stream options.
        """
    def search(
        self, query: str, request_id: str | None = None, max_loop: int = 3
    ) -> Awaitable[dict[str, Any]]:
        """Run a search to the end: ``{"answer", "sources", "loops", "queries", "elapsed_ms",
        "citations", "usage"}``.

        Raises ``LlmError`` when the model fails; cancelling the awaitable stops the search.
        """

@final
class Service:
    """The HTTP contract both servers serve, for a web framework to call.

    ``start(route, content_type, body)`` checks a request body (``route`` is
    ``"deepsearch"`` for ``POST /deepsearch`` or ``"genie"`` for genie-tool's
    ``POST /v1/tool/deepsearch``) and answers ``(status, headers, body)``: ``body`` is
    an ``EventStream`` (status 200, the SSE headers) or ``bytes`` of JSON (a
    ``stream: false`` result, or an error ``{"error": {"code", "message", "field"}}``
    with 400, 413, 415, 422, 502 or 503 and ``Retry-After``). At most ``max_streams``
    searches run at once; each one holds its slot until its stream ends. With
    ``upstream`` (the base URL of another deepsearch service) every search is relayed
    there instead: its events go out through this service's streams, and an upstream
    failure, refusal or broken stream becomes an ``error`` message and ``[DONE]``.

    Streams are resumable: each one's frames are logged (kept ``replay_ttl`` seconds
    after it ends, within ``replay_max_bytes`` overall and ``replay_max_stream_bytes``
    per stream), a search goes on ``resume_linger`` seconds after its client left, and
    a request with ``last_event_id`` (the ``Last-Event-ID`` header) or a
    ``last_event_id`` query parameter reads the log its id names after that id. Event
    ids are ``<key>.<n>``, ``key`` a secret per stream: only its own client can resume it
    (204 once it has read ``[DONE]``'s id; a new streamed search whose ``request_id`` a
    live one holds gets 409). Each stream opens with ``retry: <retry_ms>``.
    ``method="GET"`` reads the request from ``query`` (a URL query string) instead of
    the body. With ``redis_url`` the logs live in Redis Streams, shared by every instance
    using it (a client may resume on any); Redis must answer when the service is built
    (else ``ConfigError``), and a Redis failure later never stops a live stream.
    """

    def __new__(
        cls,
        search: DeepSearch,
        *,
        upstream: str | None = None,
        max_streams: int = 1000,
        max_body_bytes: int = 65536,
        max_query_chars: int = 4096,
        heartbeat: float | None = 10.0,
        timeout: float | None = 3600.0,
        heartbeat_format: Literal["data", "comment"] | str = "data",
        max_pending: int = 256,
        max_pending_bytes: int = 4194304,
        max_chunk_bytes: int = 65536,
        yield_every: int = 32,
        resume_linger: float = 60.0,
        replay_ttl: float = 300.0,
        replay_max_bytes: int = 268435456,
        replay_max_stream_bytes: int = 16777216,
        redis_url: str | None = None,
        retry_ms: int | None = 3000,
    ) -> Service: ...
    @property
    def open_streams(self) -> int:
        """Searches in progress now."""
    @property
    def max_body_bytes(self) -> int:
        """Request bodies larger than this are refused with 413."""
    def body_cap(self, declared: int | None = None) -> tuple[int, int] | None:
        """How to read a request body whose ``Content-Length`` is ``declared`` (the rule
        both servers share): ``None`` when it is too large to read at all; else
        ``(limit, drain_to)``: keep at most ``limit`` bytes; past them read on,
        discarding, until ``drain_to`` bytes were seen or the body ends, and pass
        ``body=None`` to ``start``."""
    def start(
        self,
        route: str,
        content_type: str | None,
        body: bytes | None,
        *,
        method: Literal["GET", "HEAD", "POST"] | str = "POST",
        query: str | None = None,
        last_event_id: str | None = None,
        body_timeout: float | None = None,
        path_id: str | None = None,
        traceparent: str | None = None,
        authorization: bytes | None = None,
    ) -> Awaitable[tuple[int, list[tuple[str, str]], bytes | EventStream]]:
        """Answer one request of a search route: ``(status, headers, body)``. ``route``
        is a route's name: ``deepsearch``, ``genie``, ``openai``, ``openai_models``,
        ``aisdk``, ``aisdk_resume``, ``agui``. ``body`` is ignored for ``GET``/``HEAD``;
        ``None`` means it was over the cap (413); ``body_timeout`` (seconds) that it did
        not arrive within them (408); ``path_id`` is the ``{id}`` of
        ``/api/chat/{id}/stream``; ``traceparent`` (the W3C header) is the trace the
        search's spans continue; ``authorization`` is the raw ``Authorization`` header (a
        stream resumes only under the API key that started it). Parsing, resuming,
        admission, the shutdown rule, logging and metrics are the core's."""
    def shutdown(self) -> int:
        """End every open stream, and every one started from now on, with an ``error``
        message of code ``shutdown`` and ``[DONE]``; returns how many were open."""
    def recorded(self, timeout: float) -> Awaitable[bool]:
        """Wait, at most ``timeout`` seconds, until every search's replay log is written
        out (to Redis, say), so a resume on another instance reads the ``shutdown`` error
        and ``[DONE]``; resolves to False if some still were. After ``shutdown`` this is
        short. Raises ``ConfigError`` for a timeout that is not a positive number."""
    def mcp(
        self,
        content_type: str | None,
        body: bytes | None,
        *,
        accept: str | None = None,
        protocol_version: str | None = None,
        session_id: str | None = None,
        method: str | None = None,
        name: str | None = None,
        body_timeout: float | None = None,
    ) -> Awaitable[tuple[int, list[tuple[str, str]], bytes | EventStream]]:
        """Answer one ``POST /mcp`` (MCP over Streamable HTTP): ``(status, headers, body)``.
        The keyword arguments are the ``Accept``, ``MCP-Protocol-Version``,
        ``Mcp-Session-Id``, ``Mcp-Method`` and ``Mcp-Name`` headers; ``body`` and
        ``body_timeout`` as for ``start``. A tool call's body is an ``EventStream`` of
        JSON-RPC messages; closing it cancels the search."""

@final
class Access:
    """The API key and CORS policy both servers put in front of every route.

    ``api_key``: every path but ``/healthz`` and the page at ``/`` needs
    ``Authorization: Bearer <key>`` (compared in constant time); an empty key raises
    ``ConfigError``. ``api_keys`` and ``api_key_file`` (one key per line, blank lines
    and ``#`` comments skipped) add more keys: any passes, and a stream can only be
    resumed with the key that started it; an unreadable or keyless file raises
    ``ConfigError``. ``cors_origins``: ``None`` for no CORS headers at all, ``"*"`` or a
    comma-separated list of origins; a malformed origin raises ``ConfigError``.
    """

    def __new__(
        cls,
        *,
        api_key: str | None = None,
        cors_origins: str | None = None,
        api_keys: Sequence[str] | None = None,
        api_key_file: str | PathLike[str] | None = None,
    ) -> Access: ...
    @property
    def enabled(self) -> bool:
        """Whether a key or CORS is configured at all."""
    def check(
        self,
        method: str,
        path: str,
        authorization: bytes | None = None,
        origin: bytes | None = None,
        request_method: bytes | None = None,
    ) -> tuple[int, list[tuple[str, str]], bytes] | None:
        """The answer to give instead of routing, or ``None`` to route the request.

        ``path`` is the raw path (not percent-decoded); the headers are raw bytes
        (``request_method`` is ``Access-Control-Request-Method``). The answer is a CORS
        preflight's 204, its 403 for an origin not allowed, or a 401 with
        ``WWW-Authenticate: Bearer`` and a JSON error body.
        """
    def response_headers(self, origin: bytes | None = None) -> list[tuple[str, str]]:
        """CORS headers to add to a routed response for a request from ``origin``."""

def config_table() -> list[tuple[str, str, str, str, str, str]]:
    """The one settings table both CLIs are built from: per setting ``(key, flag, env,
    default, help, kind)``. ``flag`` has no dashes; ``default`` is as typed on the
    command line, ``""`` for none; ``help`` is the whole ``--help`` line (description,
    ``[default: ...]``, ``[env: DEEPSEARCH_...]``); ``kind`` is one of ``string``,
    ``int``, ``seconds``, ``bool``, ``list``, ``secret``, ``path``."""

def search_settings() -> list[str]:
    """The keys of the settings ``search`` in the terminal takes."""

@final
class ServiceConfig:
    """Every operator setting, parsed and checked by the core (the same code checks
    ``deepsearch-server``'s flags). A value comes from the arguments, else its
    ``DEEPSEARCH_*`` variable (trimmed; empty is unset), else the table's default; a
    refused one raises ``ConfigError`` naming the flag or variable and what was
    expected. ``repr`` never shows the keys or the Redis URL."""

    @staticmethod
    def defaults() -> ServiceConfig:
        """The table's defaults, without the environment."""
    @staticmethod
    def from_env() -> ServiceConfig:
        """The ``DEEPSEARCH_*`` variables over the defaults."""
    @staticmethod
    def from_args(args: list[tuple[str, str]]) -> ServiceConfig:
        """``args`` (setting key, text as typed; ``"true"`` for a switch) over the
        environment over the defaults."""
    def to_dict(self) -> dict[str, Any]:
        """Every setting by key: seconds as floats (``heartbeat`` and
        ``stream_timeout`` ``None`` when off), paths and secrets as strings, ``None``
        when unset, ``engines`` and ``api_key`` (the repeatable flag) lists, ``retry_ms``
        0 when off."""

def valid_request_id(request_id: str) -> bool:
    """Whether ``request_id`` is 1 to 128 characters from ``A-Z a-z 0-9 . _ : -``."""

METRICS_CONTENT_TYPE: str
#: The headers every stream is sent with (``content-type``, ``cache-control``,
#: ``x-accel-buffering``), as the axum server sends them.
SSE_HEADERS: list[tuple[str, str]]

def metrics_text() -> str:
    """``/metrics`` in the Prometheus text format: open streams, messages, bytes,
    heartbeats, backpressure time, engine calls and latency, request durations."""
