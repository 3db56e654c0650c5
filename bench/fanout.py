"""Measurement 5: one DeepSearch round fanned out over three engines.

Three local HTTP servers speak the wire formats of SearXNG (``GET /search?q=&format=json``),
Tavily (``POST /search`` ``{"query", ...}`` → ``{"results": [...]}``) and Serper
(``POST /search`` ``{"q", "num"}`` → ``{"organic": [...]}``); each answers after
``--delay`` seconds. The core's ``DeepSearch(["searxng", "tavily", "serper"])`` is pointed
at them through ``SEARXNG_URL``, ``TAVILY_BASE_URL`` and ``SERPER_BASE_URL``, and one round
(``max_loop=1``, ``max_queries=5``) is timed. Every call's arrival and reply time is kept
for the timeline chart. Prints one JSON object.

    python bench/fanout.py [--delay 0.2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

QUERY = "What is tokio; how does asyncio schedule tasks; why are green threads cheap?"


class FakeEngine:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies) for one engine."""

    def __init__(self, kind: str, delay: float) -> None:
        self.kind = kind
        self.delay = delay
        self.calls: list[dict[str, Any]] = []
        self.port = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def results(self, query: str) -> bytes:
        hits = [
            {
                "title": f"{self.kind} {i}: {query}",
                "url": f"https://{self.kind}.example/{abs(hash(query)) % 10_000}/{i}",
                "content": f"{query} is answered by source {i} of {self.kind}.",
            }
            for i in range(5)
        ]
        if self.kind == "serper":
            body: dict[str, Any] = {
                "organic": [
                    {"title": h["title"], "link": h["url"], "snippet": h["content"]} for h in hits
                ]
            }
        else:
            body = {"results": hits}
        return json.dumps(body).encode()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                arrived = time.perf_counter()
                lines = head.decode("latin-1").split("\r\n")
                method, target = lines[0].split(" ")[:2]
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                raw = await reader.readexactly(length) if length else b""
                if method == "GET":
                    query = parse_qs(urlsplit(target).query).get("q", [""])[0]
                else:
                    body = json.loads(raw or b"{}")
                    query = body.get("query") or body.get("q") or ""
                await asyncio.sleep(self.delay)
                payload = self.results(query)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                await writer.drain()
                done = time.perf_counter()
                self.calls.append(
                    {"engine": self.kind, "query": query, "start": arrived, "end": done}
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def one_round(
    engines: list[FakeEngine], concurrency: int, max_queries: int, rounds: int
) -> dict[str, Any]:
    from deepsearch_stream import DeepSearch

    search = DeepSearch(
        ["searxng", "tavily", "serper"],
        llm="offline",
        max_queries=max_queries,
        concurrency=concurrency,
    )
    await search.search(QUERY, max_loop=1)  # warm-up: connections, first-use costs
    walls, timelines, queries = [], [], []
    for _ in range(rounds):
        for e in engines:
            e.calls.clear()
        start = time.perf_counter()
        result = await search.search(QUERY, max_loop=1)
        wall = time.perf_counter() - start
        walls.append(wall)
        queries = result.get("queries", [])
        calls = sorted((c for e in engines for c in e.calls), key=lambda c: c["start"])
        timelines.append(
            [
                {
                    "engine": c["engine"],
                    "query": c["query"],
                    "start_ms": (c["start"] - start) * 1e3,
                    "end_ms": (c["end"] - start) * 1e3,
                }
                for c in calls
            ]
        )
    median = statistics.median(walls)
    best = walls.index(median) if median in walls else 0
    return {
        "concurrency": concurrency,
        "wall_ms": [w * 1e3 for w in walls],
        "wall_ms_median": median * 1e3,
        "calls": len(timelines[best]),
        "queries": queries,
        "timeline": timelines[best],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    engines = [FakeEngine(kind, args.delay) for kind in ("searxng", "tavily", "serper")]
    for e in engines:
        await e.start()
    urls = {e.kind: f"http://127.0.0.1:{e.port}" for e in engines}
    os.environ.update(
        {
            "SEARXNG_URL": urls["searxng"],
            "TAVILY_BASE_URL": urls["tavily"],
            "TAVILY_API_KEY": "bench",
            "SERPER_BASE_URL": urls["serper"],
            "SERPER_API_KEY": "bench",
        }
    )
    runs = [await one_round(engines, c, args.max_queries, args.rounds) for c in args.concurrency]
    return {
        "cmd": "fanout",
        "query": QUERY,
        "delay_ms": args.delay * 1e3,
        "engines": [e.kind for e in engines],
        "max_queries": args.max_queries,
        "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-queries", type=int, default=5)
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[16, 8], help="DeepSearch(concurrency=)"
    )
    args = parser.parse_args()

    async def run_and_exit() -> None:
        print(json.dumps(await main_async(args)), flush=True)
        # Leave now: no teardown of the engines' keep-alive connections, and no
        # interpreter finalization racing the extension's runtime threads.
        os._exit(0)

    asyncio.run(run_and_exit())


if __name__ == "__main__":
    main()
