"""EventStream throughput, side by side with a pure-Python asyncio equivalent.

(a)  the core's EventStream fed by a Rust producer (``synthetic_stream``) and iterated
     from Python with ``async for``: frames arrive coalesced, as an HTTP body would take them;
(a1) the same with coalescing off (one frame per ``__anext__``), the per-item worst case;
(b)  the seed's shape in pure Python: an async generator that builds the envelope with
     ``json.dumps(..., ensure_ascii=False)`` and frames it with sse-starlette's
     ``ServerSentEvent``, consumed the way ``EventSourceResponse`` does (``ensure_bytes``);
(b2) the same producer decoupled from the consumer by an ``asyncio.Queue(256)``, the
     pure-Python way to get backpressure between a producer task and the response.

Also: the cost of one item crossing into Python when items are already buffered.
Every variant runs in this process, interleaved, several times; medians are reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from common import cpu_model, write_section
from sse_starlette import ServerSentEvent
from sse_starlette.sse import ensure_bytes

from deepsearch_stream import synthetic_stream

PAYLOAD = 200


async def core_stream(n: int, coalesce: bool) -> int:
    stream = synthetic_stream(
        "bench", n, payload_bytes=PAYLOAD, max_chunk_bytes=65536 if coalesce else 1
    )
    total = 0
    async for chunk in stream:
        total += len(chunk)
    return total


async def seed_generator(n: int) -> AsyncIterator[ServerSentEvent]:
    text = "x" * PAYLOAD
    for seq in range(n):
        data = json.dumps(
            {
                "type": "bench",
                "data": {"seq": seq, "text": text},
                "requestId": "bench",
                "timestamp": time.time(),
            },
            ensure_ascii=False,
        )
        yield ServerSentEvent(data=data, id=str(seq + 1))
    yield ServerSentEvent(data="[DONE]")


async def python_generator(n: int) -> int:
    total = 0
    async for event in seed_generator(n):
        total += len(ensure_bytes(event, "\n"))
    return total


async def python_queue(n: int) -> int:
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(256)

    async def produce() -> None:
        async for event in seed_generator(n):
            await queue.put(ensure_bytes(event, "\n"))
        await queue.put(None)

    task = asyncio.create_task(produce())
    total = 0
    while (item := await queue.get()) is not None:
        total += len(item)
    await task
    return total


async def crossing_cost(n: int) -> float:
    """Seconds per `__anext__` + await when every item is already buffered."""
    stream = synthetic_stream(
        "bench",
        n,
        payload_bytes=PAYLOAD,
        max_pending=n,
        max_pending_bytes=1 << 30,
        max_chunk_bytes=1,
    )
    while stream.stats()["pending"] < n:  # noqa: ASYNC110 - polling a counter, no event exists
        await asyncio.sleep(0.001)
    start = time.perf_counter()
    count = 0
    async for _ in stream:
        count += 1
    elapsed = time.perf_counter() - start
    assert count == n + 1, count  # n messages and [DONE]
    return elapsed / count


Variant = Callable[[int], Coroutine[Any, Any, int]]


async def measure(fn: Variant, n: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds, all threads) for one run."""
    cpu0, wall0 = time.process_time(), time.perf_counter()
    total = await fn(n)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert total > n * PAYLOAD, total
    return wall, cpu


def machine() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def rustc() -> str:
    try:
        return subprocess.run(
            ["rustc", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "rustc unknown"


async def main_async(args: argparse.Namespace) -> str:
    variants: dict[str, tuple[str, Variant]] = {
        "a": ("EventStream, Rust producer, coalesced chunks", lambda n: core_stream(n, True)),
        "a1": ("EventStream, Rust producer, one frame per item", lambda n: core_stream(n, False)),
        "b": ("pure Python: async generator + json.dumps + ServerSentEvent", python_generator),
        "b2": ("pure Python: producer task + asyncio.Queue(256)", python_queue),
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    for _ in range(args.repeats):
        for key, (_, fn) in variants.items():
            runs[key].append(await measure(fn, args.events))
    crossing = [await crossing_cost(args.events) for _ in range(args.repeats)]

    rows = []
    rate: dict[str, float] = {}
    for key, (label, _) in variants.items():
        wall = statistics.median(w for w, _ in runs[key])
        cpu = statistics.median(c for _, c in runs[key])
        rate[key] = args.events / wall
        rows.append(
            f"| ({key}) {label} | {rate[key]:,.0f} | {cpu / args.events * 1e6:.2f} | "
            f"{wall * 1e3:,.0f} |"
        )
    best_python = max(rate["b"], rate["b2"])
    cross_us = statistics.median(crossing) * 1e6
    lines = [
        "## EventStream from Python (issue: streaming core)",
        "",
        f"Command: `{args.command}`  ",
        f"Run: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}; {rustc()}.  ",
        f"{args.events:,} events of {PAYLOAD}-byte payload per run, median of {args.repeats} "
        "interleaved runs. CPU is the whole process (tokio threads included).",
        "",
        "| variant | events/s | CPU µs/event | wall ms |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"- Ratio (a) / best pure Python: **{rate['a'] / best_python:.1f}x** (target ≥ 5x).",
        f"- Ratio (a1) / best pure Python: **{rate['a1'] / best_python:.1f}x**.",
        f"- One buffered item crossing into Python (`__anext__` + await, no coalescing): "
        f"**{cross_us:.2f} µs** (target ≤ 2 µs).",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="30k events, 3 repeats")
    parser.add_argument("--write", type=Path, help="update this Markdown file's section")
    args = parser.parse_args()
    if args.quick:
        args.events, args.repeats = 30_000, 3
    args.command = "python bench/stream_bench.py " + " ".join(sys.argv[1:])
    section = asyncio.run(main_async(args))
    print(section)
    if args.write:
        write_section(args.write, "stream_bench", section)


if __name__ == "__main__":
    main()
