"""proxy(): relaying an upstream SSE answer, failures as error + [DONE], and hanging up
on the upstream when the consumer goes away."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest

from conftest import frames, message
from deepsearch_stream import ConfigError, EventStream, proxy

DONE = b"data: [DONE]\n\n"

Respond = Callable[[asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Upstream:
    """A loopback HTTP/1.1 server standing in for a deepsearch service: records each
    request, answers it with `respond`, then holds the connection until the client
    closes it and records when that happened (`time.monotonic()`)."""

    respond: Respond
    url: str = ""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    closed_at: list[float] = field(default_factory=list)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            headers = {}
            for line in lines:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append((request_line, headers, body))
            await self.respond(writer)
            while await reader.read(4096):
                pass
            self.hung_up()
        except (ConnectionError, asyncio.IncompleteReadError):
            self.hung_up()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def hung_up(self) -> None:
        self.closed_at.append(time.monotonic())
        self.closed.set()


@asynccontextmanager
async def upstream(respond: Respond) -> AsyncIterator[Upstream]:
    up = Upstream(respond)
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    up.url = f"http://127.0.0.1:{port}/v1/deepsearch"
    async with server:
        try:
            yield up
        finally:
            # Python 3.11's server does not wait for its connections: do it here, so none
            # outlives the test's event loop.
            pending = {t for t in up.tasks if not t.done()}
            if pending:
                _, stuck = await asyncio.wait(pending, timeout=2)
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*stuck, return_exceptions=True)


def answer(status: str, content_type: str, chunks: list[bytes], *, hold: bool = False) -> Respond:
    """A chunked response sending `chunks` one by one, then ending the body (or, with
    `hold`, sending nothing more)."""

    async def respond(writer: asyncio.StreamWriter) -> None:
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        )
        for chunk in chunks:
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.005)
        if not hold:
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return respond


async def collect(stream: EventStream) -> list[bytes]:
    out: list[bytes] = []
    async for chunk in stream:
        out.extend(frames(chunk))
    return out


async def test_relays_events_in_order_under_own_ids() -> None:
    chunks = [
        b": hello\n\n",
        b"data: heartbeat\n\n",
        'id: 7\ndata: {"type": "status", "data": "开始"}\n\n'.encode(),
        b"data: line one\r\ndata: line two\r\n\r\n",
        b"data: [DONE]\n\n",
    ]
    async with upstream(answer("200 OK", "text/event-stream", chunks)) as up:
        stream = proxy(
            up.url,
            {"query": "rust", "n": [1, 2]},
            request_id="req-9",
            headers={"Authorization": "Bearer t", "Last-Event-ID": "6"},
            heartbeat=None,
        )
        assert stream.request_id == "req-9"
        got = await collect(stream)
        await asyncio.wait_for(up.closed.wait(), 2)
    assert got == [
        'data: {"type": "status", "data": "开始"}\nid: 1\n\n'.encode(),
        b"data: line one\ndata: line two\nid: 2\n\n",
        DONE,
    ]
    [(request_line, headers, body)] = up.requests
    assert request_line == "POST /v1/deepsearch HTTP/1.1"
    assert json.loads(body) == {"query": "rust", "n": [1, 2]}
    assert headers["content-type"] == "application/json"
    assert headers["accept"] == "text/event-stream"
    assert headers["authorization"] == "Bearer t"
    assert headers["last-event-id"] == "6"


@pytest.mark.parametrize("body", [b'{"q": 1}', '{"q": 1}', bytearray(b'{"q": 1}')])
async def test_bytes_and_str_bodies_are_sent_as_they_are(body: bytes | str | bytearray) -> None:
    async with upstream(answer("200 OK", "text/event-stream", [DONE])) as up:
        assert await collect(proxy(up.url, body)) == [DONE]
    assert up.requests[0][2] == b'{"q": 1}'


@pytest.mark.parametrize(
    ("respond", "code", "text"),
    [
        (
            answer("500 Internal Server Error", "application/json", [b'{"error": "boom"}']),
            "upstream_status",
            'upstream answered 500 Internal Server Error: {"error": "boom"}',
        ),
        (
            answer("200 OK", "application/json", [b"{}"]),
            "upstream_protocol",
            "not text/event-stream",
        ),
        (
            answer("200 OK", "text/event-stream", [b"data: partial\n\n"]),
            "upstream_truncated",
            "without [DONE]",
        ),
    ],
)
async def test_a_failing_upstream_ends_with_error_and_done(
    respond: Respond, code: str, text: str
) -> None:
    async with upstream(respond) as up:
        got = await collect(proxy(up.url, {"q": 1}, request_id="r", heartbeat=None))
    assert got[-1] == DONE
    _, error = message(got[-2])
    assert error["type"] == "error"
    assert error["isFinal"] is True
    assert error["requestId"] == "r"
    assert error["data"]["code"] == code
    assert text in error["data"]["message"]


async def test_idle_timeout() -> None:
    stalled = answer("200 OK", "text/event-stream", [b"data: one\n\n"], hold=True)
    async with upstream(stalled) as up:
        got = await collect(proxy(up.url, {}, idle_timeout=0.2, heartbeat=None))
        await asyncio.wait_for(up.closed.wait(), 2)
    assert got[0] == b"data: one\nid: 1\n\n"
    assert message(got[1])[1]["data"]["code"] == "upstream_timeout"
    assert got[2] == DONE


async def test_cancelling_the_consumer_closes_the_upstream_connection() -> None:
    stalled = answer("200 OK", "text/event-stream", [b"data: one\n\n"], hold=True)
    async with upstream(stalled) as up:
        stream = proxy(up.url, {"q": 1})
        first = asyncio.get_running_loop().create_future()

        async def consume() -> None:
            async for chunk in stream:
                if not first.done():
                    first.set_result(chunk)

        consumer = asyncio.create_task(consume())
        assert await asyncio.wait_for(first, 5) == b"data: one\nid: 1\n\n"
        await asyncio.sleep(0.05)  # the consumer now waits for the next chunk
        assert not up.closed.is_set()
        cancelled_at = time.monotonic()
        consumer.cancel()
        await asyncio.wait_for(up.closed.wait(), 2)
        took = up.closed_at[0] - cancelled_at
        with pytest.raises(asyncio.CancelledError):
            await consumer
    assert stream.closed
    assert took < 0.5, took


async def test_setup_errors() -> None:
    with pytest.raises(ConfigError, match="http or https"):
        proxy("ftp://127.0.0.1/x", {})
    with pytest.raises(ConfigError, match="invalid upstream URL"):
        proxy("not a url", {})
    with pytest.raises(ConfigError, match="Content-Length"):
        proxy("http://127.0.0.1:9/x", {}, headers={"Content-Length": "3"})
    with pytest.raises(ConfigError, match="idle_timeout"):
        proxy("http://127.0.0.1:9/x", {}, idle_timeout=0)
    with pytest.raises(ConfigError, match="timeout"):
        proxy("http://127.0.0.1:9/x", {}, timeout=1e300)
    with pytest.raises(TypeError, match="body must be"):
        proxy("http://127.0.0.1:9/x", 42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="out of range float"):
        proxy("http://127.0.0.1:9/x", {"x": float("nan")})
