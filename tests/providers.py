"""Local stand-ins for the third-party services the loop calls, speaking their wire
formats, failures included: an HTTP server on a loopback port (``LocalServer``), a
handler base with the reply helpers (``Handler``), OpenAI's chat completions
(``OpenAIHandler``) and SearXNG's JSON results (``searxng_results``)."""

from __future__ import annotations

import json
import socket
import struct
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
