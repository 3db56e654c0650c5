"""Deep search as an MCP tool (``POST /mcp``), driven by the official ``mcp`` Python
client against both servers as real processes: the handshake revisions (2025-11-25
through ``ClientSession.initialize``) and 2026-07-28 (``Client``'s discover), the tool's
listing, a call with progress notifications for every phase, the same answer and sources
from both servers (and from ``/deepsearch``), JSON-RPC errors for bad requests, the API
key, and cancellation measured on an engine that never answers."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import Client, ClientSession, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult, ResourceLink, TextContent

from servers import BACKENDS, HangingEngine, Server, running

KEY = "mcp-test-key"
AUTH = {"authorization": f"Bearer {KEY}"}
Q = "What is Tokio?"
ROUND_1 = "Running search round 1..."
ANSWERING = "Writing the answer..."


@pytest.fixture(scope="module")
def pair(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both servers on the same corpus, behind the same API key."""
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    args += ["--api-key", KEY]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


@asynccontextmanager
async def session(url: str) -> AsyncIterator[ClientSession]:
    """A 2025-revision session: ``initialize`` over Streamable HTTP, with the key."""
    async with httpx2.AsyncClient(headers=AUTH, timeout=httpx2.Timeout(30, read=60)) as http:
        async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                yield s


class Progress:
    """What a progress callback received."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))


def outcome(result: CallToolResult) -> dict[str, Any]:
    """What both servers must agree on: the text, the links, the structured result."""
    assert not result.is_error, result
    text = [c.text for c in result.content if isinstance(c, TextContent)]
    links = [(str(c.uri), c.title) for c in result.content if isinstance(c, ResourceLink)]
    return {"text": text, "links": links, "structured": result.structured_content}


def check_progress(progress: Progress, total: int) -> None:
    values = [p for p, _, _ in progress.seen]
    assert values == sorted(values) and len(set(values)) == len(values), values
    assert {t for _, t, _ in progress.seen} == {total}
    # At least one notification in each phase: every round (max_loop of them), the answer.
    assert {int(p) for p in values} == set(range(total)), progress.seen
    messages = [m for _, _, m in progress.seen]
    assert ROUND_1 in messages and messages[-1] == ANSWERING


def call_on(url: str, mode: str) -> tuple[str, dict[str, Any], Progress]:
    """Lists and calls the tool once through the official client: the negotiated
    version, the outcome and the progress it reported."""

    async def run() -> tuple[str, dict[str, Any], Progress]:
        progress = Progress()
        if mode == "legacy":
            async with session(url) as s:
                init = await s.initialize()
                tools = await s.list_tools()
                assert [t.name for t in tools.tools] == ["deepsearch"]
                tool = tools.tools[0]
                assert tool.input_schema["required"] == ["query"]
                assert set(tool.input_schema["properties"]) == {
                    "query",
                    "max_loop",
                    "search_engines",
                }
                assert tool.output_schema is not None
                assert tool.output_schema["required"] == ["answer", "sources"]
                await s.send_ping()
                result = await s.call_tool(
                    "deepsearch", {"query": Q, "max_loop": 1}, progress_callback=progress
                )
                return init.protocol_version, outcome(result), progress
        async with httpx2.AsyncClient(headers=AUTH, timeout=60) as http:
            transport = streamable_http_client(url + "/mcp", http_client=http)
            async with Client(transport, mode="auto") as client:
                tools = await client.list_tools()
                assert [t.name for t in tools.tools] == ["deepsearch"]
                result = await client.call_tool(
                    "deepsearch", {"query": Q, "max_loop": 1}, progress_callback=progress
                )
                return client.protocol_version, outcome(result), progress

    return anyio.run(run)


def test_the_official_client_gets_the_same_answer_from_both_servers(
    pair: dict[str, Server],
) -> None:
    got = {}
    for name, server in pair.items():
        for mode in ("legacy", "auto"):
            version, result, progress = call_on(server.url, mode)
            assert version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
            check_progress(progress, total=2)
            got[name, mode] = result
    first = got["axum", "legacy"]
    assert all(result == first for result in got.values()), got
    structured = first["structured"]
    assert "Tokio" in structured["answer"] and "[1]" in structured["answer"]
    assert first["text"] == [structured["answer"]]
    assert first["links"] == [(s["url"], s["title"]) for s in structured["sources"]]
    assert structured["sources"][0]["url"] == "https://tokio.rs/"
    # The same search as the seed's route answers.
    body = {"query": Q, "max_loop": 1, "stream": False}
    plain = httpx.post(pair["axum"].url + "/deepsearch", json=body, headers=AUTH).json()
    assert (plain["answer"], plain["sources"]) == (structured["answer"], structured["sources"])


def test_bad_calls_are_json_rpc_errors_through_the_client(pair: dict[str, Server]) -> None:
    async def run(url: str) -> list[tuple[int, str]]:
        errors = []
        async with session(url) as s:
            await s.initialize()
            for name, args in (
                ("nope", {"query": Q}),
                ("deepsearch", {"query": ""}),
                ("deepsearch", {"query": Q, "max_loop": 99}),
                ("deepsearch", {"query": Q, "search_engines": ["bing"]}),
                ("deepsearch", {"query": Q, "colour": "red"}),
            ):
                with pytest.raises(MCPError) as caught:
                    await s.call_tool(name, args)
                errors.append((caught.value.error.code, caught.value.error.message))
        return errors

    got = {name: anyio.run(run, server.url) for name, server in pair.items()}
    assert got["fastapi"] == got["axum"]
    codes = [code for code, _ in got["axum"]]
    assert codes == [-32602] * 5
    messages = [m for _, m in got["axum"]]
    assert "nope" in messages[0] and "query" in messages[1] and "max_loop" in messages[2]
    assert "bing" in messages[3] and "colour" in messages[4]


def test_without_the_key_is_401(pair: dict[str, Server]) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    for server in pair.values():
        r = httpx.post(server.url + "/mcp", json=init)
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"

    async def refused(url: str) -> None:
        async with httpx2.AsyncClient(timeout=30) as http:
            async with streamable_http_client(url + "/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write) as s:
                    with pytest.raises(MCPError):
                        await s.initialize()

    for server in pair.values():
        anyio.run(refused, server.url)


def hanging_server(backend: str, engine: HangingEngine) -> Any:
    args = ["--engines", "searxng", "--heartbeat", "0.2", "--api-key", KEY]
    return running(backend, args, env={"SEARXNG_URL": engine.url})


def wait_closed(engine: HangingEngine, since: float) -> float:
    """Seconds from ``since`` until the engine's request was dropped."""
    deadline = since + 5
    while not engine.closed_at:
        assert time.monotonic() < deadline, "the engine request was never dropped"
        time.sleep(0.002)
    return engine.closed_at[0] - since


