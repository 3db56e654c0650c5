"""``deepsearch-stream search "question"``: one search in the terminal.

The display follows the stream as it comes: the plan of each round, the sources each
round found, the answer as it grows, then the numbered sources with their URLs.
``--json`` prints the final result alone, for scripts. Ctrl-C cancels the search (and
its engine and model requests) and exits with status 130.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from typing import Any, TextIO

from deepsearch_stream import _core
from deepsearch_stream._cli_settings import add_settings, config_from

__all__ = ["register"]


def register(sub: Any) -> None:
    """Adds the ``search`` subcommand to the CLI's subparsers."""
    p = sub.add_parser(
        "search",
        help="run one search in the terminal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("question", help="what to search for")
    p.add_argument(
        "--max-loop",
        type=int,
        default=3,
        help="Search rounds at most, 1 to 10. [default: %(default)s]",
    )
    add_settings(p, _core.search_settings())
    p.add_argument("--json", action="store_true", help="Print only the final result, as JSON.")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:
        # asyncio.run cancelled the search's task: its stream is closed, so every
        # engine and model request in flight is dropped.
        print("\ndeepsearch-stream search: cancelled", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from deepsearch_stream import DeepSearch, DeepSearchStreamError

    try:
        config = config_from(args, _core.search_settings()).to_dict()
        llm = {
            "base_url": config["llm_base_url"],
            "model": config["llm_model"],
            "api_key": config["llm_api_key"],
        }
        llm = {k: v for k, v in llm.items() if v}
        ds = DeepSearch(
            config["engines"],
            config["corpus"],
            llm or None,
            locale=config["locale"],
            cache_dir=config["cache_dir"],
        )
        messages = ds.run(args.question, f"cli-{uuid.uuid4().hex[:12]}", args.max_loop)
    except (DeepSearchStreamError, OSError) as e:
        print(f"deepsearch-stream search: {e}", file=sys.stderr)
        return 2
    show = _Json(sys.stdout) if args.json else _Live(sys.stdout)
    return asyncio.run(_follow(messages, show))


async def _follow(messages: Any, show: _Json | _Live) -> int:
    async for chunk in messages:
        message = json.loads(chunk)
        if message["type"] == "error":
            show.end()
            error = message["data"]
            print(
                f"deepsearch-stream search: {error['message']} ({error['code']})", file=sys.stderr
            )
            return 1
        show.message(message["type"], message["data"])
    return 0


class _Json:
    def __init__(self, out: TextIO) -> None:
        self.out = out

    def message(self, kind: str, data: Any) -> None:
        if kind == "final":
            json.dump(data, self.out, ensure_ascii=False, indent=2)
            self.out.write("\n")
        elif kind == "warning":
            print(f"warning: {data['engine']}: {data['message']}", file=sys.stderr)

    def end(self) -> None:
        pass


class _Live:
    """Plain text as it arrives; flushed at every message so a pipe sees it live."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.answering = False

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def message(self, kind: str, data: Any) -> None:
        if kind in ("status", "progress"):
            self.write(f"· {data}\n")
        elif kind == "plan":
            self.write(f"Round {data['loop']} plan:\n")
            self.write("".join(f"  - {q}\n" for q in data["queries"]))
        elif kind == "intermediate":
            for result in data["results"]:
                self.write(f"  {result['query']}:\n")
                for doc in result["docs"]:
                    self.write(f"    {doc['title']} <{doc['url']}> [{doc['engine']}]\n")
                if not result["docs"]:
                    self.write("    (nothing found)\n")
        elif kind == "warning":
            self.write(f"  ! {data['engine']}: {data['message']}\n")
        elif kind == "answer":
            if not self.answering:
                self.write("\nAnswer:\n")
                self.answering = True
            self.write(data)
        elif kind == "final":
            if not self.answering:
                self.write(f"\nAnswer:\n{data['answer']}")
            self.write("\n\nSources:\n" if data["sources"] else "\n\n(no sources)\n")
            self.write(
                "".join(f"[{s['id']}] {s['title']}\n    {s['url']}\n" for s in data["sources"])
            )
            self.write(f"({data['loops']} rounds, {data['elapsed_ms']} ms)\n")

    def end(self) -> None:
        if self.answering:
            self.write("\n")
