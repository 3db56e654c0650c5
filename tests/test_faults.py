"""Engine and model failures in every phase of the loop, on both servers as real
processes: a model that fails while planning, while judging a round, or before or in the
middle of its streamed answer ends the stream with an ``error`` message and ``[DONE]``; a
search engine that fails (HTTP error, garbage, a dropped connection; in the first round
or only in a later one) becomes ``warning`` messages and the search goes on to its
``final``. Never a broken connection, never a gap in the ids, and both servers send the
same events.

The model is a local OpenAI-compatible server and the engine a local SearXNG, both
speaking their providers' wire formats, failures included. Each case is named in the
question (``fault:<case>``): the fake model plans queries that carry it on to the
engine."""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from test_resume import ids_of
from test_servers import events

from servers import BACKENDS, Server, running

FAULT = re.compile(r"fault:([a-z0-9-]+)")
ROUND = re.compile(r"^Round: (\d+)$", re.M)
ANSWER = ["Tokio is an asynchronous ", "runtime for Rust [1]. ", "It is used for networking."]
OPENAI_ERROR = {"error": {"message": "the model is overloaded", "type": "server_error"}}


def drop_connection(handler: BaseHTTPRequestHandler) -> None:
    """Closes the connection with a reset: no response, or the rest of one, ever comes."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True
    handler.connection.close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_error_json(self, status: int, body: Any = OPENAI_ERROR) -> None:
        self.send(status, json.dumps(body).encode())


class Model(Handler):
    """OpenAI chat completions: plan and judge are JSON replies, the answer a stream."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        system, user = (m["content"] for m in request["messages"][:2])
        match = FAULT.search(user)
        fault = match.group(1) if match else ""
        if "plan web searches" in system:
            self.plan(fault, int(ROUND.search(user).group(1)))  # type: ignore[union-attr]
        elif request.get("stream"):
            self.answer(fault)
        else:
            self.judge(fault)

    def reply(self, content: str) -> None:
        message = {"role": "assistant", "content": content}
        body = {"id": "chatcmpl-1", "object": "chat.completion", "model": "fake", "choices": []}
        body["choices"] = [{"index": 0, "message": message, "finish_reason": "stop"}]
        self.send(200, json.dumps(body).encode())

    def plan(self, fault: str, round_: int) -> None:
        if fault == "plan-500":
            self.send_error_json(500)
        elif fault == "plan-prose":
            self.reply("I would search the web for Tokio.")
        elif fault == "plan-drop":
            drop_connection(self)
        else:
            self.reply(json.dumps({"queries": [f"tokio runtime round {round_} fault:{fault}"]}))

    def judge(self, fault: str) -> None:
        if fault == "judge-429":
            error = {"error": {"message": "Rate limit reached", "type": "requests"}}
            self.send_error_json(429, error)
        elif fault == "judge-401":
            error = {"error": {"message": "Incorrect API key provided", "type": "invalid_key"}}
            self.send_error_json(401, error)
        else:
            enough = fault != "engine-round2"  # that case needs a second round
            self.reply(json.dumps({"is_answer": enough, "rewrite_query": None, "reason": "ok"}))

    def answer(self, fault: str) -> None:
        if fault == "answer-500":
            self.send_error_json(500)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for n, piece in enumerate(ANSWER):
            if n == 2 and fault == "answer-cut":
                return  # the body ends (the connection closes) without [DONE]
            if n == 2 and fault == "answer-reset":
                self.wfile.flush()
                drop_connection(self)
                return
            if n == 2 and fault == "answer-error-chunk":
                self.wfile.write(f"data: {json.dumps(OPENAI_ERROR)}\n\n".encode())
                return
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        stop = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        self.wfile.write(f"data: {json.dumps(stop)}\n\ndata: [DONE]\n\n".encode())


class Engine(Handler):
    """SearXNG's JSON API: ``GET /search?q=...&format=json``."""

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)["q"][0]
        match = FAULT.search(query)
        fault = match.group(1) if match else ""
        if fault == "engine-500" or (fault == "engine-round2" and "round 2" in query):
            self.send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        elif fault == "engine-garbage":
            self.send(200, b"<html>not the JSON API</html>")
        elif fault == "engine-drop":
            drop_connection(self)
        else:
            hit = {"title": "Tokio", "url": "https://tokio.rs/", "content": "Tokio is a runtime."}
            self.send(200, json.dumps({"query": query, "results": [hit]}).encode())


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    model, engine = serve(Model), serve(Engine)
    args = ["--engines", "searxng", "--heartbeat", "30"]
    args += ["--llm-base-url", url_of(model) + "/v1", "--llm-model", "fake"]
    env = {"SEARXNG_URL": url_of(engine)}
    try:
        with running("fastapi", args, env=env) as fastapi, running("axum", args, env=env) as axum:
            yield {"fastapi": fastapi, "axum": axum}
    finally:
        for s in (model, engine):
            s.shutdown()
            s.server_close()


