"""The FastAPI service and the axum server, as real processes: the same answers to the
same requests (parity), and each one's streaming behaviour under faults."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import event_number, sse_events
from servers import BACKENDS, HangingEngine, Server, running

CONTRACT_HEADERS = (
    "content-type",
    "cache-control",
    "x-accel-buffering",
    "connection",
    "retry-after",
    "allow",
)

PARITY_ARGS = ["--heartbeat", "30", "--max-streams", "4"]


@pytest.fixture(scope="module")
def pair(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both servers on the same corpus and settings."""
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), *PARITY_ARGS]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


def normalize_event(data: str) -> Any:
    """An event's data with what legitimately differs between runs taken out."""
    if data in ("[DONE]", "heartbeat"):
        return data
    msg = json.loads(data)
    if "timestamp" in msg:
        msg["timestamp"] = "<ts>"
    # OpenAI chunks: their time, and the id of a request that brought none (random).
    if "created" in msg:
        msg["created"] = "<ts>"
    if str(msg.get("id", "")).startswith("chatcmpl-"):
        msg["id"] = "chatcmpl-<id>"
    inner = msg.get("data")
    if isinstance(inner, dict) and "elapsed_ms" in inner:
        inner["elapsed_ms"] = "<ms>"
    if isinstance(inner, dict) and isinstance(inner.get("usage"), dict):
        inner["usage"]["elapsed_ms"] = "<ms>"
    return msg


def events(body: bytes) -> list[tuple[str | None, Any]]:
    """Events of an SSE body, ids as their number alone: the per-stream key of
    ``<key>.<n>`` differs on every run (a test that resumes reads it with
    ``sse_events``)."""
    return [
        (None if ident is None else str(event_number(ident)), normalize_event(data))
        for ident, data in sse_events(body)
    ]


def read_across(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    ready: threading.Event,
    action: Callable[[], object],
    wait: float = 5,
) -> tuple[list[tuple[str | None, Any]], float]:
    """Streams a search and, once its first chunk is in and `ready` is set (its engine
    was asked), runs `action` (a signal, a failure) and reads on to the end. Returns the
    frames but heartbeats (ids whole), and the monotonic time `action` began."""
    with client.stream("POST", url, json=body) as r:
        assert r.status_code == 200
        chunks = r.iter_bytes()
        seen = next(chunks)
        assert ready.wait(wait)
        acted_at = time.monotonic()
        action()
        for chunk in chunks:
            seen += chunk
    # Ids whole (`<key>.<n>`), for a test that resumes after reading across.
    got = [(i, normalize_event(d)) for i, d in sse_events(seen) if d != "heartbeat"]
    return got, acted_at


def metric(base: str, sample: str) -> float:
    """One sample's value in the server's /metrics: its name, with labels as printed."""
    text = httpx.get(base + "/metrics").text
    match = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.M)
    assert match, f"no {sample} in {text}"
    return float(match.group(1))


