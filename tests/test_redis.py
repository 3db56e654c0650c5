"""Replay logs in Redis (``--redis URL``), on both servers as real processes: two
instances share one ``redis-server`` started here on a free port, as two instances
behind a load balancer would. A client cut off on A resumes on B with the same events
as an uninterrupted run; A killed with SIGKILL leaves B's client with A's log, then
``interrupted`` and ``[DONE]``; Redis killed mid-stream leaves the live stream whole
(the failure counted in /metrics) and a resume elsewhere ``resume_unavailable``.

``redis-server`` must be installed (Debian: ``apt-get install redis-server``; .ci/run
does): without it these tests fail, they are not skipped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_resume import Q, ids_of, key_of, keyed_events, read_some, same_search, whole_run
from test_servers import metric, read_across

from deepsearch_stream.testing import Handler, LocalServer, searxng_results
from servers import BACKENDS, HangingEngine, Server, command, running


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Redis:
    """A ``redis-server`` of the test's own, without persistence."""

    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "these tests need a real `redis-server` on the PATH: install it "
                "(Debian: apt-get install redis-server; .ci/run does)"
            )
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = subprocess.Popen(
            [
                binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", str(tmp)),
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.kill()
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    server = Redis(tmp_path)
    yield server
    server.kill()


class GatedEngine:
    """A SearXNG that holds every search until ``open`` is set, then answers one hit:
    keeps a search running mid-test, for as long as the test needs."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.asked = threading.Event()
        gate = self

        class Gated(Handler):
            def do_GET(self) -> None:
                gate.asked.set()
                gate.open.wait(30)
                hit = ("Tokio", "https://tokio.rs/", "Tokio is an asynchronous runtime for Rust.")
                self.send_json(200, searxng_results(hit))

        self.server = LocalServer(Gated)
        self.url = self.server.url

    def close(self) -> None:
        self.open.set()
        self.server.close()


@pytest.fixture
def gated() -> Iterator[GatedEngine]:
    engine = GatedEngine()
    yield engine
    engine.close()


def searxng_args(redis: Redis, *extra: str) -> list[str]:
    return ["--engines", "searxng", "--heartbeat", "30", "--redis", redis.url, *extra]


@contextmanager
def two_instances(
    backend: str, redis: Redis, engine_url: str, *a_extra: str
) -> Iterator[tuple[Server, Server, httpx.Client]]:
    """Instances A and B on one Redis and one SearXNG, as behind a load balancer."""
    env = {"SEARXNG_URL": engine_url}
    with (
        running(backend, searxng_args(redis, *a_extra), env=env) as a,
        running(backend, searxng_args(redis), env=env) as b,
        httpx.Client(timeout=30) as client,
    ):
        yield a, b, client


def read_rest(client: httpx.Client, base: str, request_id: str, last: str) -> list[Any]:
    """A resume after the event id ``last`` (``<key>.<n>``); the events, ids whole."""
    r = client.post(
        base + "/deepsearch",
        json={"query": Q, "request_id": request_id},
        headers={"last-event-id": last},
    )
    assert r.status_code == 200
    return keyed_events(r.content)


@pytest.mark.parametrize("backend", BACKENDS)
def test_cut_off_on_a_resumes_on_b_with_the_uninterrupted_sequence(
    backend: str, redis: Redis, gated: GatedEngine
) -> None:
    with two_instances(backend, redis, gated.url) as (a, b, client):
        body = {"query": Q, "request_id": "cut-ab"}
        first = read_some(client, "POST", a.url + "/deepsearch", 1, json=body)
        assert gated.asked.wait(10)
        # The search is held on A while the client comes back on B, which tails it live.
        resumed: list[Any] = []
        reader = threading.Thread(
            target=lambda: resumed.extend(read_rest(client, b.url, "cut-ab", first[-1][0]))
        )
        reader.start()
        time.sleep(1.0)
        gated.open.set()
        reader.join(30)
        assert not reader.is_alive(), "the resumed stream never ended"
        whole = whole_run(a.url, "whole-ab")
    joined = first + resumed
    assert ids_of(joined) == list(range(1, len(ids_of(joined)) + 1)), "no gap, no duplicate"
    assert key_of(joined) == key_of(first), "B serves A's stream under its key"
    assert joined[-1][1] == "[DONE]"
    assert joined[-2][1]["type"] == "final"
    assert same_search(joined, "cut-ab") == same_search(whole, "whole-ab")


@pytest.mark.parametrize("backend", BACKENDS)
def test_disconnect_and_resume_on_the_same_instance_with_redis(
    backend: str, redis: Redis, corpus: Path, tmp_path: Path
) -> None:
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--redis", redis.url]
    with running(backend, args) as server, httpx.Client(timeout=30) as client:
        body = {"query": Q, "request_id": "r-same"}
        whole = whole_run(server.url, "r-w")
        first = read_some(client, "POST", server.url + "/deepsearch", 3, json=body)
        rest = read_rest(client, server.url, "r-same", first[-1][0])
    joined = first + rest
    assert ids_of(joined) == list(range(1, len(ids_of(joined)) + 1)), "no gap, no duplicate"
    assert same_search(joined, "r-same") == same_search(whole, "r-w")


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_killed_instance_leaves_its_log_then_interrupted(
    backend: str, redis: Redis, hanging: HangingEngine
) -> None:
    with two_instances(backend, redis, hanging.url) as (a, b, client):
        body = {"query": Q, "request_id": "killed"}
        first = read_some(client, "POST", a.url + "/deepsearch", 1, json=body)
        assert hanging.accepted.wait(10)
        time.sleep(0.3)  # what A logs before its engine call is in Redis
        a.process.kill()
        a.process.wait()
        started = time.monotonic()
        got = read_rest(client, b.url, "killed", f"{key_of(first)}.0")
        took = time.monotonic() - started
    assert took < 15, f"the resume on B took {took:.1f} s"
    assert got[: len(first)] == first, "B replays what A had logged, byte for byte"
    assert got[-1][1] == "[DONE]"
    ident, error = got[-2]
    assert error["type"] == "error" and error["data"]["code"] == "interrupted", error
    assert ident is not None, "interrupted is the log's next frame"
    assert ids_of(got) == list(range(1, len(ids_of(got)) + 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_after_sigterm_on_a_the_log_resumes_on_b_with_the_shutdown_error(
    backend: str, redis: Redis, hanging: HangingEngine
) -> None:
    with two_instances(backend, redis, hanging.url, "--shutdown-timeout", "5") as (a, b, client):
        on_a, _ = read_across(
            client,
            a.url + "/deepsearch",
            {"query": Q, "request_id": "drained"},
            hanging.accepted,
            lambda: a.process.send_signal(15),
            wait=10,
        )
        assert a.process.wait(15) in (0, -15)
        # The client lost nothing; the log A left in Redis ends the same way.
        key = key_of(on_a)
        whole = read_rest(client, b.url, "drained", f"{key}.0")
        middle = ids_of(on_a)[len(ids_of(on_a)) // 2]
        rest = read_rest(client, b.url, "drained", f"{key}.{middle}")
        # [DONE]'s id, on B too: the end was read.
        done = client.post(
            b.url + "/deepsearch",
            json={"query": Q, "request_id": "drained"},
            headers={"last-event-id": on_a[-1][0]},
        )
        # Past it: an id never sent, refused on B as on A.
        unsent = client.post(
            b.url + "/deepsearch",
            json={"query": Q, "request_id": "drained"},
            headers={"last-event-id": f"{key}.{ids_of(on_a)[-1] + 5}"},
        )
    assert done.status_code == 204
    assert unsent.status_code == 400 and unsent.json()["error"]["code"] == "unsent_event_id"
    assert on_a[-1][1] == "[DONE]"
    assert on_a[-2][1]["data"]["code"] == "shutdown", on_a[-2]
    assert ids_of(on_a) == list(range(1, len(on_a) + 1)), "[DONE] has the last id"
    assert whole == on_a, "B serves A's whole log, the shutdown error included"
    assert rest == on_a[middle:], "and from any id, the rest of it"


def store_errors(base: str) -> float:
    return metric(base, "deepsearch_replay_store_errors_total")


@pytest.mark.parametrize("backend", BACKENDS)
def test_redis_going_away_mid_stream_spares_the_live_stream(
    backend: str, redis: Redis, gated: GatedEngine
) -> None:
    with two_instances(backend, redis, gated.url) as (a, b, client):
        assert store_errors(a.url) == 0

        def redis_goes_away() -> None:
            redis.kill()
            gated.open.set()

        got, started = read_across(
            client,
            a.url + "/deepsearch",
            {"query": Q, "request_id": "no-redis"},
            gated.asked,
            redis_goes_away,
            wait=10,
        )
        took = time.monotonic() - started
        assert got[-1][1] == "[DONE]"
        assert got[-2][1]["type"] == "final", "the live stream went on to its end"
        assert ids_of(got) == list(range(1, len(ids_of(got)) + 1))
        assert took < 10, f"the live stream waited {took:.1f} s on Redis"
        assert store_errors(a.url) == 1, "counted once for the stream"
        # On another instance, the resume cannot be served: said so, then [DONE].
        rest = read_rest(client, b.url, "no-redis", f"{key_of(got)}.1")
    assert rest[-1] == (None, "[DONE]")
    assert rest[0][0] is None
    assert rest[0][1]["data"]["code"] == "resume_unavailable", rest


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_unreachable_redis_stops_the_server_at_start(backend: str) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    args = ["--host", "127.0.0.1", "--port", "0", "--engines", "searxng", "--redis", url]
    proc = subprocess.run(
        command(backend, args),
        capture_output=True,
        timeout=60,
        env={**os.environ, "SEARXNG_URL": "http://127.0.0.1:9"},
    )
    assert proc.returncode != 0
    assert "listening" not in proc.stdout.decode()
    assert "cannot reach Redis at redis://127.0.0.1" in proc.stderr.decode(), proc.stderr
