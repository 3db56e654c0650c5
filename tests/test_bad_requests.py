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


# (request, status, code, field)
Case = tuple[dict[str, Any], int, str, str | None]


def invalid(request: dict[str, Any], field: str | None) -> Case:
    """A request refused with 422 `invalid_request`, naming `field`."""
    return request, 422, "invalid_request", field


CASES: dict[str, Case] = {
    # Not a JSON object at all.
    "empty-body": (raw(b""), 400, "invalid_json", None),
    "whitespace-body": (raw(b" \n"), 400, "invalid_json", None),
    "not-json": (raw(b"{query: 1}"), 400, "invalid_json", None),
    "truncated-json": (raw(b'{"query": "q"'), 400, "invalid_json", None),
    "invalid-utf8": (raw(b'{"query": "\xc3\x28"}'), 400, "invalid_json", None),
    "utf8-bom": (raw(b'\xef\xbb\xbf{"query": "q"}'), 400, "invalid_json", None),
    "deeply-nested": (raw(b"[" * 10_000 + b"]" * 10_000), 400, "invalid_json", None),
    "array": invalid(body([{"query": Q}]), None),
    "string": invalid(body("q"), None),
    "null": invalid(body(None), None),
    # Fields: missing, empty, huge, wrong types.
    "empty-object": invalid(body({}), "query"),
    "empty-query": invalid(body({"query": ""}), "query"),
    "blank-query": invalid(body({"query": " \t\n"}), "query"),
    "huge-query": invalid(body({"query": "q" * 4097}), "query"),
    "query-number": invalid(body({"query": 42}), "query"),
    "query-list": invalid(body({"query": [Q]}), "query"),
    "query-object": invalid(body({"query": {"q": Q}}), "query"),
    "request-id-number": invalid(body({"query": Q, "request_id": 7}), "request_id"),
    "max-loop-string": invalid(body({"query": Q, "max_loop": "3"}), "max_loop"),
    "max-loop-float": invalid(body({"query": Q, "max_loop": 2.5}), "max_loop"),
    "max-loop-bool": invalid(body({"query": Q, "max_loop": True}), "max_loop"),
    "max-loop-zero": invalid(body({"query": Q, "max_loop": 0}), "max_loop"),
    "max-loop-negative": invalid(body({"query": Q, "max_loop": -1}), "max_loop"),
    "max-loop-over": invalid(body({"query": Q, "max_loop": 11}), "max_loop"),
    "max-loop-i64-max": invalid(body({"query": Q, "max_loop": 2**63 - 1}), "max_loop"),
    "max-loop-past-u64": invalid(body({"query": Q, "max_loop": 10**30}), "max_loop"),
    "max-loop-camel-negative": invalid(body({"query": Q, "maxLoop": -5}), "max_loop"),
    "stream-string": invalid(body({"query": Q, "stream": "false"}), "stream"),
    "stream-mode-unknown": invalid(body({"query": Q, "stream_mode": "loud"}), "stream_mode"),
    "stream-mode-number": invalid(body({"query": Q, "stream_mode": 1}), "stream_mode"),
    "stream-mode-unknown-object": invalid(
        body({"query": Q, "streamMode": {"mode": "sometimes"}}), "stream_mode"
    ),
    "stream-mode-token-zero": invalid(
        body({"query": Q, "stream_mode": {"mode": "token", "token": 0}}), "stream_mode"
    ),
    "engines-string": invalid(body({"query": Q, "search_engines": "local"}), "search_engines"),
    "engines-unknown": invalid(body({"query": Q, "search_engines": ["bing"]}), "search_engines"),
    # request_id: what would reach logs, SSE ids and storage keys.
    "request-id-crlf": invalid(body({"query": Q, "request_id": "a\r\nb"}), "request_id"),
    "request-id-lf": invalid(body({"query": Q, "requestId": "a\nid: 9"}), "request_id"),
    "request-id-nul": invalid(body({"query": Q, "request_id": "a\u0000b"}), "request_id"),
    "request-id-empty": invalid(body({"query": Q, "request_id": ""}), "request_id"),
    "request-id-space": invalid(body({"query": Q, "request_id": "a b"}), "request_id"),
    "request-id-unicode": invalid(body({"query": Q, "request_id": "é"}), "request_id"),
    "request-id-129": invalid(body({"query": Q, "request_id": "r" * 129}), "request_id"),
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
    "genie-empty-query": invalid(
        body({"query": "", "requestId": "g"}, "/v1/tool/deepsearch"), "query"
    ),
    "genie-request-id-crlf": invalid(
        body({"query": Q, "requestId": "g\r\n"}, "/v1/tool/deepsearch"), "request_id"
    ),
    "genie-request-id-nul": invalid(
        body({"query": Q, "request_id": "g\u0000"}, "/v1/tool/deepsearch"), "request_id"
    ),
    "genie-max-loop-huge": invalid(
        body({"query": Q, "maxLoop": 10**12}, "/v1/tool/deepsearch"), "max_loop"
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
