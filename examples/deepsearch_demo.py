"""Runs one DeepSearch and prints its messages as they stream.

Offline by default: the ``local`` engine over the Python documentation (exported into
the cache directory on first use; the first run also builds its index). Point it at a
model with ``DEEPSEARCH_LLM_MODEL`` (and ``DEEPSEARCH_LLM_BASE_URL``), at other engines
with ``--engines searxng,local`` and their environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from deepsearch_stream import DeepSearch


def show(message: dict) -> None:
    kind, data = message["type"], message["data"]
    if kind == "answer":
        print(data, end="", flush=True)
    elif kind == "plan":
        print(f"[plan {data['loop']}] " + " | ".join(data["queries"]))
    elif kind == "intermediate":
        for result in data["results"]:
            print(f"  {result['query']!r}: {len(result['docs'])} new document(s)")
            for doc in result["docs"][:2]:
                print(f"    - {doc['title']} <{doc['url']}> ({doc['engine']})")
    elif kind == "final":
        print("\n\nSources:")
        for source in data["sources"]:
            print(f"  [{source['id']}] {source['title']} <{source['url']}>")
        print(f"({data['loops']} round(s), {data['elapsed_ms']} ms)")
    elif kind == "error":
        print(f"\nerror ({data['code']}): {data['message']}")
    else:
        print(f"[{kind}] {json.dumps(data, ensure_ascii=False)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("query", nargs="*", default=["How do I read a JSON file in Python?"])
    parser.add_argument("--engines", default="local", help="comma-separated engine names")
    parser.add_argument("--max-loop", type=int, default=3)
    parser.add_argument("--locale", default="en", choices=["en", "zh"])
    args = parser.parse_args()

    started = time.perf_counter()
    search = DeepSearch(args.engines.split(","), locale=args.locale)
    print(f"{search!r} ready in {time.perf_counter() - started:.1f} s\n")
    query = " ".join(args.query)
    async for chunk in search.run(query, "demo-1", max_loop=args.max_loop):
        show(json.loads(chunk))


if __name__ == "__main__":
    asyncio.run(main())