CALL = {
    "jsonrpc": "2.0",
    "id": 7,
    "method": "tools/call",
    "params": {"name": "deepsearch", "arguments": {"query": Q}, "_meta": {"progressToken": 1}},
}
HEADERS = {**AUTH, "accept": "application/json, text/event-stream"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_notifications_cancelled_stops_the_search_within_100_ms(
    backend: str, hanging: HangingEngine
) -> None:
    with hanging_server(backend, hanging) as server, httpx.Client(timeout=30) as client:
        url = server.url + "/mcp"
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {}},
        }
        r = client.post(url, json=init, headers=HEADERS)
        assert r.json()["result"]["protocolVersion"] == "2025-06-18"
        headers = {
            **HEADERS,
            "mcp-session-id": r.headers["mcp-session-id"],
            "mcp-protocol-version": "2025-06-18",
        }
        with client.stream("POST", url, json=CALL, headers=headers) as call:
            assert call.status_code == 200
            assert call.headers["content-type"].startswith("text/event-stream")
            chunks = call.iter_bytes()
            seen = next(chunks)
            assert hanging.accepted.wait(5)
            # Another session's cancel of the same id is not this call's.
            other = {**headers, "mcp-session-id": "someone-else"}
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
            cancel["params"] = {"requestId": 7, "reason": "test"}
            assert client.post(url, json=cancel, headers=other).status_code == 202
            time.sleep(0.3)
            assert not hanging.closed_at
            sent = time.monotonic()
            assert client.post(url, json=cancel, headers=headers).status_code == 202
            assert wait_closed(hanging, sent) < 0.1
            # The stream ends, with progress and heartbeats but no response.
            for chunk in chunks:
                seen += chunk
        messages = [json.loads(line[6:]) for line in seen.split(b"\n") if line.startswith(b"data:")]
        assert messages and all(m["method"] == "notifications/progress" for m in messages)
        assert b": heartbeat" in seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_cancelling_through_the_client_stops_the_search(
    backend: str, hanging: HangingEngine
) -> None:
    async def run(url: str) -> float:
        async with session(url) as s:
            await s.initialize()
            with anyio.move_on_after(30) as scope:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(s.call_tool, "deepsearch", {"query": Q})
                    assert await anyio.to_thread.run_sync(hanging.accepted.wait, 5)
                    cancelled = time.monotonic()
                    tg.cancel_scope.cancel()
            assert not scope.cancelled_caught
            return cancelled

    with hanging_server(backend, hanging) as server:
        cancelled = anyio.run(run, server.url)
        assert wait_closed(hanging, cancelled) < 0.1


@pytest.mark.parametrize("backend", BACKENDS)
def test_closing_the_stream_cancels_under_2026_07_28(backend: str, hanging: HangingEngine) -> None:
    modern = json.loads(json.dumps(CALL))
    modern["params"]["_meta"].update(
        {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    )
    headers = {
        **HEADERS,
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "deepsearch",
    }
    with hanging_server(backend, hanging) as server, httpx.Client(timeout=30) as client:
        with client.stream("POST", server.url + "/mcp", json=modern, headers=headers) as call:
            assert call.status_code == 200
            next(call.iter_bytes())
            assert hanging.accepted.wait(5)
            left = time.monotonic()
        assert wait_closed(hanging, left) < 0.1


def closed_port_url() -> str:
    """A loopback URL nothing listens on: every request to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_failed_searches_are_tool_errors_not_protocol_errors(backend: str) -> None:
    """Every engine call failing, or the model failing: ``isError: true`` with the reason."""

    async def call(url: str) -> CallToolResult:
        async with session(url) as s:
            await s.initialize()
            return await s.call_tool("deepsearch", {"query": Q, "max_loop": 1})

    dead = closed_port_url()
    engines = ["--engines", "searxng", "--api-key", KEY]
    with running(backend, engines, env={"SEARXNG_URL": dead}) as server:
        result = anyio.run(call, server.url)
    assert result.is_error and result.structured_content is None
    text = result.content[0]
    assert isinstance(text, TextContent) and "every search engine call failed" in text.text
    # The model fails at its first step, planning, before any engine is asked.
    model = [*engines, "--llm-base-url", dead + "/v1", "--llm-model", "m"]
    with running(backend, model, env={"SEARXNG_URL": dead}) as server:
        result = anyio.run(call, server.url)
    text = result.content[0]
    assert result.is_error and isinstance(text, TextContent)
    assert text.text.startswith("the search failed:"), text.text
