"""Run by .ci/wheel-test with the fresh venv's Python, from a temporary directory: the
installed wheel, not the checkout, does everything below.

Usage: wheel_check.py SOURCE_ROOT VENV_BIN
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(sys.argv[1]).resolve()
BIN = Path(sys.argv[2])
README = (ROOT / "README.md").read_text(encoding="utf-8")
HERE = Path.cwd()


def step(text: str) -> None:
    print(f"wheel-test: {text}", flush=True)


def readme_block(heading: str) -> str:
    """The first ```python block after the line ``heading`` in README.md."""
    start = README.index(heading)
    match = re.compile(r"```python\n(.*?)```", re.S).search(README, start)
    assert match, f"no python block after {heading!r}"
    return match.group(1)


def installed() -> None:
    import deepsearch_stream

    where = Path(deepsearch_stream.__file__).resolve()
    assert ROOT not in where.parents, f"imported from the source tree: {where}"
    assert str(ROOT) not in sys.path and "" not in sys.path, sys.path
    step(f"deepsearch_stream {deepsearch_stream.__version__} from {where.parent}")


def seed_endpoint() -> None:
    """The README's seed endpoint, served by uvicorn and read over HTTP."""
    import uvicorn

    (HERE / "seed_app.py").write_text(readme_block("## The seed's endpoint, unchanged"))
    sys.path.insert(0, str(HERE))
    from seed_app import app  # type: ignore[import-not-found]

    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.05)
        body = {"query": "How do I run a subprocess?", "request_id": "seed-1", "max_loop": 2}
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/v1/tool/deepsearch"
        request = urllib.request.Request(
            url, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as r:
            assert r.status == 200, r.status
            text = r.read().decode()
    finally:
        server.should_exit = True
        thread.join(30)
    datas = [line[6:] for line in text.replace("\r\n", "\n").split("\n") if line[:6] == "data: "]
    assert datas[-1] == "[DONE]", datas[-3:]
    msgs = [json.loads(d) for d in datas[:-1] if d != "heartbeat"]
    assert msgs[0]["type"] == "status" and msgs[-1]["type"] == "final", msgs[-1]
    assert msgs[-1]["data"]["sources"], "the default corpus found nothing"
    step(f"seed endpoint: {len(msgs)} messages, {len(msgs[-1]['data']['sources'])} sources")


def testing_example() -> None:
    """The README's testing example, run by pytest with the installed plugin's fixtures."""
    (HERE / "test_readme_example.py").write_text(readme_block("## Testing your own endpoint"))
    r = subprocess.run(
        [
            str(BIN / "python"),
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_readme_example.py",
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0 and " passed" in r.stdout, r.stdout + r.stderr
    step("README testing example: " + r.stdout.strip().splitlines()[-1])


def search() -> None:
    question = "How do I run a subprocess and capture its output?"
    cli = str(BIN / "deepsearch-stream")
    r = subprocess.run([cli, "search", question], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Round 1 plan:" in r.stdout and "Answer:" in r.stdout, r.stdout
    assert re.search(r"^\[1\] .+\n    https://docs\.python\.org/", r.stdout, re.M), r.stdout
    r = subprocess.run(
        [cli, "search", "--json", question], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout)
    assert final["answer"] and final["sources"], final
    step(f"search: {len(final['sources'])} sources, first {final['sources'][0]['url']}")


def serve() -> None:
    proc = subprocess.Popen(
        [str(BIN / "deepsearch-stream"), "serve", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
            if sel.select(1):
                line = proc.stdout.readline()
                if "listening on http://" in line:
                    url = line.rsplit(" ", 1)[-1].strip()
        with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
            assert json.load(r) == {"status": "ok"}
        with urllib.request.urlopen(url + "/", timeout=10) as r:
            assert r.headers["content-type"].startswith("text/html")
            assert b"<html" in r.read().lower()
        step(f"serve: {url}/healthz ok, page served")
    finally:
        proc.send_signal(signal.SIGTERM)
        # uvicorn re-raises the SIGTERM it handled once it has shut down.
        code = proc.wait(30)
        assert code in (0, -signal.SIGTERM), f"serve did not exit cleanly on SIGTERM: {code}"


if __name__ == "__main__":
    os.chdir(HERE)
    installed()
    seed_endpoint()
    testing_example()
    search()
    serve()
    step("ok")
