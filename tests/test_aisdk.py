"""`/api/chat`, the Vercel AI SDK UI message stream, read by the npm `ai` package's own
`DefaultChatTransport` and `readUIMessageStream` under Node (they validate every chunk
against the SDK's schema) from both servers; a stream cut mid-way is resumed through the
transport's `reconnectToStream` (`GET /api/chat/{id}/stream`)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from node import run_node

from servers import BACKENDS, Server, running

Q = "What is Tokio?"


@pytest.fixture(scope="module")
def pair(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


class SlowSearxng:
    """SearXNG's JSON API answering each search after ``delay`` seconds: a search that
    is still running when its client comes back."""

    def __init__(self, delay: float) -> None:
        results = {
            "results": [
                {
                    "title": "Tokio",
                    "url": "https://tokio.rs/",
                    "content": "Tokio is an asynchronous runtime for the Rust language.",
                }
            ]
        }
        body = json.dumps(results).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                time.sleep(delay)
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_transport_reads_the_same_cited_answer_from_both(pair: dict[str, Server]) -> None:
    got = {
        name: run_node("aisdk.mjs", "chat", server.url, f"chat-{name}", Q)
        for name, server in pair.items()
    }
    assert got["fastapi"] == got["axum"]
    answer = got["axum"]
    assert answer["error"] is None
    assert "[1]" in answer["text"] and "Tokio" in answer["text"]
    assert {"id": "1", "url": "https://tokio.rs/", "title": "Tokio"} in answer["sources"]
    assert "data-plan" in answer["data"] and "data-results" in answer["data"]
    assert "data-progress" not in answer["data"], "progress lines are transient"
    chunks = answer["chunks"]
    assert chunks[:2] == ["start", "start-step"] and chunks[-2:] == ["finish-step", "finish"]
    assert chunks.index("text-start") < chunks.index("text-delta") < chunks.index("text-end")


def test_the_stream_header_and_end(pair: dict[str, Server]) -> None:
    body = {
        "id": "raw-1",
        "messages": [{"id": "u", "role": "user", "parts": [{"type": "text", "text": Q}]}],
        "trigger": "submit-message",
    }
    for server in pair.values():
        r = httpx.post(server.url + "/api/chat", json=body, timeout=30)
        assert r.status_code == 200
        assert r.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert r.text.endswith("data: [DONE]\n\n")
        assert "data: heartbeat" not in r.text


def test_nothing_active_is_204(pair: dict[str, Server]) -> None:
    for server in pair.values():
        r = httpx.get(server.url + "/api/chat/no-such-chat/stream", timeout=10)
        assert (r.status_code, r.content) == (204, b"")
        assert run_node("aisdk.mjs", "resume", server.url, "no-such-chat") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cut_stream_is_resumed_whole(backend: str) -> None:
    engine = SlowSearxng(delay=3)
    try:
        # No linger: a search of the other routes would stop as its client left; a chat's
        # runs on (the SDK treats a closed tab as a disconnect, not a stop).
        args = ["--engines", "searxng", "--heartbeat", "30", "--resume-linger", "0"]
        with running(backend, args, env={"SEARXNG_URL": engine.url}) as server:
            got = run_node("aisdk.mjs", "cut", server.url, "chat-cut", Q)
            # After the search has ended, nothing is active any more.
            deadline = time.monotonic() + 10
            while httpx.get(server.url + "/api/chat/chat-cut/stream").status_code != 204:
                assert time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        engine.close()
    assert got["before"][-1] == "data-plan" and "text-delta" not in got["before"]
    after = got["after"]
    assert after is not None, "the search was still active: the resume must find it"
    assert after["error"] is None
    assert after["chunks"][0] == "start" and after["chunks"][-1] == "finish"
    assert "[1]" in after["text"] and "Tokio" in after["text"]
    assert after["sources"][0]["url"] == "https://tokio.rs/"


def test_refusals_and_the_key(pair: dict[str, Server], corpus: Path, tmp_path: Path) -> None:
    bad = {"id": "x", "messages": []}
    got = {
        name: httpx.post(server.url + "/api/chat", json=bad, timeout=10)
        for name, server in pair.items()
    }
    assert got["fastapi"].content == got["axum"].content
    assert got["axum"].status_code == 422
    assert got["axum"].json()["error"]["field"] == "messages"
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--api-key", "k1"]
    with running("axum", args) as server:
        ok = run_node("aisdk.mjs", "chat", server.url, "chat-key", Q, api_key="k1")
        assert "[1]" in ok["text"]
        r = httpx.post(server.url + "/api/chat", json=bad, timeout=10)
        assert r.status_code == 401
