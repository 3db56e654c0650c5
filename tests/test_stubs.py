"""The hand-written stubs match the compiled module (mypy.stubtest)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import deepsearch_stream


def test_stubtest_is_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "deepsearch_stream", "--ignore-missing-stub"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_is_typed() -> None:
    assert (Path(deepsearch_stream.__file__).parent / "py.typed").exists()
