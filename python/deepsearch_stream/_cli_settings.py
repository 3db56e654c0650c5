"""The CLI's flags from the core's one settings table (``_core.config_table()``), the
table ``deepsearch-server``'s flags are built from too; values are checked by the core
(``_core.ServiceConfig``), so both CLIs refuse bad input with the same message."""

from __future__ import annotations

import argparse
from collections.abc import Iterable

from deepsearch_stream import _core

__all__ = ["add_settings", "config_from"]


def add_settings(parser: argparse.ArgumentParser, keys: Iterable[str] | None = None) -> None:
    """Adds the flags of the settings ``keys`` (default: all) from the core's table.
    Defaults stay ``None``: the core fills in the variable, else the table's default."""
    wanted = set(keys) if keys is not None else None
    for key, flag, _env, _default, line, kind in _core.config_table():
        if wanted is not None and key not in wanted:
            continue
        text = line.replace("%", "%%")
        if kind == "bool":
            parser.add_argument(f"--{flag}", dest=key, action="store_true", default=None, help=text)
        elif kind == "secrets":
            parser.add_argument(
                f"--{flag}", dest=key, metavar=key.upper(), action="append", default=None, help=text
            )
        else:
            parser.add_argument(f"--{flag}", dest=key, metavar=key.upper(), default=None, help=text)


def config_from(args: argparse.Namespace, keys: Iterable[str] | None = None) -> _core.ServiceConfig:
    """The configuration the flags of ``keys`` (default: all) describe, over the
    environment; raises ``_core.ConfigError`` naming the flag or variable."""
    chosen = keys if keys is not None else [row[0] for row in _core.config_table()]
    given: list[tuple[str, str]] = []
    for key in chosen:
        value = getattr(args, key, None)
        if value is True:
            given.append((key, "true"))
        elif isinstance(value, str):
            given.append((key, value))
        elif isinstance(value, list):
            given.extend((key, v) for v in value)
    return _core.ServiceConfig.from_args(given)
