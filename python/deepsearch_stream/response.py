"""``EventStreamResponse``: an ``EventStream`` as an ASGI response, with nothing else.

sse-starlette's ``EventSourceResponse`` wraps any iterator: it adds pings, an optional
send timeout and a shutdown watcher, and runs them with the sender and a disconnect
listener as a task group of three tasks per stream. An ``EventStream`` already carries
its ids, heartbeats, timeout and ``[DONE]``, so all it needs from the response is its
bytes sent and the client's departure noticed. This response does exactly that with the
request's own task plus one listener task, which is what makes ten thousand idle
streams cheap to hold (docs/BENCHMARKS.md, table 2).

It is a Starlette ``Response``, so a FastAPI route can return it::

    @app.post("/deepsearch")
    async def deepsearch() -> EventStreamResponse:
        stream = EventStream("req-1", heartbeat=15)
        stream.start(produce(stream))
        return EventStreamResponse(stream)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from deepsearch_stream._core import SSE_HEADERS, EventStream

__all__ = ["EventStreamResponse"]


class EventStreamResponse(Response):
    """Sends ``stream``'s chunks as they come and closes it when the response ends.

    The stream is closed however the response ends: completed, the client gone (an
    ``http.disconnect`` arrives while the stream is open: its producer is cancelled at
    once, not at the next write), the serving task cancelled, or at once for a HEAD
    request. ``background`` runs after that, as with any Starlette response.
    """

    def __init__(
        self,
        stream: EventStream,
        *,
        status_code: int = 200,
        headers: Iterable[tuple[str, str]] | Mapping[str, str] = SSE_HEADERS,
        background: BackgroundTask | None = None,
    ) -> None:
        self.stream = stream
        self.status_code = status_code
        self.background = background
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self.raw_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in pairs]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stream = self.stream
        start = {
            "type": "http.response.start",
            "status": self.status_code,
            "headers": self.raw_headers,
        }
        if scope.get("method") == "HEAD":
            # Headers only: nothing the stream produced would be sent.
            stream.close()
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        listener = asyncio.ensure_future(_close_on_disconnect(receive, stream))
        try:
            await send(start)
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            listener.cancel()
            stream.close()
        if self.background is not None:
            await self.background()


async def _close_on_disconnect(receive: Receive, stream: EventStream) -> None:
    # The request body has been read by the route; what is left to receive is the
    # disconnect (or, from a server that replays it, more empty body messages).
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            stream.close()
            return
