"""Reading an SSE response into decoded events, through the core's decoder."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from typing import Any

from deepsearch_stream._core import SseDecoder

__all__ = ["Events", "SseEvent", "aread_events", "parse_events", "read_events"]

DONE = "[DONE]"
HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class SseEvent:
    """One dispatched event. ``id`` is the stream's last event id when it was dispatched
    (an event without an ``id:`` line keeps the previous one, as ``EventSource`` does);
    ``received`` is the ``time.monotonic()`` at which its last bytes were read, or
    ``None`` when the body had been read whole before decoding."""

    event: str
    data: str
    id: str
    received: float | None = None

    @property
    def is_done(self) -> bool:
        return self.data == DONE

    @property
    def is_heartbeat(self) -> bool:
        return self.data == HEARTBEAT

    @property
    def message(self) -> dict[str, Any] | None:
        """The ``{"type", "data", "requestId", "timestamp"}`` envelope, if this is one."""
        if not self.data.startswith("{"):
            return None
        value = json.loads(self.data)
        return value if isinstance(value, dict) and "type" in value else None


class Events(list[SseEvent]):
    """The events of one response, in order, with shortcuts to the envelopes."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """Every envelope (heartbeats and ``[DONE]`` left out)."""
        return [m for m in (e.message for e in self) if m is not None]

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    def data_of(self, type: str) -> list[Any]:
        """The ``data`` of every message of ``type``."""
        return [m["data"] for m in self.messages if m["type"] == type]

    @property
    def final(self) -> Any:
        """The ``data`` of the ``final`` message; AssertionError naming what came instead."""
        finals = self.data_of("final")
        assert len(finals) == 1, f"expected one final message, got types {self.types}"
        return finals[0]


def parse_events(body: bytes | Iterable[bytes]) -> Events:
    """Decode a whole body (or its chunks, in order)."""
    chunks = [body] if isinstance(body, bytes | bytearray) else body
    decoder = SseDecoder()
    out = Events()
    for chunk in chunks:
        out.extend(SseEvent(*e) for e in decoder.feed(bytes(chunk)))
    decoder.finish()
    return out


def read_events(response: Any) -> Events:
    """The events of an ``httpx`` (or Starlette ``TestClient``) response.

    A response still streaming (``client.stream(...)``) is read to its end chunk by
    chunk, each event stamped with when it arrived; one already read is decoded whole.
    """
    if response.is_closed:
        return parse_events(response.content)
    return _timed(response.iter_bytes())


async def aread_events(response: Any) -> Events:
    """``read_events`` for an ``httpx.AsyncClient`` response."""
    if response.is_closed:
        return parse_events(response.content)
    return await _atimed(response.aiter_bytes())


def _timed(chunks: Iterable[bytes]) -> Events:
    decoder = SseDecoder()
    out = Events()
    for chunk in chunks:
        now = time.monotonic()
        out.extend(SseEvent(*e, received=now) for e in decoder.feed(chunk))
    decoder.finish()
    return out


async def _atimed(chunks: AsyncIterable[bytes]) -> Events:
    decoder = SseDecoder()
    out = Events()
    async for chunk in chunks:
        now = time.monotonic()
        out.extend(SseEvent(*e, received=now) for e in decoder.feed(chunk))
    decoder.finish()
    return out
