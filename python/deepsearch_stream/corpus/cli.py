"""``python -m deepsearch_stream.corpus``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .export import export_python_docs
from .locations import default_corpus_dir


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deepsearch_stream.corpus``: export the corpus and print its directory."""
    parser = argparse.ArgumentParser(
        prog="python -m deepsearch_stream.corpus",
        description="Export the Python documentation shipped with this interpreter as a "
        "markdown corpus for the DeepSearch local engine, and print its directory.",
    )
    parser.add_argument(
        "--dest",
        type=Path,
        default=None,
        help=f"corpus directory (default: {default_corpus_dir()})",
    )
    parser.add_argument(
        "--force", action="store_true", help="export again even if an up-to-date corpus exists"
    )
    args = parser.parse_args(argv)
    print(export_python_docs(args.dest, force=args.force))
    return 0