def exchange(base: str, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    r = httpx.request(method, base + path, timeout=30, **kwargs)
    headers = {k: r.headers.get(k) for k in CONTRACT_HEADERS}
    out: dict[str, Any] = {"status": r.status_code, "headers": headers}
    if method == "HEAD":
        out["text"] = r.text
    elif (r.headers.get("content-type") or "").startswith("text/event-stream"):
        out["events"] = [e for e in events(r.content) if e[1] != "heartbeat"]
    elif (r.headers.get("content-type") or "").startswith("application/json"):
        body = json.loads(r.content)
        if isinstance(body, dict) and "elapsed_ms" in body:
            body["elapsed_ms"] = "<ms>"
        if isinstance(body, dict) and body.get("object") == "chat.completion":
            body["id"], body["created"] = "chatcmpl-<id>", "<ts>"
        if isinstance(body, dict) and isinstance(body.get("usage"), dict):
            body["usage"]["elapsed_ms"] = "<ms>"
        out["json"] = body
        if r.status_code >= 400:
            out["raw"] = r.content
    else:
        out["text"] = r.text
    return out


def post(body: Any, path: str = "/deepsearch") -> dict[str, Any]:
    return {"method": "POST", "path": path, "json": body}


def raw(content: bytes, content_type: str | None = "application/json") -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else {}
    return {"method": "POST", "path": "/deepsearch", "content": content, "headers": headers}


Q = "What is Tokio?"
CASES: dict[str, dict[str, Any]] = {
    "all": post({"query": Q, "request_id": "p-all"}),
    "intermediate": post({"query": Q, "request_id": "p-int", "stream_mode": "intermediate"}),
    "final": post({"query": Q, "request_id": "p-fin", "stream_mode": "final"}),
    "token-batches": post(
        {"query": Q, "request_id": "p-tok", "stream_mode": {"mode": "token", "token": 4}}
    ),
    "camel-case": post({"query": Q, "requestId": "p-camel", "maxLoop": 2, "streamMode": "final"}),
    "two-rounds": post(
        {"query": "How long to steep green tea?", "request_id": "p-2", "max_loop": 2}
    ),
    "not-streamed": post({"query": Q, "request_id": "p-json", "stream": False}),
    "engines-subset": post({"query": Q, "request_id": "p-eng", "search_engines": ["local"]}),
    "genie": post({"query": Q, "request_id": "g-1", "maxLoop": 2}, path="/v1/tool/deepsearch"),
    "genie-not-streamed": post(
        {"query": Q, "requestId": "g-2", "stream": False}, path="/v1/tool/deepsearch"
    ),
    "empty-query": post({"query": "", "request_id": "b"}),
    "missing-query": post({"request_id": "b"}),
    "query-not-string": post({"query": ["x"]}),
    "huge-query": post({"query": "q" * 5000}),
    "max-loop-zero": post({"query": Q, "max_loop": 0}),
    "max-loop-huge": post({"query": Q, "max_loop": 10**12}),
    "max-loop-string": post({"query": Q, "max_loop": "3"}),
    "stream-not-bool": post({"query": Q, "stream": "yes"}),
    "unknown-mode": post({"query": Q, "stream_mode": "loud"}),
    "bad-mode-object": post({"query": Q, "stream_mode": {"mode": "token", "token": 0}}),
    "unknown-engine": post({"query": Q, "search_engines": ["bing"]}),
    "request-id-crlf": post({"query": Q, "request_id": "a\r\nb"}),
    "array-body": post([1, 2]),
    "not-json": raw(b"{not json"),
    "not-utf8": raw(b'{"query": "\xff"}'),
    "text-plain": raw(b'{"query": "q"}', "text/plain"),
    "no-content-type": raw(b'{"query": "q"}', None),
    "oversized": raw(b'{"query": "' + b"x" * 70_000 + b'"}'),
    "healthz": {"method": "GET", "path": "/healthz"},
    "not-found": {"method": "GET", "path": "/nope"},
    "wrong-method": {"method": "PUT", "path": "/deepsearch"},
    "genie-get": {"method": "GET", "path": "/v1/tool/deepsearch"},
    "get": {"method": "GET", "path": "/deepsearch?query=What+is+Tokio%3F&request_id=p-get"},
    "get-fields": {
        "method": "GET",
        "path": "/deepsearch?query=What%20is%20Tokio%3F&requestId=p-getf&maxLoop=2"
        "&stream_mode=%7B%22mode%22%3A%22token%22%2C%22token%22%3A3%7D&search_engines=local",
    },
    "get-not-streamed": {
        "method": "GET",
        "path": "/deepsearch?query=What+is+Tokio%3F&request_id=p-getj&stream=false",
    },
    "get-no-query": {"method": "GET", "path": "/deepsearch?request_id=x"},
    "get-bad-max-loop": {"method": "GET", "path": "/deepsearch?query=q&max_loop=ten"},
    "resume-unknown": {
        **post({"query": Q, "request_id": "never-seen"}),
        "headers": {"last-event-id": "3"},
    },
    # An id without the stream's key, or with a key no stream has: as for an unknown one.
    "resume-wrong-key": {
        **post({"query": Q, "request_id": "never-seen-3"}),
        "headers": {"last-event-id": "0123456789abcdef0123456789abcdef.3"},
    },
    "resume-unknown-get": {
        "method": "GET",
        "path": "/deepsearch?query=q&request_id=never-seen-2&last_event_id=0",
    },
    "bad-last-event-id": {
        **post({"query": Q, "request_id": "x"}),
        "headers": {"last-event-id": "-1"},
    },
    # The HTTP layer (issue 17, item 14): GET routes answer HEAD; paths are matched as
    # sent, never percent-decoded. Heads only raw sockets can send: test_connections.py.
    "head-healthz": {"method": "HEAD", "path": "/healthz"},
    "head-metrics": {"method": "HEAD", "path": "/metrics"},
    "head-page": {"method": "HEAD", "path": "/"},
    "percent-encoded-path": {"method": "GET", "path": "/%64eepsearch?query=q"},
    "percent-encoded-healthz": {"method": "GET", "path": "/%68ealthz"},
    "put-healthz": {"method": "PUT", "path": "/healthz"},
    "locale-zh": post({"query": Q, "request_id": "p-zh", "locale": "zh", "stream_mode": "all"}),
    "locale-zh-get": {"method": "GET", "path": "/deepsearch?query=q&request_id=p-zhg&locale=zh-CN"},
    "locale-unknown": post({"query": Q, "locale": "fr"}),
    "locale-not-string": post({"query": Q, "locale": 1}),
    "budget-calls": post(
        {"query": Q, "request_id": "p-bud", "max_loop": 3, "budget": {"max_search_calls": 1}}
    ),
    "budget-not-streamed": post(
        {"query": Q, "request_id": "p-budj", "stream": False, "budget": {"deadline_s": 30}}
    ),
    "budget-zero-calls": post({"query": Q, "budget": {"max_search_calls": 0}}),
    "budget-unknown-key": post({"query": Q, "budget": {"calls": 2}}),
    "budget-not-object": post({"query": Q, "budget": 5}),
    "bad-last-event-id-param": {
        "method": "GET",
        "path": "/deepsearch?query=q&request_id=x&last_event_id=1e3",
    },
    # The protocols of src/api/wire/ (issues 12 and 13).
    "openai-stream": post(
        {"model": "deepsearch", "stream": True, "messages": [{"role": "user", "content": Q}]},
        path="/v1/chat/completions",
    ),
    "openai-usage": post(
        {
            "model": "deepsearch",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": [{"type": "text", "text": Q}]}],
        },
        path="/v1/chat/completions",
    ),
    "openai-whole": post(
        {"model": "deepsearch", "max_loop": 2, "messages": [{"role": "user", "content": Q}]},
        path="/v1/chat/completions",
    ),
    "openai-no-user": post(
        {"model": "deepsearch", "messages": [{"role": "system", "content": Q}]},
        path="/v1/chat/completions",
    ),
    "openai-no-model": post({"messages": []}, path="/v1/chat/completions"),
    "openai-bad-engine": post(
        {"model": "m", "search_engines": ["bing"], "messages": [{"role": "user", "content": Q}]},
        path="/v1/chat/completions",
    ),
    "openai-models": {"method": "GET", "path": "/v1/models"},
    "openai-get-chat": {"method": "GET", "path": "/v1/chat/completions"},
    "aisdk": post(
        {
            "id": "chat-p1",
            "trigger": "submit-message",
            "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": Q}]}],
        },
        path="/api/chat",
    ),
    "aisdk-no-text": post({"id": "chat-p2", "messages": [{"role": "user"}]}, path="/api/chat"),
    "aisdk-bad-id": post(
        {"id": "a b", "messages": [{"role": "user", "parts": [{"type": "text", "text": Q}]}]},
        path="/api/chat",
    ),
    "aisdk-resume-none": {"method": "GET", "path": "/api/chat/chat-none/stream"},
    "aisdk-resume-post": {"method": "POST", "path": "/api/chat/chat-none/stream"},
    "agui": post(
        {
            "threadId": "t1",
            "runId": "run-p1",
            "messages": [{"id": "1", "role": "user", "content": Q}],
            "state": {},
            "tools": [],
            "context": [],
            "forwardedProps": {"max_loop": 1},
        },
        path="/ag-ui",
    ),
    "agui-no-messages": post({"threadId": "t", "runId": "r"}, path="/ag-ui"),
    "agui-bad-props": post(
        {"messages": [{"role": "user", "content": Q}], "forwardedProps": {"max_loop": 99}},
        path="/ag-ui",
    ),
}

