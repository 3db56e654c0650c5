from __future__ import annotations

import asyncio
import json
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn

from servers import HangingEngine, write_corpus

FRAME_SPLIT = re.compile(rb"(?<=\n\n)")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The three-document corpus of ``servers.CORPUS``, one per test module."""
    return write_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture
def hanging() -> Iterator[HangingEngine]:
    """An engine that never answers (see ``servers.HangingEngine``)."""
    engine = HangingEngine()
    yield engine
    engine.sock.close()


def frames(blob: bytes) -> list[bytes]:
    """Split SSE bytes into whole frames (each ends with a blank line)."""
    out = [f for f in FRAME_SPLIT.split(blob) if f]
    assert all(f.endswith(b"\n\n") for f in out), out
    return out


def sse_events(body: bytes) -> list[tuple[str | None, str]]:
    """``(id or None, data)`` of each frame of an SSE body that carries data, a cut-off
    last one included. A frame without data (a stream's opening ``retry:``/``id:``)
    dispatches no event, as for ``EventSource``, and is left out."""
    out = []
    for frame in FRAME_SPLIT.split(body):
        if not frame.strip(b"\n"):
            continue
        ident, datas = None, []
        for line in frame.decode().split("\n"):
            if line.startswith("id: "):
                ident = line[4:]
            elif line.startswith("data: "):
                datas.append(line[6:])
        if datas:
            out.append((ident, "\n".join(datas)))
    return out


def event_number(ident: str) -> int:
    """The number of an event id (``<key>.<n>`` of a resumable stream, or ``<n>``)."""
    return int(ident.rsplit(".", 1)[-1])


def message(frame: bytes) -> tuple[int, dict]:
    """Parse a `data: {json}` + `id: n` frame (the id is the frame's last line) into
    (id, envelope)."""
    data, head, rest = frame.split(b"\n", 2)
    assert data.startswith(b"data: "), frame
    assert head.startswith(b"id: "), frame
    assert rest == b"\n", frame
    return int(head[4:]), json.loads(data[6:])


@asynccontextmanager
async def serve(app: object) -> AsyncIterator[str]:
    """Serve an ASGI app with uvicorn on a loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