Frame = tuple[str | None, Any]


def search(server: Server, case: str) -> list[Frame]:
    body = {"query": f"What is Tokio? fault:{case}", "request_id": f"f-{case}", "max_loop": 2}
    r = httpx.post(server.url + "/deepsearch", json=body, timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    got = [e for e in events(r.content) if e[1] != "heartbeat"]
    assert got[-1] == (None, "[DONE]"), "the stream was not ended properly"
    assert ids_of(got) == list(range(1, len(got))), "every message numbered, no gap"
    return got


def kinds(frames: list[Frame]) -> list[str]:
    return [data["type"] for _, data in frames if isinstance(data, dict)]


def data_of(frames: list[Frame], kind: str) -> list[Any]:
    return [d["data"] for _, d in frames if isinstance(d, dict) and d["type"] == kind]


MODEL_FAULTS = {
    # case: (error code, words in its message, the message type the search got to)
    "plan-500": ("llm_error", "HTTP 500: the model is overloaded", "progress"),
    "plan-prose": ("llm_error", "no JSON found in: I would search", "progress"),
    "plan-drop": ("llm_error", "Connection reset by peer", "progress"),
    "judge-429": ("llm_error", "HTTP 429: Rate limit reached", "progress"),
    "judge-401": ("llm_unauthorized", "Incorrect API key provided", "progress"),
    "answer-500": ("llm_error", "HTTP 500", "progress"),
    "answer-cut": ("llm_error", "ended early: the server closed the stream before", "answer"),
    "answer-reset": ("llm_error", "ended early: connection failed mid-stream", "answer"),
    "answer-error-chunk": ("llm_error", "mid-stream: the model is overloaded", "answer"),
}


@pytest.mark.parametrize("case", MODEL_FAULTS)
def test_a_model_failure_in_any_phase_ends_in_error_then_done(
    servers: dict[str, Server], case: str
) -> None:
    code, words, reached = MODEL_FAULTS[case]
    runs = {backend: search(servers[backend], case) for backend in BACKENDS}
    got = runs["fastapi"]
    assert runs["axum"] == got, "both servers send the same events"
    types = kinds(got)
    assert types[-1] == "error" and "final" not in types, types
    error = got[-2][1]
    assert error["data"]["code"] == code, error
    assert words in error["data"]["message"], error
    assert error["isFinal"] is True
    assert types[-2] == reached, types
    if case.startswith("plan"):
        assert "plan" not in types
    if case.startswith("judge"):
        assert types.count("intermediate") == 1 and "answer" not in types, types
    if reached == "answer":
        # What the model said before it failed was delivered, cited and in order.
        assert "".join(data_of(got, "answer")) == "".join(ANSWER[:2]).rstrip()


ENGINE_FAULTS = {
    # case: (words in each warning, rounds with warnings)
    "engine-500": ("HTTP 500", [1, 2]),
    "engine-garbage": ("malformed response", [1, 2]),
    "engine-drop": ("Connection reset by peer", [1, 2]),
    "engine-round2": ("HTTP 500", [2]),
}


@pytest.mark.parametrize("case", ENGINE_FAULTS)
def test_an_engine_failure_in_any_round_is_a_warning_and_the_search_ends(
    servers: dict[str, Server], case: str
) -> None:
    words, failing_rounds = ENGINE_FAULTS[case]
    runs = {backend: search(servers[backend], case) for backend in BACKENDS}
    got = runs["fastapi"]
    assert runs["axum"] == got, "both servers send the same events"
    types = kinds(got)
    assert types[-1] == "final" and "error" not in types, types
    warnings = data_of(got, "warning")
    assert warnings, types
    assert all(w["engine"] == "searxng" and words in w["message"] for w in warnings), warnings
    rounds = sorted({int(ROUND_OF.search(w["query"]).group(1)) for w in warnings})  # type: ignore[union-attr]
    assert rounds == failing_rounds
    final = got[-2][1]["data"]
    assert final["loops"] == 2, "a round that found nothing is not judged enough"
    if failing_rounds == [2]:
        # What round 1 found is kept: the answer cites it.
        assert [s["url"] for s in final["sources"]] == ["https://tokio.rs/"]
        assert "[1]" in final["answer"]
    else:
        # Nothing found: no source, and the model's citation of one is taken out.
        assert final["sources"] == [] and "[1]" not in final["answer"]


ROUND_OF = re.compile(r"round (\d+)")
