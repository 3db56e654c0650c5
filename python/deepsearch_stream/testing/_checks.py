"""Assertions a streaming test needs, on the events ``read_events`` returns."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

from deepsearch_stream.testing._sse import SseEvent

__all__ = ["assert_done", "assert_heartbeats_idle", "assert_ids", "assert_stream"]

#: Messages about the connection, not the search (a resume refused or taken over):
#: they carry no ``id:``, so they never move a client's ``Last-Event-ID``.
CONNECTION_CODES = frozenset({"expired", "superseded", "replaced", "resume_unavailable"})


def assert_done(events: Sequence[SseEvent]) -> None:
    """The stream ended with ``[DONE]``, and only there."""
    assert events, "no events at all"
    done = [n for n, e in enumerate(events) if e.is_done]
    assert done, f"no [DONE]: the stream ended after {events[-1].data[:200]!r}"
    assert done == [len(events) - 1], f"[DONE] at {done}, expected only last ({len(events) - 1})"


def _numbered(e: SseEvent) -> bool:
    m = e.message
    if m is None:
        return False
    data = m.get("data")
    code = data.get("code") if isinstance(data, dict) else None
    return not (m["type"] == "error" and code in CONNECTION_CODES)


def assert_ids(events: Sequence[SseEvent], start: int = 1) -> None:
    """Every message carries its own id, counting up by one from ``start`` (the id after
    a resume's ``Last-Event-ID``): no gap, no duplicate, no message without one. An id
    is ``<n>``, or ``<key>.<n>`` for a resumable stream (one key for all its messages).

    Heartbeats, ``[DONE]`` and connection messages are left out: the id they show is
    the previous one, or one of their own that is not a message's (a stream opens with
    a heartbeat holding ``<key>.0``; its ``[DONE]`` has the next id).
    """
    numbered = [e for e in events if _numbered(e)]
    seen = [e.id for e in numbered]
    keys = {i.rpartition(".")[0] for i in seen}
    assert len(keys) <= 1, f"messages under several stream keys: {sorted(keys)}"
    key = next(iter(keys), "")
    prefix = f"{key}." if key else ""
    expected = [f"{prefix}{n}" for n in range(start, start + len(numbered))]
    for n, (got, want) in enumerate(zip(seen, expected, strict=True)):
        kind = (numbered[n].message or {}).get("type")
        assert got == want, (
            f"message {n} ({kind}) has id {got!r}, expected {want!r} (ids so far {seen[: n + 1]})"
        )


def assert_heartbeats_idle(
    events: Sequence[SseEvent], interval: float, slack: float = 0.25
) -> None:
    """Each heartbeat came after ``interval`` seconds (less ``slack``) without another
    event: heartbeats only fill silence. Needs events read from a live stream
    (``read_events`` on ``client.stream(...)``), which carry arrival times."""
    if any(e.received is None for e in events):
        raise ValueError("events have no arrival times: read a streaming response")
    for before, e in pairwise(events):
        if e.is_heartbeat:
            gap = e.received - before.received  # type: ignore[operator]
            assert gap >= interval - slack, (
                f"heartbeat {gap:.3f} s after the previous event, expected >= {interval} s idle"
            )


def assert_stream(events: Sequence[SseEvent], start: int = 1) -> None:
    """A whole stream as the contract wants it: envelopes with ``type``, ``data``,
    ``requestId`` and ``timestamp`` under one request id, ids without gap or
    duplicate, and one ``[DONE]`` last."""
    assert_done(events)
    assert_ids(events, start)
    ids = set()
    for e in events:
        if e.is_done or e.is_heartbeat:
            continue
        m = e.message
        assert m is not None, f"not an envelope: {e.data[:200]!r}"
        assert list(m)[:4] == ["type", "data", "requestId", "timestamp"], m
        ids.add(m["requestId"])
    assert len(ids) <= 1, f"messages of several requests: {sorted(ids)}"
