"""The FastAPI service: the seed's deep-search endpoint on the Rust core.

``create_app(settings)`` builds it; ``app`` is one built from the environment (for
``uvicorn deepsearch_stream.app:app``). Request checks, limits, error bodies, stream
bytes and metrics come from the core's ``Service``, which the axum server uses too, so
both answer every request alike.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from deepsearch_stream import _core
from deepsearch_stream._access import AccessMiddleware
from deepsearch_stream._openapi import document_stream_routes
from deepsearch_stream._serve import strip_access_log_queries
from deepsearch_stream._stream_routes import (
    ClientGone,
    Handler,
    StreamRoutes,
    error_body,
    header,
    not_allowed_body,
    read_body,
)
from deepsearch_stream.deepsearch import DeepSearch
from deepsearch_stream.response import EventStreamResponse

__all__ = ["Settings", "create_app"]  # and `app`, built on first access

log = logging.getLogger("deepsearch_stream")

JSON = "application/json"
# Longest wait at shutdown, after the connections closed, for replay logs to be written.
LOG_FLUSH_TIMEOUT = 5.0


# The core's settings table's defaults (the same as `deepsearch-server`'s).
_DEFAULTS: dict[str, Any] = _core.ServiceConfig.defaults().to_dict()


@dataclass
class Settings:
    """Everything the service is configured with; ``from_env()`` reads the same
    ``DEEPSEARCH_*`` variables as the axum server's flags, through the core's one
    settings table (``_core.ServiceConfig``), which also gives the defaults."""

    engines: list[str] = field(default_factory=lambda: list(_DEFAULTS["engines"]))
    corpus: str | None = None
    cache_dir: str | None = None
    llm: str | Mapping[str, Any] | None = None
    locale: str = _DEFAULTS["locale"]
    max_streams: int = _DEFAULTS["max_streams"]
    max_body_bytes: int = _DEFAULTS["max_body_bytes"]
    heartbeat: float | None = _DEFAULTS["heartbeat"]
    stream_timeout: float | None = _DEFAULTS["stream_timeout"]
    upstream: str | None = None
    # Resuming (Last-Event-ID): how long a search outlives its client, how long and how
    # much of its log is kept.
    resume_linger: float = _DEFAULTS["resume_linger"]
    replay_ttl: float = _DEFAULTS["replay_ttl"]
    replay_max_bytes: int = _DEFAULTS["replay_max_bytes"]
    replay_max_stream_bytes: int = _DEFAULTS["replay_max_stream_bytes"]
    # `retry:` at the start of every stream (ms a client waits to reconnect); None: none.
    retry_ms: int | None = _DEFAULTS["retry_ms"] or None
    # Replay logs in Redis Streams (redis://host:port/db), shared by every instance, so a
    # client can resume on any of them; None: in memory. Redis must answer at start.
    redis_url: str | None = field(default=None, repr=False)
    search_options: dict[str, Any] = field(default_factory=dict)
    # Bench-only routes (bench/CONTRACT.md): never on unless asked for.
    bench_routes: bool = _DEFAULTS["bench_routes"]
    # Every route but /healthz and the page at / needs `Authorization: Bearer <key>`:
    # this key, any of `api_keys`, or of the file `api_key_file` (one a line). A stream
    # resumes only with the key that started it.
    api_key: str | None = field(default=None, repr=False)
    api_keys: list[str] = field(default_factory=list, repr=False)
    api_key_file: str | None = None
    # None: no CORS headers; "*" or comma-separated origins.
    cors_origins: str | None = None
    # The connection layer (`deepsearch-stream serve`; the app itself reads only
    # body_timeout): seconds for a request head and for a body, open connections at most.
    header_timeout: float = _DEFAULTS["header_timeout"]
    body_timeout: float = _DEFAULTS["body_timeout"]
    max_connections: int = _DEFAULTS["max_connections"]

    @classmethod
    def from_env(cls) -> Settings:
        """The ``DEEPSEARCH_*`` variables over the defaults; raises
        ``_core.ConfigError`` naming a variable whose value is refused."""
        return cls.from_config(_core.ServiceConfig.from_env())

    @classmethod
    def from_config(cls, config: _core.ServiceConfig) -> Settings:
        """The service's part of ``config`` (the listening address, the log level and the
        shutdown wait are the server's)."""
        c = config.to_dict()
        llm = {"base_url": c["llm_base_url"], "model": c["llm_model"], "api_key": c["llm_api_key"]}
        return cls(
            engines=c["engines"],
            corpus=c["corpus"],
            cache_dir=c["cache_dir"],
            llm={k: v for k, v in llm.items() if v} or None,
            **{key: c[key] for key in _SERVICE_KEYS},
            retry_ms=c["retry_ms"] or None,
            # The first key, and any more (repeated --api-key).
            api_key=c["api_key"][0] if c["api_key"] else None,
            api_keys=c["api_key"][1:],
            search_options=_search_options(c),
        )


