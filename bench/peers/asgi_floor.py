"""Reference (u): the least a uvicorn stream can cost. A bare ASGI app, no framework:
``POST /bench/idle`` sends the SSE headers, then one task writes ``data: heartbeat``
every ``--heartbeat`` seconds until ``http.disconnect``. Whatever a uvicorn-based stack
spends per idle stream beyond this is its own (framework, response class, stream).

    python bench/peers/asgi_floor.py --port 0 [--heartbeat 10]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from seed_common import parser, serve

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

BEAT = b"data: heartbeat\n\n"
HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
]


def create_app(heartbeat: float) -> Callable[[Message, Receive, Send], Awaitable[None]]:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] != "/bench/idle" or scope["method"] != "POST":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})

        async def beat() -> None:
            while True:
                await asyncio.sleep(heartbeat)
                await send({"type": "http.response.body", "body": BEAT, "more_body": True})

        task = asyncio.create_task(beat())
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return app


if __name__ == "__main__":
    args = parser(__doc__.splitlines()[0]).parse_args()
    serve(create_app(args.heartbeat), args, "asgi-floor")
