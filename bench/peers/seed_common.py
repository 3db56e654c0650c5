"""What peers (a) and (b) share: the seed's DeepSearch generator with a synthetic search
step, the seed's request model, the bench contract's producers (``bench/CONTRACT.md``)
and a ``serve()`` that starts uvicorn like ``deepsearch-stream serve`` does.

Only the response differs between the peers: sse-starlette's ``EventSourceResponse``
(``seed_sse_starlette.py``) or FastAPI's native SSE (``seed_fastapi_sse.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from fastapi import FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

# ---- the seed -----------------------------------------------------------------------


class DeepSearchRequest(BaseModel):
    """The seed's request body."""

    query: str
    request_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    max_loop: int = 3
    stream: bool = True
    stream_mode: str = "all"
    search_engines: list[str] = Field(default_factory=list)


class DeepSearch:
    """The seed's generator (server-streaming-architecture.md, "流式生成器模式"), with a
    synthetic search step: each round sleeps ``search_delay`` seconds, as if waiting on
    the engines, and returns made-up results.

    One change from the seed: its ``run`` ends with ``return final_result`` when
    ``stream`` is false, which Python rejects inside an async generator; here the final
    message is yielded in both cases.
    """

    def __init__(self, engines: list[str] | None = None, search_delay: float = 0.2) -> None:
        self.engines = engines or ["synthetic"]
        self.search_delay = search_delay

    async def run(
        self,
        query: str,
        request_id: str,
        max_loop: int = 3,
        stream: bool = True,
        stream_mode: str = "all",
    ) -> AsyncIterator[str]:
        if stream:
            yield self._format_stream_message("status", "开始搜索...", request_id)
        search_results = []
        for loop in range(max_loop):
            if stream:
                yield self._format_stream_message(
                    "progress", f"执行第{loop + 1}轮搜索...", request_id
                )
            step_result = await self._search_step(query, loop)
            search_results.append(step_result)
            if stream and stream_mode in ["all", "intermediate"]:
                yield self._format_stream_message("intermediate", step_result, request_id)
        final_result = await self._generate_final_result(search_results)
        yield self._format_stream_message("final", final_result, request_id)

    async def _search_step(self, query: str, loop: int) -> dict[str, Any]:
        await asyncio.sleep(self.search_delay)
        return {
            "loop": loop + 1,
            "query": query,
            "results": [
                {
                    "title": f"{engine} result {i} for {query}",
                    "url": f"https://{engine}.example/{loop}/{i}",
                    "content": f"Synthetic snippet {i} about {query}.",
                }
                for engine in self.engines
                for i in range(3)
            ],
        }

    async def _generate_final_result(self, search_results: list[dict[str, Any]]) -> str:
        hits = sum(len(r["results"]) for r in search_results)
        return f"Synthetic answer from {hits} results in {len(search_results)} rounds."

    def _format_stream_message(self, msg_type: str, data: Any, request_id: str) -> str:
        return json.dumps(
            {"type": msg_type, "data": data, "requestId": request_id, "timestamp": time.time()},
            ensure_ascii=False,
        )


# ---- the bench contract ---------------------------------------------------------------


class BenchStream(BaseModel):
    """``POST /bench/stream``: ``count`` messages (``None``: until the client leaves)."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128)
    count: int | None = Field(default=None, ge=0)
    payload_bytes: int = Field(default=200, ge=0, le=1 << 20)
    interval_ms: float = Field(default=0.0, ge=0)


class BenchIdle(BaseModel):
    """``POST /bench/idle``: no messages, heartbeats only."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex, min_length=1, max_length=128)


@dataclass
class ProducerRecord:
    id: str
    sent: int = 0
    stopped_at_ns: int | None = None
    reason: str | None = None

    def stop(self, reason: str) -> None:
        if self.stopped_at_ns is None:
            self.stopped_at_ns = time.time_ns()
            self.reason = reason

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sent": self.sent,
            "stopped": self.stopped_at_ns is not None,
            "stopped_at_ns": self.stopped_at_ns,
            "reason": self.reason,
        }


class Producers:
    """The latest ``limit`` producers by id, for ``GET /bench/producer``."""

    def __init__(self, limit: int = 4096) -> None:
        self.records: OrderedDict[str, ProducerRecord] = OrderedDict()
        self.limit = limit

    def start(self, id: str) -> ProducerRecord:
        record = ProducerRecord(id)
        self.records[id] = record
        self.records.move_to_end(id)
        while len(self.records) > self.limit:
            self.records.popitem(last=False)
        return record


async def bench_messages(
    body: BenchStream, record: ProducerRecord, seed: DeepSearch
) -> AsyncIterator[str]:
    """The producer of ``/bench/stream``: the seed's envelope around ``{"seq", "text"}``."""
    text = "x" * body.payload_bytes
    interval = body.interval_ms / 1e3
    seq = 0
    try:
        while body.count is None or seq < body.count:
            record.sent = seq + 1
            yield seed._format_stream_message("bench", {"seq": seq, "text": text}, body.id)
            seq += 1
            if interval:
                await asyncio.sleep(interval)
        record.stop("done")
    except (asyncio.CancelledError, GeneratorExit):
        record.stop("cancelled")
        raise
    except BaseException:
        record.stop("error")
        raise
    finally:
        record.stop("cancelled")  # closed without an exception reaching here


async def wait_forever() -> AsyncIterator[str]:
    """The producer of ``/bench/idle``: never sends; the response's pings are all there is."""
    await asyncio.Event().wait()
    yield ""  # pragma: no cover - unreachable, makes this an async generator


def add_probe(app: FastAPI, producers: Producers) -> None:
    @app.get("/bench/producer")
    async def producer(id: str = Query(...)) -> JSONResponse:
        record = producers.records.get(id)
        if record is None:
            return JSONResponse({"error": {"code": "not_found", "message": id}}, 404)
        return JSONResponse(record.as_json())

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})


# ---- running it ------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--heartbeat", type=float, default=15.0, help="seconds between pings (the seed: 15)"
    )
    p.add_argument(
        "--search-delay", type=float, default=0.2, help="the synthetic search step, seconds"
    )
    p.add_argument("--log-level", default="info")
    return p


def serve(app: Any, args: argparse.Namespace, name: str) -> None:
    """uvicorn with its defaults (h11, asyncio, backlog 2048) on an already bound socket,
    so ``--port 0`` works; prints the ``listening on`` line ``bench/run`` waits for."""
    sock = socket.create_server((args.host, args.port), backlog=2048)
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level))
    print(f"{name} listening on http://{host}:{port}", flush=True)
    server.run(sockets=[sock])
    sys.exit(0)
