"""Peer (a): the seed's endpoint in pure Python, as the seed writes it.

``POST /deepsearch`` runs the seed's ``DeepSearch.run`` async generator (synthetic
search step) and wraps every chunk in a ``ServerSentEvent``, then ``[DONE]``, in
sse-starlette's ``EventSourceResponse`` with ``ping=15`` and ``data: heartbeat`` pings.
The bench routes of ``bench/CONTRACT.md`` are built the same way.

    python bench/peers/seed_sse_starlette.py --port 0 [--heartbeat 15]
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import FastAPI
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
from sse_starlette import EventSourceResponse, ServerSentEvent


def create_app(heartbeat: float = 15.0, search_delay: float = 0.2) -> FastAPI:
    app = FastAPI(title="seed endpoint (sse-starlette)")
    producers = Producers()

    def respond(chunks: AsyncIterator[str]) -> EventSourceResponse:
        async def _stream() -> AsyncIterator[ServerSentEvent]:
            async for chunk in chunks:
                yield ServerSentEvent(data=chunk)
            yield ServerSentEvent(data="[DONE]")

        return EventSourceResponse(
            _stream(),
            ping_message_factory=lambda: ServerSentEvent(data="heartbeat"),
            ping=heartbeat,
        )

    @app.post("/deepsearch")
    async def post_deepsearch(body: DeepSearchRequest) -> EventSourceResponse:
        deepsearch = DeepSearch(engines=body.search_engines, search_delay=search_delay)
        return respond(
            deepsearch.run(
                query=body.query,
                request_id=body.request_id,
                max_loop=body.max_loop,
                stream=True,
                stream_mode=body.stream_mode,
            )
        )

    seed = DeepSearch()

    @app.post("/bench/stream")
    async def bench_stream(body: BenchStream) -> EventSourceResponse:
        return respond(bench_messages(body, producers.start(body.id), seed))

    @app.post("/bench/idle")
    async def bench_idle(body: BenchIdle) -> EventSourceResponse:
        return respond(wait_forever())

    add_probe(app, producers)
    return app


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    serve(create_app(args.heartbeat, args.search_delay), args, "seed-sse-starlette")
