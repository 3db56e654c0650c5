"""``deepsearch-stream``: the FastAPI service under uvicorn (``serve``), one search in
the terminal (``search``), the local index of a corpus folder (``index``).

Every flag, its default, its help and its ``DEEPSEARCH_*`` variable come from the core's
one settings table (``_core.config_table()``), the one ``deepsearch-server`` is built
from too, and values are checked there, so both servers take the same configuration.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from deepsearch_stream import _cli_index, _cli_search, _core, _deps
from deepsearch_stream._cli_settings import add_settings, config_from

__all__ = ["main"]

# Python's logging and uvicorn spell two of the core's levels differently.
_LOGGING_LEVEL = {"warn": "WARNING", "trace": "DEBUG"}
_UVICORN_LEVEL = {"warn": "warning"}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deepsearch-stream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="run the FastAPI service",
        description="Serves DeepSearch over HTTP (the same routes and bytes as "
        "deepsearch-server). Each flag falls back to its DEEPSEARCH_* variable.",
    )
    add_settings(serve)
    _cli_search.register(sub)
    _cli_index.register(sub)
    return parser


def serve(args: argparse.Namespace) -> int:
    from deepsearch_stream._serve import run
    from deepsearch_stream.app import Settings, create_app

    try:
        config = config_from(args)
    except _core.ConfigError as e:
        print(f"deepsearch-stream: {e}", file=sys.stderr)
        return 2
    values = config.to_dict()
    level: str = values["log_level"]
    logging.basicConfig(
        level=_LOGGING_LEVEL.get(level, level.upper()),
        format="%(levelname)s %(name)s %(message)s",
    )
    try:
        app = create_app(Settings.from_config(config))
    except _core.ConfigError as e:
        print(f"deepsearch-stream: {e}", file=sys.stderr)
        return 2
    run(
        app,
        values["host"],
        values["port"],
        log_level=_UVICORN_LEVEL.get(level, level),
        shutdown_timeout=values["shutdown_timeout"],
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return serve(args) if args.command == "serve" else int(args.run(args))
    except ModuleNotFoundError as e:
        return _deps.missing(e)


if __name__ == "__main__":
    sys.exit(main())