#: Paths whose refusals are OpenAI's error object, not the contract's.
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")


@pytest.mark.parametrize("case", list(CASES))
def test_parity(pair: dict[str, Server], case: str) -> None:
    spec = dict(CASES[case])
    method, path = spec.pop("method"), spec.pop("path")
    got = {name: exchange(server.url, method, path, **spec) for name, server in pair.items()}
    assert got["fastapi"] == got["axum"]
    answer = got["axum"]
    assert answer["headers"]["connection"] is None
    if "events" in answer:
        assert answer["status"] == 200
        assert answer["headers"]["content-type"] == "text/event-stream; charset=utf-8"
        assert answer["headers"]["cache-control"] == "no-cache, no-transform"
        assert answer["headers"]["x-accel-buffering"] == "no"
        last_id, last = answer["events"][-1]
        if path.split("?")[0] in ("/deepsearch", "/v1/tool/deepsearch"):
            # [DONE] has an id too, the one after the last message's; but after a refused
            # resume (`expired`), which moves no client's Last-Event-ID.
            assert last == "[DONE]"
            refused = any(
                isinstance(d, dict)
                and d.get("type") == "error"
                and d["data"].get("code") == "expired"
                for _, d in answer["events"]
            )
            assert (last_id is None) == refused, answer["events"]
        else:
            # The other protocols resume without event ids: none is sent.
            assert all(i is None for i, _ in answer["events"]), answer["events"]
            # AG-UI has no end marker; every other protocol here ends with [DONE].
            if path != "/ag-ui":
                assert last == "[DONE]"
        ids = [int(i) for i, _ in answer["events"] if i is not None]
        assert ids == list(range(1, len(ids) + 1))
    if answer["status"] >= 400:
        error = answer["json"]["error"]
        # A 405 (or the gate's 401) is answered before the route: the contract's body.
        if path in OPENAI_PATHS and answer["status"] != 405:
            assert set(error) == {"message", "type", "code", "param"} and error["message"]
        else:
            assert set(error) == {"code", "message", "field"} and error["message"]


