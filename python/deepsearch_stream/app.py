"""The FastAPI service: the seed's deep-search endpoint on the Rust core.

``create_app(settings)`` builds it; ``app`` is one built from the environment (for
``uvicorn deepsearch_stream.app:app``). Request checks, limits, error bodies, stream
bytes and metrics come from the core's ``Service``, which the axum server uses too, so
both answer every request alike.
"""

from __future__ import annotations

import asyncio
import logging
import os
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


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass
class Settings:
    """Everything the service is configured with; ``from_env()`` reads the same
    ``DEEPSEARCH_*`` variables as the axum server's flags."""

    engines: list[str] = field(default_factory=lambda: ["local"])
    corpus: str | None = None
    cache_dir: str | None = None
    llm: str | Mapping[str, Any] | None = None
    locale: str = "en"
    max_streams: int = 1000
    max_body_bytes: int = 65536
    heartbeat: float | None = 10.0
    stream_timeout: float | None = 3600.0
    upstream: str | None = None
    # Resuming (Last-Event-ID): how long a search outlives its client, how long and how
    # much of its log is kept.
    resume_linger: float = 60.0
    replay_ttl: float = 300.0
    replay_max_bytes: int = 256 << 20
    replay_max_stream_bytes: int = 16 << 20
    # Replay logs in Redis Streams (redis://host:port/db), shared by every instance, so a
    # client can resume on any of them; None: in memory. Redis must answer at start.
    redis_url: str | None = field(default=None, repr=False)
    search_options: dict[str, Any] = field(default_factory=dict)
    # Bench-only routes (bench/CONTRACT.md): never on unless asked for.
    bench_routes: bool = False
    # Every route but /healthz and the page at / needs `Authorization: Bearer <key>`.
    api_key: str | None = field(default=None, repr=False)
    # None: no CORS headers; "*" or comma-separated origins.
    cors_origins: str | None = None
    # The connection layer (`deepsearch-stream serve`; the app itself reads only
    # body_timeout): seconds for a request head and for a body, open connections at most.
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096

    @classmethod
    def from_env(cls) -> Settings:
        engines = _env("DEEPSEARCH_ENGINES", "local") or "local"
        llm: dict[str, Any] = {
            "base_url": _env("DEEPSEARCH_LLM_BASE_URL"),
            "model": _env("DEEPSEARCH_LLM_MODEL"),
            "api_key": _env("DEEPSEARCH_LLM_API_KEY"),
        }
        return cls(
            engines=[e.strip() for e in engines.split(",") if e.strip()],
            corpus=_env("DEEPSEARCH_CORPUS_DIR"),
            cache_dir=_env("DEEPSEARCH_CACHE_DIR"),
            llm={k: v for k, v in llm.items() if v} or None,
            locale=_env("DEEPSEARCH_LOCALE", "en") or "en",
            max_streams=int(_env("DEEPSEARCH_MAX_STREAMS", "1000") or 1000),
            max_body_bytes=int(_env("DEEPSEARCH_MAX_BODY_BYTES", "65536") or 65536),
            heartbeat=float(_env("DEEPSEARCH_HEARTBEAT", "10") or 10),
            stream_timeout=float(_env("DEEPSEARCH_STREAM_TIMEOUT", "3600") or 3600),
            upstream=_env("DEEPSEARCH_UPSTREAM"),
            api_key=_env("DEEPSEARCH_API_KEY"),
            cors_origins=_env("DEEPSEARCH_CORS_ORIGINS"),
            resume_linger=float(_env("DEEPSEARCH_RESUME_LINGER", "60") or 60),
            replay_ttl=float(_env("DEEPSEARCH_REPLAY_TTL", "300") or 300),
            replay_max_bytes=int(_env("DEEPSEARCH_REPLAY_MAX_BYTES", str(256 << 20)) or 0),
            replay_max_stream_bytes=int(
                _env("DEEPSEARCH_REPLAY_MAX_STREAM_BYTES", str(16 << 20)) or 0
            ),
            redis_url=_env("DEEPSEARCH_REDIS_URL"),
            header_timeout=float(_env("DEEPSEARCH_HEADER_TIMEOUT", "10") or 10),
            body_timeout=float(_env("DEEPSEARCH_BODY_TIMEOUT", "30") or 30),
            max_connections=int(_env("DEEPSEARCH_MAX_CONNECTIONS", "4096") or 4096),
            search_options=_budget_from_env(),
        )


def _budget_from_env() -> dict[str, Any]:
    """The budget ceilings and the breaker's cooldown, from the variables the axum
    server's --max-search-calls, --max-llm-tokens, --search-deadline and
    --breaker-cooldown fall back to."""
    options: dict[str, Any] = {
        "breaker_cooldown": float(_env("DEEPSEARCH_BREAKER_COOLDOWN", "30") or 30)
    }
    for name, key, kind in (
        ("DEEPSEARCH_MAX_SEARCH_CALLS", "max_search_calls", int),
        ("DEEPSEARCH_MAX_LLM_TOKENS", "max_llm_tokens", int),
        ("DEEPSEARCH_SEARCH_DEADLINE", "search_deadline", float),
    ):
        value = _env(name)
        if value:
            options[key] = kind(value)
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
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        service.shutdown()
        # The replay logs end with what the clients got, so a resume on another instance
        # reads the same; bounded, as a Redis that stopped answering must not hold us.
        if not await service.recorded(LOG_FLUSH_TIMEOUT):
            log.warning("shutting down with replay logs still being written")

    access = _core.Access(api_key=settings.api_key, cors_origins=settings.cors_origins)
    app = FastAPI(title="deepsearch-stream", lifespan=lifespan)
    app.state.service = service
    app.state.settings = settings
    strip_access_log_queries()
    app.state.search = search

    def streaming(route: str) -> Handler:
        async def answer(scope: Scope, receive: Receive, send: Send) -> None:
            # Parsing (body, or the query string of a GET), resuming, admission, the
            # shutdown rule, logging and metrics are the core's (`Service.start`).
            get = scope["method"] in ("GET", "HEAD")
            body: bytes | None = b""
            timed_out: float | None = None
            if not get:
                declared = (header(scope, b"content-length") or "").strip()
                length = int(declared) if declared.isascii() and declared.isdigit() else None
                try:
                    body = await asyncio.wait_for(
                        read_body(receive, service.body_cap(length)), settings.body_timeout
                    )
                except ClientGone:
                    return
                except asyncio.TimeoutError:
                    # Known to be over the cap: the 413; else the core's 408.
                    body = None
                    if length is None or length <= service.max_body_bytes:
                        timed_out = settings.body_timeout
            status, headers, payload = await service.start(
                route,
                header(scope, b"content-type"),
                body,
                method=scope["method"],
                query=scope.get("query_string", b"").decode("latin-1"),
                last_event_id=header(scope, b"last-event-id"),
                body_timeout=timed_out,
            )
            if isinstance(payload, _core.EventStream):
                await EventStreamResponse(payload, headers=headers)(scope, receive, send)
            else:
                await Response(payload, status_code=status, headers=dict(headers))(
                    scope, receive, send
                )

        return answer

    routes: dict[str, tuple[tuple[str, ...], Handler]] = {
        # HEAD too, as the axum server answers it (and names it in 405's Allow).
        "/deepsearch": (("GET", "HEAD", "POST"), streaming("deepsearch")),
        "/v1/tool/deepsearch": (("POST",), streaming("genie")),
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
