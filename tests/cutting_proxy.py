"""A loopback HTTP/1.1 proxy that cuts connections at chosen byte offsets, for testing
that third-party SSE clients resume without losing or repeating a frame.

A request whose query has ``cut=N&session=S`` has, on session ``S``'s first
connection, its response cut after ``N`` bytes (headers included; both sockets are
closed then); later connections of the session pass whole. The proxy's own parameters
are taken out of the request, and each request asks the server to close after its
response, so every request has a connection of its own."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit


@dataclass
class Forwarded:
    """One request as the proxy forwarded it."""

    session: str | None
    target: str
    last_event_id: str | None
    cut: int | None
    response: bytearray = field(default_factory=bytearray)


class CuttingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.forwarded: list[Forwarded] = []
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        up: socket.socket | None = None
        try:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            head, _, rest = head.partition(b"\r\n\r\n")
            line, *lines = head.decode("latin-1").split("\r\n")
            method, target, version = line.split(" ")
            path, _, query = target.partition("?")
            params = parse_qsl(query, keep_blank_values=True)
            own = {k: v for k, v in params if k in ("cut", "session")}
            query = urlencode([(k, v) for k, v in params if k not in own])
            target = path + ("?" + query if query else "")
            headers = [h for h in lines if not h.lower().startswith("connection:")]
            last_event_id = next(
                (
                    h.split(":", 1)[1].strip()
                    for h in headers
                    if h.lower().startswith("last-event-id:")
                ),
                None,
            )
            session = own.get("session")
            with self._lock:
                first = session is not None and session not in self._seen
                if session is not None:
                    self._seen.add(session)
            cut = int(own["cut"]) if first and "cut" in own else None
            record = Forwarded(session, target, last_event_id, cut)
            with self._lock:
                self.forwarded.append(record)
            up = socket.create_connection(self.upstream)
            out = "\r\n".join([f"{method} {target} {version}", *headers, "connection: close"])
            up.sendall(out.encode("latin-1") + b"\r\n\r\n" + rest)
            threading.Thread(target=_pump, args=(conn, up), daemon=True).start()
            while True:
                data = up.recv(65536)
                if not data:
                    break
                if cut is not None and len(record.response) + len(data) >= cut:
                    data = data[: cut - len(record.response)]
                    record.response += data
                    conn.sendall(data)
                    break
                record.response += data
                conn.sendall(data)
        except OSError:
            pass
        finally:
            for s in (conn, up):
                if s is not None:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    s.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """The client's side: the request body, until either side closes."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
