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
import os
import sys
import uuid
from typing import Any, TextIO

__all__ = ["register"]


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or default


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
        "--engines",
        default=_env("DEEPSEARCH_ENGINES", "local"),
        help="comma-separated: local, searxng, tavily, brave, serper, jina "
        "(default: %(default)s; env DEEPSEARCH_ENGINES)",
    )
    p.add_argument(
        "--max-loop",
        type=int,
        default=3,
        help="search rounds at most, 1 to 10 (default: %(default)s)",
    )
    p.add_argument(
        "--corpus",
        default=_env("DEEPSEARCH_CORPUS_DIR"),
        help="folder the local engine indexes (default: the Python documentation; "
        "env DEEPSEARCH_CORPUS_DIR)",
    )
    p.add_argument(
        "--cache-dir",
        default=_env("DEEPSEARCH_CACHE_DIR"),
        help="index cache (default: ~/.cache/deepsearch-stream; env DEEPSEARCH_CACHE_DIR)",
    )
    p.add_argument(
        "--llm-base-url",
        default=_env("DEEPSEARCH_LLM_BASE_URL"),
        help="an OpenAI-compatible model's base URL (default: offline; "
        "env DEEPSEARCH_LLM_BASE_URL)",
    )
    p.add_argument(
        "--llm-model", default=_env("DEEPSEARCH_LLM_MODEL"), help="env DEEPSEARCH_LLM_MODEL"
    )
    p.add_argument(
        "--llm-api-key", default=_env("DEEPSEARCH_LLM_API_KEY"), help="env DEEPSEARCH_LLM_API_KEY"
    )
    p.add_argument(
        "--locale",
        default=_env("DEEPSEARCH_LOCALE", "en"),
        help="en or zh, for the status lines (default: %(default)s; env DEEPSEARCH_LOCALE)",
    )
    p.add_argument("--json", action="store_true", help="print only the final result, as JSON")
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

    llm = {"base_url": args.llm_base_url, "model": args.llm_model, "api_key": args.llm_api_key}
    llm = {k: v for k, v in llm.items() if v}
    try:
        ds = DeepSearch(
            [e.strip() for e in args.engines.split(",") if e.strip()],
            args.corpus,
            llm or None,
            locale=args.locale,
            cache_dir=args.cache_dir,
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
