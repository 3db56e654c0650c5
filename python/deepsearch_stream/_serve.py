"""The FastAPI service's connection layer: the socket, uvicorn's HTTP/1 protocol with the
limits the axum server's serve loop has (src/server/shutdown.rs), and the accept loop.

- The listening socket is a TCP one (``IPPROTO_TCP``), so asyncio turns Nagle off on
  every connection: SSE frames are small and a frame held back for the delayed ACK of the
  one before arrives 40 ms late.
- A request head must arrive within ``header_timeout`` of its first byte (or of the
  connection's start), and an idle keep-alive connection closes after it too.
- At most ``max_connections`` open connections: past it, a connection is answered with a
  503 and closed before anything is read.
- A request with both ``Content-Length`` and ``Transfer-Encoding`` (RFC 9112 §6.1) is read
  as chunked and its connection closed after the response, as is every connection whose
  request body was not read to its end (refused early, timed out); ``Transfer-Encoding``
  on HTTP/1.0 is refused. So bytes after a body never run as a request.
- Out of file descriptors, accepting pauses for a second and is logged once per interval.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from deepsearch_stream._stream_routes import error_body

__all__ = [
    "ConnectionLimits",
    "EventLoop",
    "StripQuery",
    "bind",
    "protocol_class",
    "refusal",
]

log = logging.getLogger("deepsearch_stream")

# How long a refused or closing connection is read (and dropped) after its answer, so the
# client reads the answer instead of a reset caused by its own unread bytes.
LINGER = 2.0
# Seconds between two "out of file descriptors" lines.
EXHAUSTED_LOG_INTERVAL = 10.0
_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


@dataclass(frozen=True)
class ConnectionLimits:
    """``--header-timeout``, ``--body-timeout``, ``--max-connections`` (the axum server's
    ``ConnectionLimits``)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 4096


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket. ``socket.create_server`` makes one with protocol 0, which
    asyncio does not recognise as TCP, so it would leave Nagle on for every connection."""
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    family, kind, proto, _, address = info[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def refusal(max_connections: int) -> bytes:
    """The whole answer to a connection past the cap: the same bytes as the axum server's."""
    body = error_body(
        "too_many_connections",
        f"the server holds its maximum of {max_connections} connections; retry later",
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "retry-after: 1\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


# The request head at most: the axum server's limits (hyper's `max_headers`,
# `max_header_size`); past either, 431.
MAX_HEADERS = 100
MAX_HEAD_BYTES = 64 * 1024


_FOLDED = re.compile(rb"\n[ \t]")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


def _header(event: h11.Request, name: bytes) -> bool:
    return any(key == name for key, _ in event.headers)


class _Connection(h11.Connection):
    """h11's server side with the rules of RFC 9112 h11 leaves to the server, decided as
    hyper decides them, so both servers read a request alike."""

    close_after_response = False
    # Status of the answer to a request that could not be read.
    error_status = 400
    # The bytes of the request head being read (while idle), to find line folding in:
    # h11 joins folded lines, so the parsed head no longer shows it.
    _head = b""

    def receive_data(self, data: bytes) -> None:
        if self.their_state is h11.IDLE and len(self._head) <= MAX_HEAD_BYTES:
            self._head += data
        super().receive_data(data)

    def next_event(self) -> Any:
        try:
            event = super().next_event()
            if isinstance(event, h11.Request):
                event = self._checked(event)
        except h11.RemoteProtocolError as e:
            self.error_status = e.error_status_hint
            raise
        return event

    def _checked(self, event: h11.Request) -> h11.Request:
        head, self._head = self._head.split(b"\r\n\r\n", 1)[0], b""
        if _FOLDED.search(head):
            # Obsolete line folding (RFC 9112 §5.2): refused, as hyper does.
            raise h11.RemoteProtocolError("obsolete line folding in the request head")
        if event.http_version not in (b"1.0", b"1.1"):
            raise h11.RemoteProtocolError("unsupported HTTP version")
        if len(event.headers) > MAX_HEADERS:
            raise h11.RemoteProtocolError("too many headers", error_status_hint=431)
        if any(_CONTROL.search(value) for _, value in event.headers):
            # RFC 9110 §5.5: no control bytes but HTAB in a field value (h11 lets them by).
            raise h11.RemoteProtocolError("a control byte in a header value")
        if _header(event, b"transfer-encoding"):
            if event.http_version == b"1.0":
                raise h11.RemoteProtocolError("Transfer-Encoding on an HTTP/1.0 request")
            if _header(event, b"content-length"):
                self.close_after_response = True
        target = event.target
        if target[:7].lower() == b"http://" or target[:8].lower() == b"https://":
            # Absolute form (RFC 9112 §3.2.2): served by its path, as hyper does.
            rest = target.split(b"//", 1)[1]
            slash = min(i for i in (rest.find(b"/"), rest.find(b"?"), len(rest)) if i >= 0)
            path = rest[slash:]
            target = path if path.startswith(b"/") else b"/" + path
            event = h11.Request(
                method=event.method,
                target=target,
                headers=list(event.headers),
                http_version=event.http_version,
            )
        return event


class _Protocol(H11Protocol):
    limits: ConnectionLimits
    conn: _Connection

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn = _Connection(h11.SERVER, MAX_HEAD_BYTES)
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False
        self._lingering = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            # Not counted, nor shut down with the others: it only gets its answer.
            self._refused = True
            self.transport = transport
            transport.write(refusal(self.limits.max_connections))
            self._linger()
            return
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        if not self._refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused or self._lingering:
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_head_timer()
        else:
            self._cancel_head_timer()

    def eof_received(self) -> None:
        if self._refused or self._lingering:
            self.transport.close()

    def on_response_complete(self) -> None:
        # A body left unread (refused early, timed out) or framed twice: what follows it on
        # the connection cannot be trusted to start a request.
        if self.conn.close_after_response or self.conn.their_state not in (h11.DONE, h11.IDLE):
            self.server_state.total_requests += 1
            self._linger()
            return
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        # What hyper answers a request it cannot read: the status, no body, then closed.
        status = self.conn.error_status
        reason = {400: "Bad Request", 431: "Request Header Fields Too Large"}.get(status, "")
        self.transport.write(
            f"HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode()
        )
        self._linger()

    def _linger(self) -> None:
        """Half-closes after what was written, drops what the client still sends, and
        closes after ``LINGER`` at most."""
        self._lingering = True
        self._cancel_head_timer()
        self._unset_keepalive_if_required()
        if self.transport.is_closing():
            return
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER, self.transport.close)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None and not self.transport.is_closing():
            self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        # As hyper does: no answer, the connection is closed.
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def protocol_class(limits: ConnectionLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol under ``limits``; pass it as ``uvicorn.Config(http=...)``."""
    return type("DeepSearchH11Protocol", (_Protocol,), {"limits": limits})


class _AcceptOnce:
    """The listening socket, as asyncio's accept loop sees it: after the first
    out-of-descriptors failure it reports "nothing to accept", so the loop stops there
    (asyncio retries each of its up to 2048 turns, logging each, and schedules a retry
    per turn: the spin this prevents)."""

    def __init__(self, sock: Any) -> None:
        self.sock = getattr(sock, "sock", sock)
        self.exhausted = False

    def accept(self) -> tuple[socket.socket, Any]:
        if self.exhausted:
            raise BlockingIOError
        try:
            return self.sock.accept()  # type: ignore[no-any-return]
        except OSError as e:
            if e.errno in _EXHAUSTED:
                self.exhausted = True
            raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class EventLoop(asyncio.SelectorEventLoop):
    """asyncio's loop with an accept loop that backs off once when descriptors run out
    and says so once per ``EXHAUSTED_LOG_INTERVAL``."""

    _last_exhausted_log = float("-inf")
    _exhausted_since_log = 0

    def _accept_connection(self, protocol_factory: Any, sock: Any, *args: Any, **kw: Any) -> None:
        super()._accept_connection(protocol_factory, _AcceptOnce(sock), *args, **kw)  # type: ignore[misc]

    def call_exception_handler(self, context: dict[str, Any]) -> None:
        if context.get("message") != "socket.accept() out of system resource":
            super().call_exception_handler(context)
            return
        self._exhausted_since_log += 1
        now = time.monotonic()
        if now - self._last_exhausted_log >= EXHAUSTED_LOG_INTERVAL:
            log.error(
                "accept failed: %s; retrying every second (%d failures since the last line)",
                context.get("exception"),
                self._exhausted_since_log,
            )
            self._last_exhausted_log = now
            self._exhausted_since_log = 0


class StripQuery(logging.Filter):
    """Takes the query string out of uvicorn's access lines: it holds the search
    (``GET /deepsearch?query=...``) and may hold a key."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def strip_access_log_queries() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, StripQuery) for f in access.filters):
        access.addFilter(StripQuery())


def _server_class(base: Any, service: Any) -> Any:
    """uvicorn's Server, ending each open stream properly before it shuts down."""

    def handle_exit(self: Any, sig: int, frame: Any) -> None:
        # Before uvicorn stops waiting on open responses: each stream gets its
        # `shutdown` error and [DONE], so clients know why it ended.
        service.shutdown()
        base.handle_exit(self, sig, frame)

    return type("Server", (base,), {"handle_exit": handle_exit})


def run(app: Any, host: str, port: int, *, log_level: str, shutdown_timeout: float) -> None:
    """Serves ``app`` (from ``create_app``) on ``host:port`` until SIGTERM or Ctrl-C."""
    import uvicorn

    settings = app.state.settings
    limits = ConnectionLimits(
        header_timeout=settings.header_timeout,
        body_timeout=settings.body_timeout,
        max_connections=settings.max_connections,
    )
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app,
        log_level=log_level,
        timeout_graceful_shutdown=int(shutdown_timeout) or None,
        http=protocol_class(limits),
        loop=f"{__name__}:EventLoop",
        # hyper's header timeout runs while a keep-alive connection waits, too.
        timeout_keep_alive=limits.header_timeout,  # type: ignore[arg-type]
    )
    strip_access_log_queries()  # again: uvicorn's Config set its loggers up afresh
    server = _server_class(uvicorn.Server, app.state.service)(config)
    print(f"deepsearch-stream listening on http://{bound_host}:{bound_port}", flush=True)
    server.run(sockets=[sock])
