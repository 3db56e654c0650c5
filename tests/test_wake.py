"""Awaits settled by the event loop's waker: many at once, cancelled, across loops, at exit.

Pending `__anext__` and blocked `send` are asyncio futures that Rust settles through the
loop's waker, never by taking the GIL on a tokio thread; these tests hold thousands of
them and bound the threads that costs.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import frames, message
from deepsearch_stream import EventStream, StreamClosedError

DONE = b"data: [DONE]\n\n"
STREAMS = 2000
# Tokio's workers exist once the runtime has started (warm_up); what may come on top is
# a few helper threads, never one per settled await.
MAX_NEW_THREADS = 40


def threads() -> int:
    return len(os.listdir("/proc/self/task"))


async def warm_up() -> None:
    """Starts the tokio runtime and this loop's waker, so that later counts compare alike."""
    s = EventStream("warm", heartbeat=None)
    waiting = asyncio.ensure_future(s.__anext__())
    await asyncio.sleep(0)
    s.complete()
    assert await waiting == DONE


async def test_thousands_of_pending_reads_are_resolved_by_sends_in_order() -> None:
    await warm_up()
    before = threads()
    streams = [EventStream(f"r{i}", heartbeat=None) for i in range(STREAMS)]
    rounds = 5
    got: dict[int, list[bytes]] = {i: [] for i in range(STREAMS)}

    async def consume(i: int) -> None:
        async for chunk in streams[i]:
            got[i].extend(frames(chunk))

    consumers = [asyncio.create_task(consume(i)) for i in range(STREAMS)]
    for n in range(rounds):
        await asyncio.sleep(0)  # every consumer is waiting again on the slow path
        for i, s in enumerate(streams):
            await s.send("n", {"stream": i, "n": n})
    for s in streams:
        s.complete()
    await asyncio.wait_for(asyncio.gather(*consumers), 60)
    assert threads() - before < MAX_NEW_THREADS
    for i in range(STREAMS):
        assert got[i][-1] == DONE
        parsed = [message(f) for f in got[i][:-1]]
        assert [event_id for event_id, _ in parsed] == list(range(1, rounds + 1))
        assert [env["data"] for _, env in parsed] == [{"stream": i, "n": n} for n in range(rounds)]


async def test_thousands_of_pending_reads_are_resolved_by_heartbeats() -> None:
    await warm_up()
    before = threads()
    streams = [EventStream(f"r{i}", heartbeat=1.0) for i in range(STREAMS)]
    for _ in range(2):  # the second round: every heartbeat is due about together
        reads = [s.__anext__() for s in streams]
        assert all(isinstance(r, asyncio.Future) for r in reads)  # not the ready fast path
        beats = await asyncio.wait_for(asyncio.gather(*reads), 60)
        assert beats == [b"data: heartbeat\n\n"] * STREAMS
    assert threads() - before < MAX_NEW_THREADS
    for s in streams:
        s.close()


async def test_cancelling_thousands_of_pending_reads_closes_every_stream() -> None:
    await warm_up()
    before = threads()
    streams = [EventStream(f"r{i}", heartbeat=None) for i in range(STREAMS)]
    producers = [s.start(asyncio.sleep(3600)) for s in streams]
    reads = [s.__anext__() for s in streams]
    assert all(isinstance(r, asyncio.Future) for r in reads)
    await asyncio.sleep(0)
    for r in reads:
        r.cancel()
    _, pending = await asyncio.wait(producers, timeout=60)
    assert not pending
    assert all(p.cancelled() for p in producers)
    assert all(s.closed for s in streams)
    assert all(r.cancelled() for r in reads)
    assert threads() - before < MAX_NEW_THREADS


async def test_a_cancelled_blocked_send_leaves_the_stream_open() -> None:
    s = EventStream("r", max_pending=1, heartbeat=None)
    await s.send("a", 1)
    blocked = asyncio.ensure_future(s.send("b", 2))
    await asyncio.sleep(0)
    assert not blocked.done()
    blocked.cancel()
    await asyncio.sleep(0)
    assert not s.closed
    first = await anext(aiter(s))
    await s.send("c", 3)
    s.complete()
    got = frames(first) + [f for chunk in [c async for c in s] for f in frames(chunk)]
    assert got[-1] == DONE
    assert [message(f)[1]["data"] for f in got[:-1]] == [1, 3]


async def test_a_blocked_send_raises_when_the_consumer_leaves() -> None:
    s = EventStream("r", max_pending=1, heartbeat=None)
    await s.send("a", 1)
    blocked = asyncio.ensure_future(s.send("b", 2))
    await asyncio.sleep(0)
    s.close()
    with pytest.raises(StreamClosedError, match="consumer went away"):
        await asyncio.wait_for(blocked, 10)


def test_one_stream_across_two_event_loops() -> None:
    s = EventStream("r", heartbeat=None)

    async def one_round(n: int) -> bytes:
        waiting = asyncio.ensure_future(s.__anext__())
        await asyncio.sleep(0)
        assert not waiting.done()
        await s.send("n", n)
        return await asyncio.wait_for(waiting, 10)

    first = asyncio.run(one_round(1))
    second = asyncio.run(one_round(2))
    assert [message(first)[1]["data"], message(second)[1]["data"]] == [1, 2]

    async def end() -> list[bytes]:
        waiting = asyncio.ensure_future(s.__anext__())
        await asyncio.sleep(0)
        s.complete()
        return [await waiting] + [c async for c in s]

    assert asyncio.run(end()) == [DONE]


def test_a_new_event_loop_per_run_leaks_no_descriptors() -> None:
    def descriptors() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def pending_read_then_leave() -> None:
        s = EventStream("r", heartbeat=None)
        waiting = s.__anext__()
        assert isinstance(waiting, asyncio.Future)  # this loop's waker is in use
        await s.send("n", 1)
        assert b'"data": 1' in await waiting

    asyncio.run(pending_read_then_leave())
    before = descriptors()
    for _ in range(200):
        asyncio.run(pending_read_then_leave())
    # Each loop's waker holds a socket pair until the loop is closed and replaced.
    assert descriptors() - before <= 4


# Leaves Rust tasks running and futures pending when the interpreter exits: a heartbeat or
# a producer settling one of them during finalization must not touch Python off-thread.
EXIT_SCRIPT = textwrap.dedent(
    """
    import asyncio
    from deepsearch_stream import EventStream, synthetic_stream

    async def main():
        streams = [synthetic_stream(f"s{i}", 10**9, max_pending=2) for i in range(50)]
        for s in streams:
            n = 0
            async for _ in s:
                n += 1
                if n == 5:
                    break
        # Heartbeats falling due from now until well into the interpreter's exit.
        idle = [EventStream(f"i{i}", heartbeat=0.001 * (1 + i % 40)) for i in range(200)]
        pending = [s.__anext__() for s in idle]
        await asyncio.sleep(0.002)
        return pending

    loop = asyncio.new_event_loop()
    kept = loop.run_until_complete(main())
    # Not closed: the loop and its pending futures are still around at exit.
    """
)


def test_exiting_with_pending_awaits_never_crashes() -> None:
    for attempt in range(30):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (attempt, done.returncode, done.stderr[-2000:])
