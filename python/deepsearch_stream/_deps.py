"""One line, not a traceback, when a dependency of a command is not installed."""

from __future__ import annotations

import sys

# Top-level module -> what to install. fastapi and uvicorn are dependencies of the
# package itself, missing only from an install with --no-deps or a broken venv.
_INSTALL = {
    "fastapi": "pip install 'deepsearch-stream'",
    "starlette": "pip install 'deepsearch-stream'",
    "pydantic": "pip install 'deepsearch-stream'",
    "uvicorn": "pip install 'deepsearch-stream'",
    "pytest": "pip install 'deepsearch-stream[testing]'",
    "httpx2": "pip install 'deepsearch-stream[testing]'",
}


def missing(error: ModuleNotFoundError) -> int:
    """Reports ``error`` in one line naming what to install (exit status 1), or raises it
    again when it is not about a known dependency (a bug, then: keep the traceback)."""
    top = (error.name or "").split(".")[0]
    fix = _INSTALL.get(top)
    if fix is None:
        raise error
    print(f"deepsearch-stream: {top} is not installed; install it with: {fix}", file=sys.stderr)
    return 1
