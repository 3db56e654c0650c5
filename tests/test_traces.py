"""OpenTelemetry traces on both servers: with ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or the
traces-only ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) set, each search is exported over
OTLP/HTTP (JSON encoding) as a tree of spans: ``search`` > ``plan`` (> ``model``),
``engine`` per call, ``answer`` (> ``model``), continuing the trace of the request's
W3C ``traceparent``. The collector here is a stand-in that decodes what it receives
the way a collector does: ``ExportTraceServiceRequest`` in OTLP's JSON mapping."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from deepsearch_stream.testing import ModelServer, SearxngServer
from servers import BACKENDS, Server, running

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


class Collector:
    """An OTLP/HTTP receiver on a loopback port: ``POST {path}`` with a JSON
    ``ExportTraceServiceRequest``; keeps each span with its resource's attributes."""

    def __init__(self, path: str) -> None:
        self.spans: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        self.lock = threading.Lock()
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                if self.path != path:
                    self.send_response(404)
                    self.send_header("content-length", "0")
                    self.end_headers()
                    return
                owner.receive(self.headers.get("content-type", ""), json.loads(body))
                answer = b"{}"
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def receive(self, content_type: str, request: dict[str, Any]) -> None:
        with self.lock:
            self.content_types.append(content_type)
            for resource_spans in request["resourceSpans"]:
                resource = attributes(resource_spans["resource"])
                for scope in resource_spans["scopeSpans"]:
                    for span in scope["spans"]:
                        self.spans.append({**span, "resource": resource})

    def trace(self, trace_id: str, names: set[str], timeout: float = 60.0) -> list[dict[str, Any]]:
        """The spans of trace ``trace_id`` once those named ``names`` have all arrived."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                spans = [s for s in self.spans if s["traceId"] == trace_id]
            if names <= {s["name"] for s in spans} or time.monotonic() > deadline:
                return spans
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attributes(holder: dict[str, Any]) -> dict[str, Any]:
    """OTLP JSON attributes (``[{"key", "value": {"stringValue": ...}}]``) as a dict."""
    out: dict[str, Any] = {}
    for attr in holder.get("attributes", []):
        (kind, value), *_ = attr["value"].items()
        out[attr["key"]] = int(value) if kind == "intValue" else value
    return out


@pytest.fixture(scope="module")
def providers() -> Iterator[tuple[ModelServer, SearxngServer]]:
    model, engine = ModelServer(), SearxngServer()
    engine.add("Tokio", "https://tokio.rs/", "Tokio is an asynchronous runtime for Rust.")
    model.script(["Tokio is an async ", "runtime [1]."])
    try:
        yield model, engine
    finally:
        model.close()
        engine.close()


def start(backend: str, providers: tuple[ModelServer, SearxngServer], env: dict[str, str]) -> Any:
    model, engine = providers
    args = ["--engines", "searxng", "--llm-base-url", model.url, "--llm-model", "m"]
    # The batch exporter sends every 100 ms instead of every 5 s.
    env = {"SEARXNG_URL": engine.url, "OTEL_BSP_SCHEDULE_DELAY": "100", **env}
    return running(backend, args, env=env)


def search(server: Server, request_id: str, traceparent: str | None) -> None:
    headers = {"traceparent": traceparent} if traceparent else {}
    body = {"query": "What is Tokio?", "request_id": request_id, "max_loop": 1}
    r = httpx.post(server.url + "/deepsearch", json=body, headers=headers, timeout=60)
    assert r.status_code == 200
    # The last frame is [DONE] (with its id).
    assert r.text.rstrip().rsplit("\n\n", 1)[-1].startswith("data: [DONE]"), r.text[-300:]


SEARCH_SPANS = {"search", "plan", "engine", "model", "answer"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_search_is_one_trace_under_the_requests_traceparent(
    backend: str, providers: tuple[ModelServer, SearxngServer]
) -> None:
    collector = Collector("/v1/traces")
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_SERVICE_NAME": f"svc-{backend}"}
    try:
        with start(backend, providers, env) as server:
            search(server, f"tr-{backend}", TRACEPARENT)
            spans = collector.trace(TRACE_ID, SEARCH_SPANS)
    finally:
        collector.close()
    assert {s["name"] for s in spans} >= SEARCH_SPANS, spans
    assert all(ct.startswith("application/json") for ct in collector.content_types)
    by_id = {s["spanId"]: s for s in spans}
    (root,) = [s for s in spans if s["name"] == "search"]
    # The search continues the caller's trace: its parent is the traceparent's span.
    assert root["parentSpanId"] == PARENT_ID
    assert root["resource"]["service.name"] == f"svc-{backend}"
    assert attributes(root)["max_loop"] == 1
    assert attributes(root)["rounds"] == 1

    def parent(span: dict[str, Any]) -> str:
        return by_id[span["parentSpanId"]]["name"]

    (plan,) = [s for s in spans if s["name"] == "plan"]
    assert parent(plan) == "search"
    assert attributes(plan)["round"] == 1
    (engine,) = [s for s in spans if s["name"] == "engine"]
    assert parent(engine) == "search"
    assert attributes(engine)["engine"] == "searxng"
    assert attributes(engine)["docs"] == 1
    (answer,) = [s for s in spans if s["name"] == "answer"]
    assert parent(answer) == "search"
    models = {parent(s): attributes(s) for s in spans if s["name"] == "model"}
    # The planner's call, and the streamed answer's.
    assert models["plan"]["model"] == "m" and models["plan"]["stream"] is False
    assert models["answer"]["stream"] is True
    for span in spans:
        # Each span lies within its parent's time.
        if span is not root:
            up = by_id[span["parentSpanId"]]
            assert int(up["startTimeUnixNano"]) <= int(span["startTimeUnixNano"])
            assert int(span["endTimeUnixNano"]) <= int(up["endTimeUnixNano"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_traces_endpoint_variable_and_requests_without_a_valid_traceparent(
    backend: str, providers: tuple[ModelServer, SearxngServer]
) -> None:
    collector = Collector("/custom/traces")
    env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": collector.url + "/custom/traces"}
    try:
        with start(backend, providers, env) as server:
            search(server, f"nt-{backend}", None)
            search(server, f"bad-{backend}", "00-not-a-trace-01")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with collector.lock:
                    roots = [s for s in collector.spans if s["name"] == "search"]
                if len(roots) == 2:
                    break
                time.sleep(0.1)
    finally:
        collector.close()
    assert len(roots) == 2, collector.spans
    # No (valid) traceparent: each search is the root of a trace of its own.
    assert all(not r.get("parentSpanId") for r in roots)
    assert len({r["traceId"] for r in roots}) == 2
    assert TRACE_ID not in {r["traceId"] for r in roots}
    default = "deepsearch-stream" if backend == "fastapi" else "deepsearch-server"
    assert roots[0]["resource"]["service.name"] == default