def test_parity_covers_the_refusals(pair: dict[str, Server]) -> None:
    """The table above reaches every status the contract names."""
    statuses = {
        case: exchange(
            pair["axum"].url,
            s["method"],
            s["path"],
            **{k: v for k, v in s.items() if k not in ("method", "path")},
        )["status"]
        for case, s in CASES.items()
    }
    assert statuses["empty-query"] == 422 and statuses["request-id-crlf"] == 422
    assert statuses["not-json"] == 400 and statuses["not-utf8"] == 400
    assert statuses["text-plain"] == 415 and statuses["oversized"] == 413
    assert statuses["not-found"] == 404 and statuses["wrong-method"] == 405
    assert statuses["all"] == 200 and statuses["not-streamed"] == 200
    assert statuses["get"] == 200 and statuses["get-no-query"] == 422
    assert statuses["bad-last-event-id"] == 400 and statuses["bad-last-event-id-param"] == 400
    assert statuses["resume-unknown"] == 200 and statuses["resume-wrong-key"] == 200
    assert statuses["head-healthz"] == 200 and statuses["percent-encoded-path"] == 404
    assert statuses["locale-zh"] == 200 and statuses["locale-unknown"] == 422
    assert statuses["openai-stream"] == 200 and statuses["openai-whole"] == 200
    # OpenAI's statuses on /v1: a bad field is 400, as the `openai` client expects.
    assert statuses["openai-no-user"] == 400 and statuses["openai-no-model"] == 400
    assert statuses["openai-get-chat"] == 405 and statuses["aisdk-resume-post"] == 405
    assert statuses["aisdk"] == 200 and statuses["aisdk-no-text"] == 422
    assert statuses["aisdk-resume-none"] == 204
    assert statuses["agui"] == 200 and statuses["agui-bad-props"] == 422


MCP_ACCEPT = {"accept": "application/json, text/event-stream"}
MODERN = "2026-07-28"
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
}


def rpc(method: str | None, params: Any = None, rid: Any = 1, **headers: str) -> dict[str, Any]:
    """A JSON-RPC message to /mcp (a notification when ``rid`` is None)."""
    body: dict[str, Any] = {"jsonrpc": "2.0"}
    if rid is not None:
        body["id"] = rid
    if method is not None:
        body["method"] = method
    if params is not None:
        body["params"] = params
    headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return {"method": "POST", "path": "/mcp", "json": body, "headers": {**MCP_ACCEPT, **headers}}


