"""Where the corpus lives: the cache directory rule shared with the Rust server."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Environment variable naming the cache directory (same as the Rust ``CACHE_DIR_ENV``).
CACHE_DIR_ENV = "DEEPSEARCH_CACHE_DIR"

#: Name of the corpus directory inside the cache directory.
CORPUS_DIR_NAME = "python-docs"

_APP_DIR = "deepsearch-stream"


def default_cache_dir() -> Path:
    """The cache directory: ``$DEEPSEARCH_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/deepsearch-stream``, else ``~/.cache/deepsearch-stream``.

    Unset, empty and whitespace-only variables count as unset, and ``~`` means ``$HOME``
    (with no ``$HOME`` either, ``<system temp dir>/deepsearch-stream``), exactly like the
    Rust ``search::local::default_cache_dir``.
    """

    def non_empty(name: str) -> str | None:
        value = os.environ.get(name)
        return value if value is not None and value.strip() else None

    if (explicit := non_empty(CACHE_DIR_ENV)) is not None:
        return Path(explicit)
    if (xdg := non_empty("XDG_CACHE_HOME")) is not None:
        return Path(xdg) / _APP_DIR
    if (home := non_empty("HOME")) is not None:
        return Path(home) / ".cache" / _APP_DIR
    return _system_temp_dir() / _APP_DIR


def _system_temp_dir() -> Path:
    # Rust's std::env::temp_dir(): $TMPDIR, else /tmp on Unix; the OS rule on Windows.
    if os.name == "posix":
        return Path(os.environ.get("TMPDIR") or "/tmp")
    return Path(tempfile.gettempdir())


def default_corpus_dir() -> Path:
    """Where the default corpus lives: ``default_cache_dir() / "python-docs"``."""
    return default_cache_dir() / CORPUS_DIR_NAME
