"""Running the npm clients' scripts (``tests/js/``) under Node, for the protocol suites."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent


def run_node(script: str, *args: str, api_key: str | None = None, timeout: float = 60) -> Any:
    """Runs ``tests/js/<script>`` with ``args`` and returns the JSON it prints last."""
    node = shutil.which("node")
    assert node, "Node.js is needed for the npm client tests"
    assert (TESTS / "node_modules").is_dir(), (
        "the npm clients are not installed: run `npm ci --prefix tests` (.ci/run does)"
    )
    env = {**os.environ, "SUPPRESS_TRANSFORMATION_WARNINGS": "1"}
    if api_key is not None:
        env["API_KEY"] = api_key
    done = subprocess.run(
        [node, str(TESTS / "js" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=TESTS,
        check=False,
    )
    assert done.returncode == 0, f"{script} failed: {done.stderr}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"{script} printed nothing: {done.stderr}"
    return json.loads(lines[-1])