# The settings `Settings` takes as they are.
_SERVICE_KEYS = (
    "locale", "max_streams", "max_body_bytes", "heartbeat", "stream_timeout", "upstream",
    "resume_linger", "replay_ttl", "replay_max_bytes", "replay_max_stream_bytes",
    "redis_url", "bench_routes", "api_key_file", "cors_origins", "header_timeout",
    "body_timeout", "max_connections",
)  # fmt: skip


def _search_options(c: dict[str, Any]) -> dict[str, Any]:
    """The ``DeepSearch`` keywords of the configuration: the budget defaults and
    ceilings, and the engines' circuit breaker."""
    options: dict[str, Any] = {"breaker_cooldown": c["breaker_cooldown"]}
    for key in ("max_search_calls", "max_llm_tokens", "search_deadline"):
        if c[key] is not None:
            options[key] = c[key]
    return options


def _error(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return _json_error(status, error_body(code, message), headers)


def _json_error(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Response:
    return Response(body, status_code=status, headers={"content-type": JSON, **(headers or {})})


class RawPath:
    """Routes on the path as it was sent, not percent-decoded, as the axum server does:
    ``/%64eepsearch`` is no route (one path, one spelling, whatever a proxy in front
    decodes or not)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw is not None and b"%" in raw:
            scope = {**scope, "path": raw.decode("latin-1")}
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service for ``settings`` (default: ``Settings.from_env()``)."""
    settings = settings or Settings.from_env()
    search = DeepSearch(
        settings.engines,
        settings.corpus,
        settings.llm,
        locale=settings.locale,
        cache_dir=settings.cache_dir,
        **settings.search_options,
    )
    service = _core.Service(
        search,
        upstream=settings.upstream,
        max_streams=settings.max_streams,
        max_body_bytes=settings.max_body_bytes,
        heartbeat=settings.heartbeat,
        timeout=settings.stream_timeout,
        resume_linger=settings.resume_linger,
        replay_ttl=settings.replay_ttl,
        replay_max_bytes=settings.replay_max_bytes,
        replay_max_stream_bytes=settings.replay_max_stream_bytes,
        redis_url=settings.redis_url,
        retry_ms=settings.retry_ms,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.shutdown()
        # The replay logs end with what the clients got, so a resume on another instance
        # reads the same; bounded, as a Redis that stopped answering must not hold us.
        if not await service.recorded(LOG_FLUSH_TIMEOUT):
            log.warning("shutting down with replay logs still being written")

    access = _core.Access(
        api_key=settings.api_key,
        api_keys=settings.api_keys,
        api_key_file=settings.api_key_file,
        cors_origins=settings.cors_origins,
    )
    app = FastAPI(title="deepsearch-stream", lifespan=lifespan)
    app.state.service = service
    app.state.settings = settings
    strip_access_log_queries()
    app.state.search = search

    async def receive_body(scope: Scope, receive: Receive) -> tuple[bytes | None, float | None]:
        """The body by the core's cap, and the seconds it was waited for if it did not
        arrive (None otherwise). Raises ``ClientGone``."""
        declared = (header(scope, b"content-length") or "").strip()
        length = int(declared) if declared.isascii() and declared.isdigit() else None
        try:
            body = await asyncio.wait_for(
                read_body(receive, service.body_cap(length)), settings.body_timeout
            )
            return body, None
        except asyncio.TimeoutError:
            # Known to be over the cap: the 413; else the core's 408.
            if length is None or length <= service.max_body_bytes:
                return None, settings.body_timeout
            return None, None

    async def respond(
        answer: tuple[int, list[tuple[str, str]], bytes | _core.EventStream],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        status, headers, payload = answer
        if isinstance(payload, _core.EventStream):
            await EventStreamResponse(payload, headers=headers)(scope, receive, send)
        else:
            await Response(payload, status_code=status, headers=dict(headers))(scope, receive, send)

    def streaming(route: str) -> Handler:
        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            # Parsing (body, or the query string of a GET), resuming, admission, the
            # shutdown rule, logging and metrics are the core's (`Service.start`).
            body: bytes | None = b""
            timed_out: float | None = None
            if scope["method"] not in ("GET", "HEAD"):
                try:
                    body, timed_out = await receive_body(scope, receive)
                except ClientGone:
                    return
            # Raw bytes, as received: the stream's scope is its API key.
            authorization = header(scope, b"authorization")
            answered = await service.start(
                route,
                header(scope, b"content-type"),
                body,
                method=scope["method"],
                query=scope.get("query_string", b"").decode("latin-1"),
                last_event_id=header(scope, b"last-event-id"),
                body_timeout=timed_out,
                path_id=scope.get("path_params", {}).get("id"),
                traceparent=header(scope, b"traceparent"),
                authorization=authorization.encode("latin-1") if authorization else None,
            )
            await respond(answered, scope, receive, send)

        return answer

    async def mcp(scope: Scope, receive: Receive, send: Send) -> None:
        # MCP over Streamable HTTP: every decision is the core's (`Service.mcp`).
        try:
            body, timed_out = await receive_body(scope, receive)
        except ClientGone:
            return
        answered = await service.mcp(
            header(scope, b"content-type"),
            body,
            accept=header(scope, b"accept"),
            protocol_version=header(scope, b"mcp-protocol-version"),
            session_id=header(scope, b"mcp-session-id"),
            method=header(scope, b"mcp-method"),
            name=header(scope, b"mcp-name"),
            body_timeout=timed_out,
        )
        await respond(answered, scope, receive, send)

    routes: dict[str, tuple[tuple[str, ...], Handler]] = {
        # HEAD too, as the axum server answers it (and names it in 405's Allow).
        "/deepsearch": (("GET", "HEAD", "POST"), streaming("deepsearch")),
        "/v1/tool/deepsearch": (("POST",), streaming("genie")),
        "/v1/chat/completions": (("POST",), streaming("openai")),
        "/v1/models": (("GET", "HEAD"), streaming("openai_models")),
        "/api/chat": (("POST",), streaming("aisdk")),
        "/api/chat/{id}/stream": (("GET", "HEAD"), streaming("aisdk_resume")),
        "/ag-ui": (("POST",), streaming("agui")),
        "/mcp": (("POST",), mcp),
    }
    if settings.bench_routes:
        from deepsearch_stream._bench import bench_routes

        routes.update(bench_routes(heartbeat=settings.heartbeat, timeout=settings.stream_timeout))
    app.add_middleware(StreamRoutes, routes=routes)
    document_stream_routes(app)
    # Added last, so it is the outer one: the key and CORS apply to the streaming routes too.
    if access.enabled:
        app.add_middleware(AccessMiddleware, access=access)
    # Outermost: every route is matched on the path as sent.
    app.add_middleware(RawPath)

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> Response:
        return Response(b'{"status": "ok"}', headers={"content-type": JSON})

    @app.api_route("/metrics", methods=["GET", "HEAD"], response_class=PlainTextResponse)
    async def metrics() -> Response:
        return Response(
            _core.metrics_text().encode(),
            headers={"content-type": _core.METRICS_CONTENT_TYPE},
        )

    page = resources.files("deepsearch_stream").joinpath("static/index.html")

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    async def index() -> Response:
        return Response(page.read_bytes(), headers={"content-type": "text/html; charset=utf-8"})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        where = f"{request.method} {request.url.path}"
        if exc.status_code == 404:
            return _error(404, "not_found", f"no route for {where}")
        if exc.status_code == 405:
            # Every route of the path (Starlette names only the first one's), sorted:
            # Starlette builds Allow from a set, whose order varies by process.
            methods = {
                m
                for r in app.routes
                if isinstance(r, APIRoute) and r.path == request.url.path
                for m in r.methods or ()
            }
            allow = ", ".join(sorted(methods)) or (exc.headers or {}).get("Allow", "")
            body = not_allowed_body(request.method, request.url.path, allow)
            return _json_error(405, body, {**(exc.headers or {}), "Allow": allow})
        return _error(exc.status_code, "http_error", str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_request", str(exc))

    return app


def __getattr__(name: str) -> Any:
    # `app` is built on first access, so importing this module stays cheap and side-effect free.
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)
