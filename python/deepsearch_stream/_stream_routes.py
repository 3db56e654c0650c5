"""The service's streaming routes as plain ASGI, served ahead of FastAPI's router.

A response that streams for minutes keeps everything that called it alive: behind
FastAPI's router that is the routing and endpoint frames, the ``Request``, the exit
stacks and the exception-handling wrappers, about 8 KiB per open stream, a third of
what an idle stream costs the whole process (docs/BENCHMARKS.md, table 2). These routes
answer from a middleware placed inside the app's middleware stack, so the server-error
handler and every middleware added after it (auth, CORS) still wrap them, but the
router does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "ClientGone",
    "Handler",
    "StreamRoutes",
    "error_body",
    "header",
    "not_allowed_body",
    "read_body",
    "read_capped",
    "send_json",
]

#: An ASGI endpoint: ``await handler(scope, receive, send)``.
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]

JSON = "application/json"


@dataclass(frozen=True)
class _Route:
    methods: tuple[str, ...]
    handler: Handler


class StreamRoutes:
    """ASGI middleware: the routes it holds are answered here, anything else by ``app``.

    A held path asked with another method gets the same JSON 405 with ``Allow`` that the
    app's own routes give.
    """

    def __init__(self, app: ASGIApp, routes: Mapping[str, tuple[tuple[str, ...], Handler]]) -> None:
        self.app = app
        self.routes = {
            path: _Route(methods, handler)
            for path, (methods, handler) in routes.items()
            if "{" not in path
        }
        # Paths with an `{id}` segment (one whole segment, as axum matches it).
        self.patterns = [
            (re.compile("^" + re.escape(path).replace(r"\{id\}", "(?P<id>[^/]+)") + "$"), route)
            for path, (methods, handler) in routes.items()
            if "{" in path
            for route in [_Route(methods, handler)]
        ]

    def _match(self, scope: Scope) -> _Route | None:
        path = scope["path"]
        route = self.routes.get(path)
        if route is not None:
            return route
        for pattern, candidate in self.patterns:
            found = pattern.match(path)
            if found:
                scope["path_params"] = found.groupdict()
                return candidate
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._match(scope) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
        elif scope["method"] in route.methods:
            await route.handler(scope, receive, send)
        else:
            allow = ", ".join(route.methods)
            body = not_allowed_body(scope["method"], scope["path"], allow)
            await send_json(send, 405, body, {"allow": allow})


def not_allowed_body(method: str, path: str, allow: str) -> bytes:
    """The 405 body, the same for these routes and the app's own."""
    message = f"method {method} is not allowed for {path}; allowed: {allow}"
    return error_body("method_not_allowed", message)


def error_body(code: str, message: str) -> bytes:
    """The contract's error body: ``{"error": {"code", "message", "field": null}}``."""
    body = {"error": {"code": code, "message": message, "field": None}}
    return json.dumps(body, ensure_ascii=False).encode()


async def send_json(
    send: Send, status: int, body: bytes, headers: Mapping[str, str] | None = None
) -> None:
    raw = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive, cap: tuple[int, int] | None) -> bytes | None:
    """The request body read by the core's rule (``Service.body_cap``): the body, or None
    when it is over the cap. Raises ``ClientGone`` when the client left mid-body."""
    if cap is None:
        return None
    limit, drain_to = cap
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        else:
            chunks.clear()
            if size >= drain_to:
                break
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= limit else None


class ClientGone(Exception):
    """The client disconnected before its request was read: nobody to answer."""


async def read_capped(receive: Receive, limit: int) -> bytes:
    """The request body, or its first ``limit + 1`` bytes: enough for the core to refuse it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit or not message.get("more_body", False):
            break
    return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    """A request header as Starlette reads it (Latin-1), or None."""
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None
