"""What both servers write to their logs and keep: never a search's query string or a
Redis password; replay logs gone when their TTL is up, with nothing else happening."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from servers import BACKENDS, command, running

SECRET = "my-private-medical-question"


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_query_string_is_never_logged(backend: str, corpus: Path, tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path)]
    with log.open("wb") as out, running(backend, args, stderr=out) as server:
        r = httpx.get(
            f"{server.url}/deepsearch",
            params={"query": SECRET, "stream": "false", "api_key": "k-" + SECRET},
            timeout=30,
        )
        assert r.status_code == 200
        httpx.get(f"{server.url}/nowhere?q={SECRET}", timeout=30)
        server.terminate()
        assert server.process.stdout is not None
        # uvicorn writes its access lines to stdout.
        text = server.process.stdout.read().decode(errors="replace")
    text += log.read_text(errors="replace")
    assert "/deepsearch" in text or backend == "axum", text
    assert SECRET not in text, text


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:1/0?pass=s3cr3t",
        "redis://:s3cr3t@127.0.0.1:1/0",
        "redis//:s3cr3t@127.0.0.1/0",
        "redis://u:s3cr3t@127.0.0.1:1:2/0",
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_redis_password_is_masked_in_errors(backend: str, url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        command(backend, ["--port", "0", "--redis", url, "--cache-dir", str(tmp_path)]),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode != 0
    said = (done.stdout + done.stderr).decode(errors="replace")
    assert "redis" in said.lower(), said
    assert "s3cr3t" not in said, said


@pytest.mark.parametrize("backend", BACKENDS)
def test_replay_logs_expire_on_time(backend: str, corpus: Path, tmp_path: Path) -> None:
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--replay-ttl", "4"]
    with running(backend, args) as server:
        for n in range(2):
            body = {"query": "What is Tokio?", "request_id": f"ttl-{n}", "stream_mode": "final"}
            r = httpx.post(f"{server.url}/deepsearch", json=body, timeout=30)
            assert r.status_code == 200 and re.search(
                r"data: \[DONE\]\nid: [0-9a-f]{32}\.\d+\n\n$", r.text
            )
        assert logs_held(server.url) == 2
        # Nothing else happens on the server meanwhile: no stream starts.
        time.sleep(6)
        assert logs_held(server.url) == 0


def logs_held(base: str) -> float:
    text = httpx.get(base + "/metrics").text
    match = re.search(r"^deepsearch_replay_logs (\S+)$", text, re.M)
    assert match, text
    return float(match.group(1))
