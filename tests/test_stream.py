"""EventStream from Python: framing, backpressure, heartbeats, lifecycle, cancellation."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from conftest import frames, message
from deepsearch_stream import (
    ConfigError,
    DeepSearchStreamError,
    EventStream,
    StreamClosedError,
    StreamTimeoutError,
    synthetic_stream,
)

DONE = b"data: [DONE]\n\n"


async def collect(stream: EventStream) -> list[bytes]:
    out: list[bytes] = []
    async for chunk in stream:
        assert isinstance(chunk, bytes)
        out.extend(frames(chunk))
    return out


async def test_messages_then_done_with_monotonic_ids() -> None:
    s = EventStream("req-1")
    await s.send("status", "开始搜索...")
    for i in range(3):
        await s.send("progress", f"执行第{i + 1}轮搜索...")
    s.complete()
    got = await collect(s)
    assert got[-1] == DONE
    parsed = [message(f) for f in got[:-1]]
    assert [i for i, _ in parsed] == [1, 2, 3, 4]
    assert parsed[0][1]["data"] == "开始搜索..."
    assert parsed[3][1]["data"] == "执行第3轮搜索..."
    for _, env in parsed:
        assert list(env) == ["type", "data", "requestId", "timestamp"]
        assert env["requestId"] == "req-1"
        assert abs(env["timestamp"] - time.time()) < 60


async def test_envelope_bytes_equal_json_dumps() -> None:
    s = EventStream("r")
    data = {"title": "Python 文档", "n": [1, 2.5, 1e16, 1e-05, None, True], "e": {}}
    await s.send("intermediate", data, message_id="m1", is_final=False, digital_employee="员")
    s.complete()
    frame = (await collect(s))[0]
    _, env = message(frame)
    expected = json.dumps(
        {
            "type": "intermediate",
            "data": data,
            "requestId": "r",
            "timestamp": env["timestamp"],
            "messageId": "m1",
            "isFinal": False,
            "digitalEmployee": "员",
        },
        ensure_ascii=False,
    ).encode()
    assert frame == b"data: " + expected + b"\nid: 1\n\n"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (object(), TypeError),
        ({1j: 1}, TypeError),
        (float("nan"), ValueError),
        (2**70, ValueError),
    ],
)
async def test_unencodable_data_raises_and_sends_nothing(data: object, error: type) -> None:
    s = EventStream("r")
    with pytest.raises(error):
        await s.send("x", data)
    await s.send("ok", 1)
    s.complete()
    got = await collect(s)
    assert [message(f)[0] for f in got[:-1]] == [1]


async def test_circular_data_is_a_value_error() -> None:
    s = EventStream("r")
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="circular"):
        await s.send("x", loop)


async def test_backpressure_waits_and_loses_nothing() -> None:
    s = EventStream("r", max_pending=4, max_chunk_bytes=1)
    n = 300

    async def produce() -> None:
        for i in range(n):
            await s.send("n", i)
            assert s.stats()["pending"] <= 4

    s.start(produce())
    seen = []
    async for chunk in s:
        for f in frames(chunk):
            if f != DONE:
                seen.append(message(f)[1]["data"])
        await asyncio.sleep(0)  # a slow reader
    assert seen == list(range(n))
    assert s.stats()["blocked_seconds"] > 0


async def test_heartbeat_only_when_idle() -> None:
    s = EventStream("r", heartbeat=0.05)
    it = aiter(s)
    started = time.monotonic()
    assert await anext(it) == b"data: heartbeat\n\n"
    assert time.monotonic() - started >= 0.04

    async def produce() -> None:
        for i in range(10):
            await s.send("tick", i)
            await asyncio.sleep(0.01)

    s.start(produce())
    got = await collect(s)
    assert b"data: heartbeat\n\n" not in got
    assert got[-1] == DONE


async def test_heartbeat_as_comment() -> None:
    s = EventStream("r", heartbeat=0.02, heartbeat_format="comment")
    assert await anext(aiter(s)) == b": heartbeat\n\n"


async def test_timeout_sends_error_then_done() -> None:
    s = EventStream("r", timeout=0.1, heartbeat=None)
    await s.send("status", "working")
    got = await collect(s)
    assert got[-1] == DONE
    _, err = message(got[-2])
    assert err["type"] == "error"
    assert err["data"]["code"] == "timeout"
    assert err["isFinal"] is True
    with pytest.raises(StreamTimeoutError):
        await s.send("late", 1)


async def test_fail_sends_error_then_done() -> None:
    s = EventStream("r")
    s.fail("engine exploded", code="search_failed")
    got = await collect(s)
    _, err = message(got[0])
    assert err["data"] == {"message": "engine exploded", "code": "search_failed"}
    assert got[1] == DONE
    with pytest.raises(StreamClosedError):
        s.complete()


async def test_producer_exception_becomes_error_message() -> None:
    s = EventStream("r")

    async def produce() -> None:
        await s.send("status", "start")
        raise RuntimeError("search backend down")

    s.start(produce())
    got = await collect(s)
    _, err = message(got[1])
    assert err["data"] == {"message": "RuntimeError: search backend down", "code": "error"}
    assert got[-1] == DONE


async def test_aclose_stops_producer_within_100ms() -> None:
    s = EventStream("r", max_pending=2)
    cancelled = asyncio.Event()
    errors: list[BaseException] = []

    async def produce() -> None:
        try:
            i = 0
            while True:
                await s.send("n", i)
                i += 1
        except StreamClosedError as e:
            errors.append(e)
            await asyncio.sleep(3600)  # ignores the error: cancellation must stop it
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = s.start(produce())
    await anext(aiter(s))
    await asyncio.sleep(0.02)
    await s.aclose()
    await asyncio.wait_for(cancelled.wait(), 0.1)
    assert task.cancelled() or task.done()
    with pytest.raises(StreamClosedError):
        await s.send("late", 1)
    assert s.closed


async def test_cancelling_the_consumer_task_closes_the_stream() -> None:
    s = EventStream("r")
    producer_cancelled = asyncio.Event()

    async def produce() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            producer_cancelled.set()
            raise

    s.start(produce())

    async def consume() -> None:
        async for _ in s:
            pass

    consumer = asyncio.create_task(consume())
    await asyncio.sleep(0.02)  # the consumer is now waiting on the slow path
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await asyncio.wait_for(producer_cancelled.wait(), 0.1)
    with pytest.raises(StreamClosedError):
        await s.send("late", 1)


async def test_fast_path_returns_a_ready_awaitable_not_a_future() -> None:
    s = EventStream("r")
    sent = s.send("a", 1)
    assert type(sent).__name__ == "_Ready"
    await sent
    pending = s.__anext__()
    assert type(pending).__name__ == "_Ready"
    assert b'"type": "a"' in await pending
    waiting = s.__anext__()
    assert isinstance(waiting, asyncio.Future)
    s.complete()
    assert await waiting == DONE


async def test_fast_consumer_still_yields_to_the_event_loop() -> None:
    s = EventStream("r", max_chunk_bytes=1, yield_every=4, max_pending=1000)
    for i in range(100):
        await s.send("n", i)
    s.complete()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    t = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    ticks = 0
    got = await collect(s)
    t.cancel()
    assert len(got) == 101
    # One real yield every 4 chunks: the other task ran about 25 times.
    assert 15 <= ticks <= 40, ticks


async def test_bad_options_raise_config_error() -> None:
    for kwargs in (
        {"max_pending": 0},
        {"heartbeat": 0},
        {"timeout": -1.0},
        {"heartbeat_format": "xml"},
        {"yield_every": 0},
        {"heartbeat": float("nan")},
    ):
        with pytest.raises(ConfigError):
            EventStream("r", **kwargs)  # type: ignore[arg-type]
    assert issubclass(ConfigError, DeepSearchStreamError)
    assert issubclass(StreamTimeoutError, StreamClosedError)


async def test_yield_every_zero_is_refused_by_both_constructors() -> None:
    with pytest.raises(ConfigError, match=r"^yield_every must be at least 1$"):
        EventStream("r", yield_every=0)
    with pytest.raises(ConfigError, match=r"^yield_every must be at least 1$"):
        synthetic_stream("syn", 1, yield_every=0)


async def test_iterating_an_ended_stream_stops_at_once() -> None:
    s = EventStream("r")
    s.complete()
    assert await collect(s) == [DONE]
    assert await collect(s) == []


async def test_synthetic_stream_is_fed_by_rust_with_backpressure() -> None:
    s = synthetic_stream("syn", 1000, payload_bytes=50, max_pending=8, max_chunk_bytes=4096)
    seqs = []
    async for chunk in s:
        assert s.stats()["pending"] <= 8
        for f in frames(chunk):
            if f != DONE:
                _, env = message(f)
                assert env["data"]["text"] == "x" * 50
                seqs.append(env["data"]["seq"])
    assert seqs == list(range(1000))


async def test_synthetic_producer_is_cancelled_when_the_consumer_leaves() -> None:
    s = synthetic_stream("syn", 10**9, max_pending=4)
    await anext(aiter(s))
    await s.aclose()
    await asyncio.sleep(0.05)
    # The producer task was aborted: nothing more is buffered or sent.
    before = s.stats()
    await asyncio.sleep(0.05)
    assert s.stats() == before
    assert s.closed