def modern(method: str, params: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    """A 2026-07-28 request: the envelope in ``_meta``, mirrored in the headers."""
    params = {**(params or {}), "_meta": {**MODERN_META, **(params or {}).get("_meta", {})}}
    mirrored = {"mcp_protocol_version": MODERN, "mcp_method": method}
    return rpc(method, params, **{**mirrored, **headers})


INIT = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t"}}
TOOL_CALL = {"name": "deepsearch", "arguments": {"query": Q, "max_loop": 1}}
MCP_CASES: dict[str, dict[str, Any]] = {
    "initialize": rpc("initialize", INIT),
    "initialize-old-version": rpc("initialize", {**INIT, "protocolVersion": "2024-11-05"}),
    "initialize-no-version": rpc("initialize", {"capabilities": {}}),
    "ping": rpc("ping", rid="p", mcp_protocol_version="2025-11-25"),
    "tools-list": rpc("tools/list", mcp_protocol_version="2025-06-18"),
    "call": rpc("tools/call", {**TOOL_CALL, "_meta": {"progressToken": "t1"}}),
    "call-no-progress": rpc("tools/call", TOOL_CALL, rid=9),
    "call-unknown-tool": rpc("tools/call", {"name": "nope", "arguments": {}}),
    "call-bad-arguments": rpc("tools/call", {"name": "deepsearch", "arguments": {"query": 1}}),
    "call-without-sse": {**rpc("tools/call", TOOL_CALL), "headers": {"accept": "application/json"}},
    "unknown-method": rpc("resources/list"),
    "unsupported-version-header": rpc("ping", mcp_protocol_version="1999-01-01"),
    "notification": rpc("notifications/initialized", rid=None),
    "cancel-unknown": rpc("notifications/cancelled", {"requestId": 5}, rid=None),
    "batch": {**rpc("ping"), "json": [{"jsonrpc": "2.0", "id": 1, "method": "ping"}]},
    "no-jsonrpc": {**rpc("ping"), "json": {"id": 1, "method": "ping"}},
    "no-method": rpc(None),
    "not-json": {
        "method": "POST",
        "path": "/mcp",
        "content": b"{",
        "headers": {**MCP_ACCEPT, "content-type": "application/json"},
    },
    "text-plain": {
        "method": "POST",
        "path": "/mcp",
        "content": b"{}",
        "headers": {**MCP_ACCEPT, "content-type": "text/plain"},
    },
    "oversized": {
        "method": "POST",
        "path": "/mcp",
        "content": b'{"x": "' + b"x" * 70_000 + b'"}',
        "headers": {**MCP_ACCEPT, "content-type": "application/json"},
    },
    "get": {"method": "GET", "path": "/mcp"},
    "delete": {"method": "DELETE", "path": "/mcp"},
    "discover": modern("server/discover"),
    "modern-tools-list": modern("tools/list"),
    "modern-call": modern(
        "tools/call", {**TOOL_CALL, "_meta": {"progressToken": 3}}, mcp_name="deepsearch"
    ),
    "modern-ping": modern("ping"),
    "modern-no-capabilities": rpc(
        "tools/list",
        {"_meta": {"io.modelcontextprotocol/protocolVersion": MODERN}},
        mcp_protocol_version=MODERN,
        mcp_method="tools/list",
    ),
    "modern-method-mismatch": modern("tools/list", mcp_method="ping"),
    "modern-name-mismatch": modern("tools/call", TOOL_CALL, mcp_name="other"),
    "modern-version-mismatch": modern("tools/list", mcp_protocol_version="2025-11-25"),
    "modern-unsupported-version": {
        **modern("tools/list", mcp_protocol_version="2027-01-01"),
        "json": {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/list",
            "params": {
                "_meta": {**MODERN_META, "io.modelcontextprotocol/protocolVersion": "2027-01-01"}
            },
        },
    },
}


@pytest.mark.parametrize("case", list(MCP_CASES))
def test_mcp_parity(pair: dict[str, Server], case: str) -> None:
    spec = dict(MCP_CASES[case])
    method, path = spec.pop("method"), spec.pop("path")
    got = {name: exchange(server.url, method, path, **spec) for name, server in pair.items()}
    assert got["fastapi"] == got["axum"]
    answer = got["axum"]
    if "events" in answer:
        assert answer["headers"]["content-type"] == "text/event-stream; charset=utf-8"
        # Nothing but JSON-RPC: no ids, no [DONE]; the response last.
        assert all(ident is None for ident, _ in answer["events"])
        *notes, last = [data for _, data in answer["events"]]
        assert last["jsonrpc"] == "2.0" and last["result"]["isError"] is False
        assert all(n["method"] == "notifications/progress" for n in notes)
    elif "json" in answer and answer["status"] >= 400 and answer["status"] not in (401, 405):
        assert answer["json"]["jsonrpc"] == "2.0" and isinstance(
            answer["json"]["error"]["code"], int
        )


def test_mcp_parity_covers_the_answers(pair: dict[str, Server]) -> None:
    """The MCP table reaches every answer the transport names, with its code."""
    got = {}
    for case, s in MCP_CASES.items():
        spec = {k: v for k, v in s.items() if k not in ("method", "path")}
        got[case] = exchange(pair["axum"].url, s["method"], s["path"], **spec)

    def code(case: str) -> tuple[int, int]:
        return got[case]["status"], got[case]["json"]["error"]["code"]

    assert got["initialize"]["json"]["result"]["protocolVersion"] == "2025-06-18"
    assert got["initialize-old-version"]["json"]["result"]["protocolVersion"] == "2025-11-25"
    assert got["ping"]["json"] == {"jsonrpc": "2.0", "id": "p", "result": {}}
    assert got["tools-list"]["json"]["result"]["tools"][0]["name"] == "deepsearch"
    assert len(got["call"]["events"]) > 1 and len(got["call-no-progress"]["events"]) == 1
    assert got["notification"]["status"] == 202 and got["cancel-unknown"]["status"] == 202
    assert code("initialize-no-version") == (200, -32602)
    assert code("call-unknown-tool") == (200, -32602) and code("call-bad-arguments") == (
        200,
        -32602,
    )
    assert code("call-without-sse") == (406, -32600)
    assert code("unknown-method") == (200, -32601)
    assert code("unsupported-version-header") == (400, -32600)
    assert code("batch") == (400, -32600) and code("no-jsonrpc") == (400, -32600)
    assert code("no-method") == (400, -32600) and code("not-json") == (400, -32700)
    assert code("text-plain") == (415, -32600) and code("oversized") == (413, -32600)
    assert got["get"]["status"] == 405 and got["get"]["headers"]["allow"] == "POST"
    assert got["delete"]["status"] == 405
    discover = got["discover"]["json"]["result"]
    assert MODERN in discover["supportedVersions"] and discover["resultType"] == "complete"
    assert got["modern-tools-list"]["json"]["result"]["resultType"] == "complete"
    modern_result = got["modern-call"]["events"][-1][1]["result"]
    assert modern_result["resultType"] == "complete"
    assert (
        modern_result["structuredContent"]
        == got["call"]["events"][-1][1]["result"]["structuredContent"]
    )
    assert code("modern-ping") == (404, -32601)
    assert code("modern-no-capabilities") == (400, -32602)
    assert code("modern-method-mismatch") == (400, -32020)
    assert code("modern-name-mismatch") == (400, -32020)
    assert code("modern-version-mismatch") == (400, -32020)
    assert code("modern-unsupported-version") == (400, -32022)
    data = got["modern-unsupported-version"]["json"]["error"]["data"]
    assert data == {"supported": [MODERN], "requested": "2027-01-01"}


def test_a_locale_per_request(pair: dict[str, Server]) -> None:
    """The status lines of one search follow its own `locale`, not the server's."""
    for server in pair.values():
        zh = exchange(server.url, "POST", "/deepsearch", json={"query": Q, "locale": "zh"})
        en = exchange(server.url, "POST", "/deepsearch", json={"query": Q})
        first = {name: got["events"][0][1] for name, got in (("zh", zh), ("en", en))}
        assert first["zh"] != first["en"]
        assert any("\u4e00" <= c <= "\u9fff" for c in json.dumps(first["zh"], ensure_ascii=False))


def test_metrics_have_the_same_names(pair: dict[str, Server]) -> None:
    names = {}
    for name, server in pair.items():
        r = httpx.get(server.url + "/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        names[name] = set(re.findall(r"^# TYPE (\S+)", r.text, re.M))
    assert names["fastapi"] == names["axum"]
    assert "deepsearch_streams_open" in names["axum"]


def slow_server(backend: str, engine: HangingEngine, *extra: str) -> Any:
    # No linger: a search stops as soon as its client leaves (test_resume.py covers
    # searches that wait for their client to come back).
    args = ["--engines", "searxng", "--heartbeat", "0.2", "--resume-linger", "0", *extra]
    return running(backend, args, env={"SEARXNG_URL": engine.url})


@pytest.mark.parametrize("backend", BACKENDS)
def test_heartbeats_then_disconnect_drops_the_engine_request(
    backend: str, hanging: HangingEngine
) -> None:
    with slow_server(backend, hanging) as server, httpx.Client(timeout=30) as client:
        body = {"query": Q, "request_id": "hb-1"}
        with client.stream("POST", server.url + "/deepsearch", json=body) as r:
            assert r.status_code == 200
            seen = b""
            for chunk in r.iter_bytes():
                seen += chunk
                if seen.count(b"data: heartbeat\n\n") >= 2:
                    break
            assert hanging.accepted.wait(5)
            left = time.monotonic()
        # Leaving the `with` closed the connection.
        deadline = left + 5
        while not hanging.closed_at:
            assert time.monotonic() < deadline, "the engine request was never dropped"
            time.sleep(0.002)
        assert hanging.closed_at[0] - left < 0.1
        metrics = client.get(server.url + "/metrics").text
        assert "deepsearch_streams_total 1" in metrics


@pytest.mark.parametrize("backend", BACKENDS)
def test_over_the_stream_limit_is_503_with_retry_after(
    backend: str, hanging: HangingEngine
) -> None:
    with slow_server(backend, hanging, "--max-streams", "1") as server:
        with httpx.Client(timeout=30) as client:
            with client.stream("POST", server.url + "/deepsearch", json={"query": Q}) as held:
                assert held.status_code == 200
                r = client.post(server.url + "/deepsearch", json={"query": Q})
                assert r.status_code == 503
                assert r.headers["retry-after"] == "1"
                assert r.json()["error"]["code"] == "overloaded"
            # The slot is free again once the held stream is gone.
            deadline = time.monotonic() + 5
            while True:
                r = client.post(
                    server.url + "/deepsearch", json={"query": Q, "stream_mode": "final"}
                )
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert r.status_code == 200


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_sends_shutdown_error_and_done(backend: str, hanging: HangingEngine) -> None:
    with slow_server(backend, hanging, "--shutdown-timeout", "5") as server:
        with httpx.Client(timeout=30) as client:
            tail, started = read_across(
                client,
                server.url + "/deepsearch",
                {"query": Q},
                hanging.accepted,
                lambda: server.process.send_signal(15),
            )
        assert tail[-1][1] == "[DONE]"
        error = tail[-2][1]
        assert error["type"] == "error" and error["data"]["code"] == "shutdown"
        assert error["isFinal"] is True
        assert server.process.wait(10) == 0 or server.process.returncode in (0, -15)
        assert time.monotonic() - started < 10


@pytest.fixture(scope="module")
def relays(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both servers relaying to a third (the axum server) over the same corpus."""
    cache = tmp_path_factory.mktemp("relay-cache")
    base = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    with running("axum", base) as upstream:
        relay = [*base, "--upstream", upstream.url]
        with running("fastapi", relay) as fastapi, running("axum", relay) as axum:
            yield {"upstream": upstream, "fastapi": fastapi, "axum": axum}


@pytest.mark.parametrize("case", ["all", "genie", "not-streamed", "empty-query", "final"])
def test_proxy_parity(relays: dict[str, Any], case: str) -> None:
    """Relayed searches look the same from both servers, and like the upstream's own."""
    spec = dict(CASES[case])
    method, path = spec.pop("method"), spec.pop("path")
    got = {name: exchange(s.url, method, path, **spec) for name, s in relays.items()}
    assert got["fastapi"] == got["axum"] == got["upstream"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_unreachable_upstream_is_an_error_message(
    backend: str, corpus: Path, tmp_path: Path
) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    dead = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--upstream", dead]
    with running(backend, args) as server:
        got = exchange(server.url, "POST", "/deepsearch", json={"query": Q, "request_id": "u1"})
    assert got["status"] == 200
    assert got["events"][-1][1] == "[DONE]"
    error = got["events"][-2][1]
    assert error["type"] == "error" and error["isFinal"] is True
    assert error["data"]["code"] == "upstream_unreachable"
    assert dead not in error["data"]["message"], "the upstream address stays private"


#: A search request on each protocol route (a hanging engine holds it open).
PROTOCOL_SEARCHES = {
    "/deepsearch": {"query": Q},
    "/v1/chat/completions": {
        "model": "deepsearch",
        "stream": True,
        "messages": [{"role": "user", "content": Q}],
    },
    "/api/chat": {
        "id": "c-held",
        "messages": [{"role": "user", "parts": [{"type": "text", "text": Q}]}],
    },
    "/ag-ui": {"messages": [{"role": "user", "content": Q}]},
}


def test_protocol_routes_refuse_alike_without_the_key(corpus: Path, tmp_path: Path) -> None:
    """401 with --api-key on every protocol route, the same from both servers."""
    got: dict[str, dict[str, Any]] = {}
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--api-key", "k"]
    for backend in BACKENDS:
        with running(backend, args) as server:
            got[backend] = {
                path: exchange(server.url, "POST", path, json=body)
                for path, body in PROTOCOL_SEARCHES.items()
            }
            got[backend]["/v1/models"] = exchange(server.url, "GET", "/v1/models")
            got[backend]["resume"] = exchange(server.url, "GET", "/api/chat/x/stream")
    assert got["fastapi"] == got["axum"]
    assert {answer["status"] for answer in got["axum"].values()} == {401}


def test_protocol_routes_over_the_stream_limit(hanging: HangingEngine) -> None:
    """Over --max-streams: 503 with Retry-After, 429 on /v1 (OpenAI's overload status,
    which its client raises as RateLimitError); the same from both servers."""
    got: dict[str, dict[str, Any]] = {}
    for backend in BACKENDS:
        with slow_server(backend, hanging, "--max-streams", "1") as server:
            with httpx.Client(timeout=30) as client:
                with client.stream("POST", server.url + "/deepsearch", json={"query": Q}) as held:
                    assert held.status_code == 200
                    got[backend] = {
                        path: exchange(server.url, "POST", path, json=body)
                        for path, body in PROTOCOL_SEARCHES.items()
                        if path != "/deepsearch"
                    }
    assert got["fastapi"] == got["axum"]
    statuses = {path: answer["status"] for path, answer in got["axum"].items()}
    assert statuses == {"/v1/chat/completions": 429, "/api/chat": 503, "/ag-ui": 503}
    assert {answer["headers"]["retry-after"] for answer in got["axum"].values()} == {"1"}


def test_parity_over_the_stream_limit(hanging: HangingEngine) -> None:
    """The 503 of a full server is the same on both: status, Retry-After, body."""
    got = {}
    for backend in BACKENDS:
        with slow_server(backend, hanging, "--max-streams", "1") as server:
            with httpx.Client(timeout=30) as client:
                with client.stream("POST", server.url + "/deepsearch", json={"query": Q}) as held:
                    assert held.status_code == 200
                    got[backend] = exchange(
                        server.url, "POST", "/deepsearch", json={"query": Q, "request_id": "x"}
                    )
    assert got["fastapi"] == got["axum"]
    assert got["axum"]["status"] == 503 and got["axum"]["headers"]["retry-after"] == "1"


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/ag-ui"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_protocols_without_resume_cancel_on_disconnect(
    backend: str, path: str, hanging: HangingEngine
) -> None:
    """OpenAI and AG-UI have no way to resume: the search ends with its connection, even
    with a resume linger, and an idle stream's heartbeat is a comment, not a data line."""
    args = ["--engines", "searxng", "--heartbeat", "0.2", "--resume-linger", "60"]
    with running(backend, args, env={"SEARXNG_URL": hanging.url}) as server:
        with httpx.Client(timeout=30) as client:
            with client.stream("POST", server.url + path, json=PROTOCOL_SEARCHES[path]) as r:
                assert r.status_code == 200
                seen = b""
                for chunk in r.iter_bytes():
                    seen += chunk
                    if seen.count(b": heartbeat\n\n") >= 2:
                        break
                assert hanging.accepted.wait(5)
                left = time.monotonic()
            assert b"data: heartbeat" not in seen
            deadline = left + 5
            while not hanging.closed_at:
                assert time.monotonic() < deadline, "the engine request was never dropped"
                time.sleep(0.002)
            assert hanging.closed_at[0] - left < 1


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat", "/ag-ui"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_shutdown_is_told_in_each_protocol(backend: str, path: str, hanging: HangingEngine) -> None:
    """The stream layer's own ending (here SIGTERM's `shutdown`) reaches each client in
    its protocol's words, never as the seed's envelope."""
    with slow_server(backend, hanging, "--shutdown-timeout", "5") as server:
        with httpx.Client(timeout=30) as client:
            tail, _ = read_across(
                client,
                server.url + path,
                PROTOCOL_SEARCHES[path],
                hanging.accepted,
                lambda: server.process.send_signal(15),
            )
    data = [e[1] for e in tail]
    if path == "/ag-ui":
        assert data[-1] == {"type": "RUN_ERROR", "message": data[-1]["message"], "code": "shutdown"}
        return
    assert data[-1] == "[DONE]"
    if path == "/api/chat":
        assert data[-3]["type"] == "error" and data[-3]["errorText"]
        assert data[-2] == {"type": "finish", "finishReason": "error"}
    else:
        assert data[-2]["error"]["code"] == "shutdown"
    assert all("requestId" not in d for d in data if isinstance(d, dict))
