"""Bad requests against both servers: the same status and JSON error body from each,
the code and field the contract names, and a server that keeps serving afterwards."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from servers import Server, running, write_corpus

JSON = "application/json"
Q = "What is Tokio?"
GOOD = {"query": Q, "request_id": "good-1", "stream": False, "max_loop": 1}


def body(value: Any, path: str = "/deepsearch") -> dict[str, Any]:
    return {"method": "POST", "path": path, "content": json.dumps(value).encode(), "type": JSON}


def raw(
    content: bytes, content_type: str | None = JSON, path: str = "/deepsearch"
) -> dict[str, Any]:
    return {"method": "POST", "path": path, "content": content, "type": content_type}


# name: (request, status, code, field)
CASES: dict[str, tuple[dict[str, Any], int, str, str | None]] = {
    # Not a JSON object at all.
    "empty-body": (raw(b""), 400, "invalid_json", None),
    "whitespace-body": (raw(b" \n"), 400, "invalid_json", None),
    "not-json": (raw(b"{query: 1}"), 400, "invalid_json", None),
    "truncated-json": (raw(b'{"query": "q"'), 400, "invalid_json", None),
    "invalid-utf8": (raw(b'{"query": "\xc3\x28"}'), 400, "invalid_json", None),
    "utf8-bom": (raw(b'\xef\xbb\xbf{"query": "q"}'), 400, "invalid_json", None),
    "deeply-nested": (raw(b"[" * 10_000 + b"]" * 10_000), 400, "invalid_json", None),
    "array": (body([{"query": Q}]), 422, "invalid_request", None),
    "string": (body("q"), 422, "invalid_request", None),
    "null": (body(None), 422, "invalid_request", None),
    # Fields: missing, empty, huge, wrong types.
    "empty-object": (body({}), 422, "invalid_request", "query"),
    "empty-query": (body({"query": ""}), 422, "invalid_request", "query"),
    "blank-query": (body({"query": " \t\n"}), 422, "invalid_request", "query"),
    "huge-query": (body({"query": "q" * 4097}), 422, "invalid_request", "query"),
    "query-number": (body({"query": 42}), 422, "invalid_request", "query"),
    "query-list": (body({"query": [Q]}), 422, "invalid_request", "query"),
    "query-object": (body({"query": {"q": Q}}), 422, "invalid_request", "query"),
    "request-id-number": (
        body({"query": Q, "request_id": 7}),
        422,
        "invalid_request",
        "request_id",
    ),
    "max-loop-string": (body({"query": Q, "max_loop": "3"}), 422, "invalid_request", "max_loop"),
    "max-loop-float": (body({"query": Q, "max_loop": 2.5}), 422, "invalid_request", "max_loop"),
    "max-loop-bool": (body({"query": Q, "max_loop": True}), 422, "invalid_request", "max_loop"),
    "max-loop-zero": (body({"query": Q, "max_loop": 0}), 422, "invalid_request", "max_loop"),
    "max-loop-negative": (body({"query": Q, "max_loop": -1}), 422, "invalid_request", "max_loop"),
    "max-loop-over": (body({"query": Q, "max_loop": 11}), 422, "invalid_request", "max_loop"),
    "max-loop-i64-max": (
        body({"query": Q, "max_loop": 2**63 - 1}),
        422,
        "invalid_request",
        "max_loop",
    ),
    "max-loop-past-u64": (
        body({"query": Q, "max_loop": 10**30}),
        422,
        "invalid_request",
        "max_loop",
    ),
    "max-loop-camel-negative": (
        body({"query": Q, "maxLoop": -5}),
        422,
        "invalid_request",
        "max_loop",
    ),
    "stream-string": (body({"query": Q, "stream": "false"}), 422, "invalid_request", "stream"),
    "stream-mode-unknown": (
        body({"query": Q, "stream_mode": "loud"}),
        422,
        "invalid_request",
        "stream_mode",
    ),
    "stream-mode-number": (
        body({"query": Q, "stream_mode": 1}),
        422,
        "invalid_request",
        "stream_mode",
    ),
    "stream-mode-unknown-object": (
        body({"query": Q, "streamMode": {"mode": "sometimes"}}),
        422,
        "invalid_request",
        "stream_mode",
    ),
    "stream-mode-token-zero": (
        body({"query": Q, "stream_mode": {"mode": "token", "token": 0}}),
        422,
        "invalid_request",
        "stream_mode",
    ),
    "engines-string": (
        body({"query": Q, "search_engines": "local"}),
        422,
        "invalid_request",
        "search_engines",
    ),
    "engines-unknown": (
        body({"query": Q, "search_engines": ["bing"]}),
        422,
        "invalid_request",
        "search_engines",
    ),
    # request_id: what would reach logs, SSE ids and storage keys.
    "request-id-crlf": (
        body({"query": Q, "request_id": "a\r\nb"}),
        422,
        "invalid_request",
        "request_id",
    ),
    "request-id-lf": (
        body({"query": Q, "requestId": "a\nid: 9"}),
        422,
        "invalid_request",
        "request_id",
    ),
    "request-id-nul": (
        body({"query": Q, "request_id": "a\u0000b"}),
        422,
        "invalid_request",
        "request_id",
    ),
    "request-id-empty": (
        body({"query": Q, "request_id": ""}),
        422,
        "invalid_request",
        "request_id",
    ),
    "request-id-space": (
        body({"query": Q, "request_id": "a b"}),
        422,
        "invalid_request",
        "request_id",
    ),
    "request-id-unicode": (
        body({"query": Q, "request_id": "é"}),
        422,
        "invalid_request",
        "request_id",
    ),
    "request-id-129": (
        body({"query": Q, "request_id": "r" * 129}),
        422,
        "invalid_request",
        "request_id",
    ),
    # Transport: size and content type.
    "oversized": (raw(b'{"query": "' + b"x" * 70_000 + b'"}'), 413, "body_too_large", None),
    "oversized-2mb": (raw(b" " * (2 << 20)), 413, "body_too_large", None),
    "text-plain": (raw(b'{"query": "q"}', "text/plain"), 415, "unsupported_media_type", None),
    "form": (
        raw(b"query=q", "application/x-www-form-urlencoded"),
        415,
        "unsupported_media_type",
        None,
    ),
    "no-content-type": (raw(b'{"query": "q"}', None), 415, "unsupported_media_type", None),
    "json-lookalike": (
        raw(b'{"query": "q"}', "application/jsonx"),
        415,
        "unsupported_media_type",
        None,
    ),
    # The genie-tool route takes the same checks.
    "genie-empty-query": (
        body({"query": "", "requestId": "g"}, "/v1/tool/deepsearch"),
        422,
        "invalid_request",
        "query",
    ),
    "genie-request-id-crlf": (
        body({"query": Q, "requestId": "g\r\n"}, "/v1/tool/deepsearch"),
        422,
        "invalid_request",
        "request_id",
    ),
    "genie-request-id-nul": (
        body({"query": Q, "request_id": "g\u0000"}, "/v1/tool/deepsearch"),
        422,
        "invalid_request",
        "request_id",
    ),
    "genie-max-loop-huge": (
        body({"query": Q, "maxLoop": 10**12}, "/v1/tool/deepsearch"),
        422,
        "invalid_request",
        "max_loop",
    ),
    "genie-text-plain": (
        raw(b'{"query": "q"}', "text/plain", "/v1/tool/deepsearch"),
        415,
        "unsupported_media_type",
        None,
    ),
    # The bench routes' ids become SSE ids too.
    "bench-stream-id-crlf": (
        body({"id": "b\r\nid: 1", "count": 1}, "/bench/stream"),
        400,
        "invalid_request",
        None,
    ),
    "bench-stream-id-nul": (
        body({"id": "b\u0000", "count": 1}, "/bench/stream"),
        400,
        "invalid_request",
        None,
    ),
    "bench-stream-id-long": (
        body({"id": "b" * 129, "count": 1}, "/bench/stream"),
        400,
        "invalid_request",
        None,
    ),
    "bench-idle-id-crlf": (body({"id": "b\r\n"}, "/bench/idle"), 400, "invalid_request", None),
    "bench-idle-id-empty": (body({"id": ""}, "/bench/idle"), 400, "invalid_request", None),
    # Routing.
    "unknown-path": ({"method": "GET", "path": "/nope"}, 404, "not_found", None),
    "wrong-method": ({"method": "PUT", "path": "/deepsearch"}, 405, "method_not_allowed", None),
}

COMPARED_HEADERS = ("content-type", "allow", "retry-after", "www-authenticate")


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--bench-routes"]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


def send(base: str, spec: dict[str, Any]) -> httpx.Response:
    headers = {"content-type": spec["type"]} if spec.get("type") else {}
    return httpx.request(
        spec["method"],
        base + spec["path"],
        content=spec.get("content"),
        headers=headers,
        timeout=30,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_bad_request(pair: dict[str, Server], case: str) -> None:
    spec, status, code, field = CASES[case]
    answers = {name: send(server.url, spec) for name, server in pair.items()}
    seen = {
        name: (r.status_code, {h: r.headers.get(h) for h in COMPARED_HEADERS}, r.content)
        for name, r in answers.items()
    }
    assert seen["fastapi"] == seen["axum"]
    r = answers["axum"]
    assert r.status_code == status, r.content
    assert r.headers["content-type"] == JSON
    error = r.json()["error"]
    assert (error["code"], error["field"]) == (code, field)
    assert error["message"]
    # Still serving: a good search right after.
    for server in pair.values():
        good = httpx.post(server.url + "/deepsearch", json=GOOD, timeout=30)
        assert good.status_code == 200 and good.json()["sources"], good.content
