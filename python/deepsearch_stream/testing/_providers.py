"""Local stand-ins for the third-party services a search calls, speaking their wire
formats, failures included: an HTTP server on a loopback port (``LocalServer``), a
handler base with the reply helpers (``Handler``), OpenAI's chat completions
(``OpenAIHandler``, and ``ModelServer``: a scripted model that fails on demand) and
SearXNG's JSON results (``searxng_results``, and ``SearxngServer``)."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

__all__ = [
    "Handler",
    "LocalServer",
    "ModelServer",
    "OpenAIHandler",
    "SearxngServer",
    "searxng_results",
]


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status: int, value: Any) -> None:
        self.send(status, json.dumps(value).encode())

    def reset(self) -> None:
        """Closes the connection with a reset: no response, or the rest of one, comes."""
        self.wfile.flush()
        linger = struct.pack("ii", 1, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.close_connection = True
        self.connection.close()


class LocalServer:
    """Serves `handler` on a free loopback port, from a thread, until ``close``."""

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def searxng_results(*hits: tuple[str, str, str]) -> dict[str, Any]:
    """SearXNG's JSON answer with `hits` as (title, url, content)."""
    results = [{"title": t, "url": u, "content": c} for t, u, c in hits]
    return {"results": results}


class OpenAIHandler(Handler):
    """``POST /v1/chat/completions``: a subclass answers each request by the phase of the
    loop that sent it (``plan``, ``judge``, or the streamed ``answer``)."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "plan web searches" in request["messages"][0]["content"]:
            phase = "plan"
        else:
            phase = "answer" if request.get("stream") else "judge"
        self.respond(phase, request)

    def respond(self, phase: str, request: dict[str, Any]) -> None:
        raise NotImplementedError

    def reply(self, content: str) -> None:
        """A whole (non-streamed) completion."""
        message = {"role": "assistant", "content": content}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "fake"}
        self.send_json(200, {**body, "choices": [choice]})

    def error(self, status: int, message: str, kind: str = "server_error") -> None:
        self.send_json(status, {"error": {"message": message, "type": kind}})

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()

    def event(self, value: Any) -> None:
        self.wfile.write(f"data: {json.dumps(value)}\n\n".encode())
        self.wfile.flush()

    def piece(self, content: str) -> None:
        """One streamed chunk of the answer."""
        delta = {"content": content}
        self.event({"choices": [{"index": 0, "delta": delta, "finish_reason": None}]})

    def end_stream(self) -> None:
        self.event({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        self.wfile.write(b"data: [DONE]\n\n")


_QUESTION = re.compile(r"^Question: (.*)$", re.M)


@dataclass
class _Script:
    answer: list[str] = field(default_factory=lambda: ["No answer was scripted."])
    queries: list[str] | None = None
    enough: bool = True
    faults: dict[str, tuple[str, int]] = field(default_factory=dict)


class ModelServer:
    """An OpenAI-compatible model (``POST {url}/chat/completions``) on a loopback port.

    Planning replies ``{"queries": ...}`` (default: the question itself), judging says
    the results are enough (``enough=False``: ask for another round), and the answer
    streams the scripted pieces, then ``[DONE]``. ``fail(...)`` makes a phase fail
    instead: ``"500"`` (an HTTP 500 with OpenAI's error body), ``"reset"`` (the
    connection reset; in the answer after ``after`` pieces) or ``"error_chunk"`` (an
    ``{"error": ...}`` chunk in the answer stream after ``after`` pieces). ``requests``
    holds every request body received, with its ``phase``.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self._script = _Script()
        self._lock = threading.Lock()
        owner = self

        class _Handler(OpenAIHandler):
            def respond(self, phase: str, request: dict[str, Any]) -> None:
                owner._respond(self, phase, request)

        self._server = LocalServer(_Handler)
        #: The base URL to configure as the model's ``base_url`` (it ends in ``/v1``).
        self.url = self._server.url + "/v1"

    def script(
        self,
        answer: Sequence[str] | str,
        *,
        queries: Sequence[str] | None = None,
        enough: bool = True,
    ) -> None:
        """What the model says from now on (failures set by ``fail`` are cleared)."""
        pieces = [answer] if isinstance(answer, str) else list(answer)
        with self._lock:
            self._script = _Script(pieces, list(queries) if queries is not None else None, enough)

    def fail(self, how: str, *, phase: str = "answer", after: int = 1) -> None:
        """Make ``phase`` fail ``how`` from now on (see the class docstring)."""
        if how not in ("500", "reset", "error_chunk"):
            raise ValueError(f"unknown fault {how!r}: expected '500', 'reset' or 'error_chunk'")
        if phase not in ("plan", "judge", "answer"):
            raise ValueError(f"unknown phase {phase!r}: expected 'plan', 'judge' or 'answer'")
        if how == "error_chunk" and phase != "answer":
            raise ValueError("an error chunk needs a stream: only phase='answer' streams")
        with self._lock:
            self._script.faults[phase] = (how, after)

    def close(self) -> None:
        self._server.close()

    def _respond(self, handler: OpenAIHandler, phase: str, request: dict[str, Any]) -> None:
        with self._lock:
            script = self._script
            self.requests.append({"phase": phase, **request})
        fault = script.faults.get(phase)
        if fault is not None and (fault[0] == "500" or phase != "answer"):
            if fault[0] == "500":
                handler.error(500, "the model failed (scripted)")
            else:
                handler.reset()
            return
        if phase == "plan":
            found = _QUESTION.search(request["messages"][1]["content"])
            queries = script.queries
            if queries is None:
                queries = [found.group(1)] if found else []
            handler.reply(json.dumps({"queries": queries}))
        elif phase == "judge":
            verdict = {"is_answer": script.enough, "rewrite_query": None, "reason": "scripted"}
            handler.reply(json.dumps(verdict))
        else:
            handler.start_stream()
            for n, piece in enumerate(script.answer):
                if fault is not None and n == fault[1]:
                    if fault[0] == "reset":
                        handler.reset()
                    else:
                        handler.event({"error": {"message": "scripted", "type": "server_error"}})
                    return
                handler.piece(piece)
            handler.end_stream()


