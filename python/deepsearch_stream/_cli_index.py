"""``deepsearch-stream index DIR``: build or refresh the local engine's index of a
corpus folder (``.md``, ``.txt``, ``.html`` files), with a progress bar; prints the
document count and the index's size. An unchanged folder reuses its index at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from deepsearch_stream._cli_settings import add_settings, config_from

__all__ = ["register"]

_BAR = 30


def register(sub: Any) -> None:
    """Adds the ``index`` subcommand to the CLI's subparsers."""
    p = sub.add_parser("index", help="build or refresh the local index of a corpus folder")
    p.description = __doc__
    p.add_argument("folder", metavar="DIR", help="the corpus folder")
    add_settings(p, ["cache_dir"])
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from deepsearch_stream import _core
    from deepsearch_stream.corpus import default_cache_dir

    folder = Path(args.folder)
    problem = _unreadable(folder)
    if problem:
        print(f"deepsearch-stream index: cannot read {folder}: {problem}", file=sys.stderr)
        return 2
    try:
        configured = config_from(args, ["cache_dir"]).to_dict()["cache_dir"]
    except _core.ConfigError as e:
        print(f"deepsearch-stream index: {e}", file=sys.stderr)
        return 2
    cache_dir = Path(configured) if configured else default_cache_dir()
    bar = _Progress(sys.stderr)
    try:
        info = _core.index_corpus(folder, cache_dir, bar.update)
    except _core.DeepSearchStreamError as e:
        bar.end()
        print(f"deepsearch-stream index: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # A rebuild switches to the new index only once it is complete.
        bar.end()
        print("deepsearch-stream index: cancelled", file=sys.stderr)
        return 130
    bar.end()
    size = sum(f.stat().st_size for f in Path(info["index_dir"]).rglob("*") if f.is_file())
    state = "built" if info["rebuilt"] else "up to date"
    print(f"{info['documents']} documents ({info['passages']} passages) from {info['corpus']}")
    print(f"index {state}: {info['index_dir']} ({_size(size)})")
    if info["documents"] == 0:
        print(f"deepsearch-stream index: no .md, .txt or .html files in {folder}", file=sys.stderr)
        return 1
    return 0


def _unreadable(folder: Path) -> str | None:
    if not folder.exists():
        return "no such folder"
    if not folder.is_dir():
        return "not a folder"
    try:
        next(os.scandir(folder), None)
    except OSError as e:
        return e.strerror or str(e)
    return None


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


class _Progress:
    """A bar redrawn in place on a terminal; elsewhere one line per update."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.drawn = False

    def update(self, done: int, total: int) -> None:
        filled = _BAR * done // total if total else _BAR
        line = f"indexing [{'#' * filled}{'.' * (_BAR - filled)}] {done}/{total} files"
        self.out.write(f"\r{line}" if self.tty else f"{line}\n")
        self.out.flush()
        self.drawn = True

    def end(self) -> None:
        if self.tty and self.drawn:
            self.out.write("\n")
            self.out.flush()
