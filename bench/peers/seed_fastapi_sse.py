"""Peer (b): the seed's endpoint on FastAPI's native SSE (``fastapi.sse``).

The same generator as peer (a); the path operations are async generators declared with
``response_class=EventSourceResponse`` and yield ``ServerSentEvent(raw_data=chunk)``
(the chunks are JSON already), then ``[DONE]``. Keep-alives are FastAPI's own ``: ping``
comments, every 15 s by default; ``--heartbeat`` sets that interval (a module global
in FastAPI, ``fastapi.routing._PING_INTERVAL``).

    python bench/peers/seed_fastapi_sse.py --port 0 [--heartbeat 15]
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import fastapi.routing
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent
from seed_common import (
    BenchIdle,
    BenchStream,
    DeepSearch,
    DeepSearchRequest,
    Producers,
    add_probe,
    bench_messages,
    parser,
    serve,
    wait_forever,
)


def create_app(heartbeat: float = 15.0, search_delay: float = 0.2) -> FastAPI:
    fastapi.routing._PING_INTERVAL = heartbeat  # type: ignore[attr-defined]
    app = FastAPI(title="seed endpoint (fastapi.sse)")
    producers = Producers()
    seed = DeepSearch()

    @app.post("/deepsearch", response_class=EventSourceResponse)
    async def post_deepsearch(body: DeepSearchRequest) -> AsyncIterator[ServerSentEvent]:
        deepsearch = DeepSearch(engines=body.search_engines, search_delay=search_delay)
        async for chunk in deepsearch.run(
            query=body.query,
            request_id=body.request_id,
            max_loop=body.max_loop,
            stream=True,
            stream_mode=body.stream_mode,
        ):
            yield ServerSentEvent(raw_data=chunk)
        yield ServerSentEvent(raw_data="[DONE]")

    @app.post("/bench/stream", response_class=EventSourceResponse)
    async def bench_stream(body: BenchStream) -> AsyncIterator[ServerSentEvent]:
        async for chunk in bench_messages(body, producers.start(body.id), seed):
            yield ServerSentEvent(raw_data=chunk)
        yield ServerSentEvent(raw_data="[DONE]")

    @app.post("/bench/idle", response_class=EventSourceResponse)
    async def bench_idle(body: BenchIdle) -> AsyncIterator[ServerSentEvent]:
        async for chunk in wait_forever():
            yield ServerSentEvent(raw_data=chunk)
        yield ServerSentEvent(raw_data="[DONE]")

    add_probe(app, producers)
    return app


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    serve(create_app(args.heartbeat, args.search_delay), args, "seed-fastapi-sse")
