"""Bench-only routes, added by ``create_app`` when ``Settings.bench_routes`` is on
(``deepsearch-stream serve --bench-routes``); off by default. The contract is
``bench/CONTRACT.md``: ``POST /bench/stream``, ``POST /bench/idle``,
``GET /bench/producer?id=``. They are served like the service's own streaming routes, so
what the bench measures is what the service does.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from deepsearch_stream import _core
from deepsearch_stream._stream_routes import Handler, error_body, read_capped, send_json
from deepsearch_stream.response import EventStreamResponse

__all__ = ["bench_routes"]

MAX_BODY = 1 << 16
MAX_PAYLOAD = 1 << 20


class _Producer:
    """What ``GET /bench/producer`` reports about one ``/bench/stream`` producer.

    It never holds the stream: a reference here would keep a stream whose client left
    alive, and that is what the cancellation probe is there to catch. So a Rust
    producer's ``sent`` is unknown (``None``) and its ``reason`` is ``"stopped"``.
    """

    def __init__(self, id: str, native: bool = False) -> None:
        self.id = id
        self.sent: int | None = None if native else 0
        self.stopped_at_ns: int | None = None
        self.reason: str | None = None

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


def _parse(raw: bytes) -> dict[str, Any] | str:
    try:
        body = json.loads(raw or b"{}")
    except ValueError as e:
        return f"body is not JSON: {e}"
    if not isinstance(body, dict):
        return "body must be a JSON object"
    rid = body.get("id")
    if rid is None:
        rid = uuid.uuid4().hex
    count = body.get("count")
    payload = body.get("payload_bytes", 200)
    interval = body.get("interval_ms", 0)
    # The same check as every other route's request id: it becomes the SSE ids.
    if not isinstance(rid, str) or not _core.valid_request_id(rid):
        return "id must be 1 to 128 characters from A-Z a-z 0-9 . _ : -"
    if count is not None and (not isinstance(count, int) or count < 0):
        return "count must be a non-negative integer or null"
    if not isinstance(payload, int) or not 0 <= payload <= MAX_PAYLOAD:
        return f"payload_bytes must be an integer in 0..{MAX_PAYLOAD}"
    if not isinstance(interval, int | float) or interval < 0:
        return "interval_ms must be a non-negative number"
    return {"id": rid, "count": count, "payload_bytes": payload, "interval_ms": interval}


def bench_routes(
    *, heartbeat: float | None, timeout: float | None
) -> dict[str, tuple[tuple[str, ...], Handler]]:
    """The bench routes, served like the service's own streaming routes (``StreamRoutes``)."""
    producers: OrderedDict[str, _Producer] = OrderedDict()

    def track(producer: _Producer) -> _Producer:
        producers[producer.id] = producer
        producers.move_to_end(producer.id)
        while len(producers) > 4096:
            producers.popitem(last=False)
        return producer

    async def produce(
        stream: _core.EventStream, record: _Producer, count: int | None, text: str, pause: float
    ) -> None:
        seq = 0
        try:
            while count is None or seq < count:
                await stream.send("bench", {"seq": seq, "text": text})
                seq += 1
                record.sent = seq
                if pause:
                    await asyncio.sleep(pause)
            record.stop("done")
        except (asyncio.CancelledError, _core.StreamClosedError):
            record.stop("cancelled")
            raise
        finally:
            record.stop("error")  # no-op unless something else ended it

    async def watch(record: _Producer) -> None:
        # The core cancels a started task when the stream ends or its consumer leaves:
        # the moment the Rust producer stopped (one event-loop hop later, at most).
        try:
            await asyncio.Event().wait()
        finally:
            record.stop("stopped")

    async def respond(
        stream: _core.EventStream, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await EventStreamResponse(stream, headers=_core.SSE_HEADERS)(scope, receive, send)

    async def bench_stream(scope: Scope, receive: Receive, send: Send) -> None:
        body = _parse(await read_capped(receive, MAX_BODY))
        if isinstance(body, str):
            return await send_json(send, 400, error_body("invalid_request", body))
        rid, count, size = body["id"], body["count"], body["payload_bytes"]
        pause = float(body["interval_ms"]) / 1e3
        if count is not None and not pause:
            # The producer is a Rust task: what a search feeding the core looks like.
            stream = _core.synthetic_stream(
                rid, count, payload_bytes=size, heartbeat=heartbeat, timeout=timeout
            )
            stream.start(watch(track(_Producer(rid, native=True))))
        else:
            # A Python producer task, cancelled by the core when the client goes away.
            stream = _core.EventStream(rid, heartbeat=heartbeat, timeout=timeout)
            record = track(_Producer(rid))
            stream.start(produce(stream, record, count, "x" * size, pause))
        await respond(stream, scope, receive, send)

    async def bench_idle(scope: Scope, receive: Receive, send: Send) -> None:
        body = _parse(await read_capped(receive, MAX_BODY))
        if isinstance(body, str):
            return await send_json(send, 400, error_body("invalid_request", body))
        # No producer: heartbeats until the client leaves or the stream times out.
        stream = _core.EventStream(body["id"], heartbeat=heartbeat, timeout=timeout)
        await respond(stream, scope, receive, send)

    async def bench_producer(scope: Scope, receive: Receive, send: Send) -> None:
        id = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("id", [""])[0]
        producer = producers.get(id)
        if producer is None:
            return await send_json(send, 404, error_body("not_found", f"no producer {id!r}"))
        await send_json(send, 200, json.dumps(producer.as_json()).encode())

    return {
        "/bench/stream": (("POST",), bench_stream),
        "/bench/idle": (("POST",), bench_idle),
        "/bench/producer": (("GET",), bench_producer),
    }