class SearxngServer:
    """A SearXNG instance's JSON API (``GET {url}/search?q=...&format=json``) on a
    loopback port: every query gets the hits ``add``-ed so far. ``fail(status)`` answers
    that status instead (``fail(None)`` resets the connection; ``ok()`` heals it).
    ``queries`` holds every query received."""

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._hits: list[tuple[str, str, str]] = []
        self._fault: tuple[bool, int | None] = (False, None)
        self._lock = threading.Lock()
        owner = self

        class _Handler(Handler):
            def do_GET(self) -> None:
                owner._respond(self)

        self._server = LocalServer(_Handler)
        #: The base URL to set as ``SEARXNG_URL``.
        self.url = self._server.url

    def add(self, title: str, url: str, content: str) -> None:
        """One more hit in every answer."""
        with self._lock:
            self._hits.append((title, url, content))

    def fail(self, status: int | None = 500) -> None:
        with self._lock:
            self._fault = (True, status)

    def ok(self) -> None:
        with self._lock:
            self._fault = (False, None)

    def close(self) -> None:
        self._server.close()

    def _respond(self, handler: Handler) -> None:
        url = urlparse(handler.path)
        query = parse_qs(url.query).get("q", [""])[0]
        with self._lock:
            self.queries.append(query)
            hits = list(self._hits)
            failing, status = self._fault
        if url.path != "/search":
            handler.send_json(404, {"error": "not found"})
        elif failing and status is None:
            handler.reset()
        elif status is not None:
            handler.send(status, b"<html><body>Internal Server Error</body></html>", "text/html")
        else:
            handler.send_json(200, {"query": query, **searxng_results(*hits)})
