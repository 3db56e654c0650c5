"""EventStream as the body of real ASGI responses, over a real socket (uvicorn)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.responses import StreamingResponse

from conftest import frames, message, serve
from deepsearch_stream import EventStream
from deepsearch_stream.response import EventStreamResponse

DONE = b"data: [DONE]\n\n"


def make_app(
    wrap: Callable[[EventStream], object], state: dict[str, object], n: int = 5
) -> FastAPI:
    app = FastAPI()

    @app.post("/deepsearch")
    async def deepsearch() -> object:
        stream = EventStream("req-9", heartbeat=0.05)
        state["stream"] = stream

        async def produce() -> None:
            try:
                await stream.send("status", "开始搜索...")
                for i in range(n):
                    await stream.send("progress", f"执行第{i + 1}轮搜索...")
                    await asyncio.sleep(0.01)
                await stream.send("final", {"answer": "done"})
            except asyncio.CancelledError:
                state["cancelled"] = True
                raise

        stream.start(produce())
        return wrap(stream)

    return app


WRAPPERS = {
    "sse-starlette": lambda s: EventSourceResponse(s, ping=0),
    "streaming-response": lambda s: StreamingResponse(s, media_type="text/event-stream"),
    "event-stream-response": lambda s: EventStreamResponse(s),
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
async def test_stream_passes_through_unchanged(wrapper: str) -> None:
    state: dict[str, object] = {}
    async with serve(make_app(WRAPPERS[wrapper], state)) as base, httpx.AsyncClient() as client:
        r = await client.post(f"{base}/deepsearch")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        got = frames(r.content)
    assert got[-1] == DONE
    msgs = [message(f)[1] for f in got if b"\nid: " in f]
    assert [m["type"] for m in msgs] == ["status"] + ["progress"] * 5 + ["final"]
    assert msgs[0]["data"] == "开始搜索..."


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
async def test_client_disconnect_cancels_the_producer(wrapper: str) -> None:
    state: dict[str, object] = {}
    app = make_app(WRAPPERS[wrapper], state, n=10_000)
    async with serve(app) as base, httpx.AsyncClient() as client:
        async with client.stream("POST", f"{base}/deepsearch") as r:
            async for chunk in r.aiter_raw():
                if b"progress" in chunk:
                    break
        # Starlette learns of the disconnect on its next write; a loaded CI machine may
        # take a while to get there, and only that it happens is asserted here.
        for _ in range(500):
            if state.get("cancelled"):
                break
            await asyncio.sleep(0.01)
    assert state.get("cancelled") is True
    stream = state["stream"]
    assert isinstance(stream, EventStream)
    assert stream.closed


async def test_event_stream_response_headers_and_idle_disconnect() -> None:
    app = FastAPI()
    state: dict[str, object] = {}
    finished = asyncio.Event()

    @app.post("/idle")
    async def idle() -> EventStreamResponse:
        # No producer and no heartbeat due for a minute: nothing is ever written, so only
        # the disconnect listener can notice that the client left.
        stream = EventStream("idle-1", heartbeat=60)
        state["stream"] = stream
        await stream.send("status", "started")

        async def note() -> None:
            finished.set()

        return EventStreamResponse(
            stream,
            headers={"Content-Type": "text/event-stream", "X-Extra": "1"},
            background=BackgroundTask(note),
        )

    async with serve(app) as base, httpx.AsyncClient() as client:
        async with client.stream("POST", f"{base}/idle") as r:
            assert r.status_code == 200
            assert r.headers["content-type"] == "text/event-stream"
            assert r.headers["x-extra"] == "1"
            assert "content-length" not in r.headers
            async for chunk in r.aiter_raw():
                assert b'"status"' in chunk
                break
        await asyncio.wait_for(finished.wait(), 10)
    stream = state["stream"]
    assert isinstance(stream, EventStream)
    assert stream.closed
