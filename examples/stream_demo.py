"""Streams the seed's DeepSearch message sequence through EventStream and prints the SSE bytes.

status -> progress -> intermediate (per loop) -> final, then [DONE]; the consumer is the
same `async for chunk in stream` loop an HTTP response body runs.
"""

from __future__ import annotations

import asyncio
import sys

from deepsearch_stream import EventStream


async def deep_search(stream: EventStream, query: str, max_loop: int) -> None:
    await stream.send("status", "开始搜索...")
    results = []
    for loop in range(max_loop):
        await stream.send("progress", f"执行第{loop + 1}轮搜索...")
        await asyncio.sleep(0.05)  # stands in for the search step
        step = {"loop": loop + 1, "query": query, "docs": [f"doc-{loop + 1}"]}
        results.append(step)
        await stream.send("intermediate", step)
    await stream.send("final", {"answer": f"{len(results)} rounds searched for {query!r}"})


async def main() -> None:
    query = " ".join(sys.argv[1:]) or "what is backpressure?"
    stream = EventStream("demo-1", heartbeat=0.02)
    stream.start(deep_search(stream, query, max_loop=3))
    async for chunk in stream:
        sys.stdout.write(chunk.decode())
    sys.stdout.flush()
    print(f"# stats: {stream.stats()}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
