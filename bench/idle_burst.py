"""N idle EventStreams in one process whose heartbeats fall due together: delivery jitter.

    .venv/bin/python bench/idle_burst.py [N]    (default 10000)

Every stream is created at once with a 2 s heartbeat and read by its own task, so each
round wakes all N pending reads together: the case that used to take one blocking-pool
thread per wakeup. Prints the lateness of heartbeat intervals and the peak thread count.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from deepsearch_stream import EventStream

HEARTBEAT = 2.0
ROUNDS = 4


def quantile(sorted_values: list[float], p: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * p))]


async def main(n: int) -> None:
    streams = [EventStream(f"r{i}", heartbeat=HEARTBEAT) for i in range(n)]
    late: list[float] = []
    peak_threads = 0

    async def consume(s: EventStream) -> None:
        prev = None
        async for _ in s:
            now = time.monotonic()
            if prev is not None:
                late.append(abs(now - prev - HEARTBEAT) * 1e3)
            prev = now

    async def sample_threads() -> None:
        nonlocal peak_threads
        while True:
            peak_threads = max(peak_threads, len(os.listdir("/proc/self/task")))
            await asyncio.sleep(0.05)

    readers = [asyncio.create_task(consume(s)) for s in streams]
    sampler = asyncio.create_task(sample_threads())
    await asyncio.sleep(HEARTBEAT * (ROUNDS + 0.5))
    sampler.cancel()
    for s in streams:
        s.close()
    await asyncio.gather(*readers, return_exceptions=True)
    late.sort()
    print(
        f"N={n} intervals={len(late)} jitter p50 {quantile(late, 0.5):.1f} "
        f"p99 {quantile(late, 0.99):.1f} max {late[-1]:.1f} ms, peak threads {peak_threads}"
    )


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
