"""The API key and CORS in front of every route of the FastAPI service.

A plain ASGI middleware (not ``BaseHTTPMiddleware``, which would buffer and detach the
streams): the core's ``Access`` decides, exactly as it does for the axum server, and
this only reads the request head and writes the answer or the extra headers.
"""

from __future__ import annotations

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deepsearch_stream import _core

__all__ = ["AccessMiddleware"]

log = logging.getLogger("deepsearch_stream")

_WANTED = (b"authorization", b"origin", b"access-control-request-method")


def _head(scope: Scope) -> tuple[str, dict[bytes, bytes]]:
    """The raw path (as the axum server sees it: not percent-decoded) and the first
    value of each header the policy reads."""
    raw = scope.get("raw_path")
    path = raw.split(b"?", 1)[0].decode("latin-1") if raw else scope["path"]
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        name = name.lower()
        if name in _WANTED and name not in found:
            found[name] = value
    return path, found


def _encode(headers: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]


class AccessMiddleware:
    def __init__(self, app: ASGIApp, access: _core.Access) -> None:
        self.app = app
        self.access = access

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, headers = _head(scope)
        origin = headers.get(b"origin")
        early = self.access.check(
            scope["method"],
            path,
            headers.get(b"authorization"),
            origin,
            headers.get(b"access-control-request-method"),
        )
        if early is not None:
            status, answer_headers, body = early
            if status >= 400:
                # Never the header itself: it may hold a key.
                log.info("request refused before routing path=%s status=%d", path, status)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": _encode(answer_headers),
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        extra = _encode(self.access.response_headers(origin))
        if not extra:
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
