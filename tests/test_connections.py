"""The connection layer of both servers, as real processes on loopback, spoken to over
raw sockets: Nagle, the header and body timeouts, the connection cap, request framing
(smuggling, oversized and endless bodies) and how a request head that cannot be read is
answered. Both must answer alike."""

from __future__ import annotations

import json
import socket
import statistics
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers import BACKENDS, Server, running

Q = "What is Tokio?"


@pytest.fixture(scope="module")
def pair(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    """Both servers with short timeouts and a small connection cap."""
    cache = tmp_path_factory.mktemp("cache")
    args = [
        "--corpus",
        str(corpus),
        "--cache-dir",
        str(cache),
        "--header-timeout",
        "1",
        "--body-timeout",
        "1",
        "--max-connections",
        "40",
    ]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    # The client side never waits on Nagle: what is measured is the server's.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response with a Content-Length body: status, headers (lower-case), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed mid-body"
        body += chunk
    return status, headers, body[:length]


def read_until_closed(sock: socket.socket, limit: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes; and when it closed (monotonic)."""
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data, time.monotonic()


def exchange(server: Server, request: bytes) -> tuple[int, bytes, bool]:
    """Sends raw bytes; the answer's status, body, and whether the server then closed."""
    with connect(server) as sock:
        sock.sendall(request)
        status, _, body = read_response(sock)
        rest, _ = read_until_closed(sock, 5)
        return status, body, rest == b""


@pytest.mark.parametrize("backend", BACKENDS)
def test_responses_on_a_keep_alive_connection_are_not_held_back(
    pair: dict[str, Server], backend: str
) -> None:
    """Nagle on the server's side meets the client's delayed ACK: each response written
    in two parts waits ~40 ms for the ACK of the first. Not a speed target: a latency
    floor that only the bug produces."""
    with connect(pair[backend]) as sock:
        took = []
        for _ in range(20):
            started = time.perf_counter()
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            status, _, body = read_response(sock)
            took.append(time.perf_counter() - started)
            assert status == 200 and body == b'{"status": "ok"}'
    assert statistics.median(took) < 0.020, took


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_request_head_sent_slowly_is_cut_off_at_the_header_timeout(
    pair: dict[str, Server], backend: str
) -> None:
    with connect(pair[backend]) as sock:
        started = time.monotonic()
        sock.settimeout(0.2)
        closed_at = None
        for byte in b"GET /healthz HTTP/1.1\r\nHost: slow\r\nX-A: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    closed_at = time.monotonic()
                    break
            except TimeoutError:
                continue
            except OSError:
                closed_at = time.monotonic()
                break
        assert closed_at is not None, "still open after 20 s of a one-byte-a-tick head"
        assert 0.8 < closed_at - started < 3.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_connection_that_sends_nothing_is_closed_at_the_header_timeout(
    pair: dict[str, Server], backend: str
) -> None:
    with connect(pair[backend]) as sock:
        started = time.monotonic()
        data, closed_at = read_until_closed(sock, 10)
    assert data == b""
    assert 0.8 < closed_at - started < 3.0
    with connect(pair[backend]) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_response(sock)[0] == 200
        started = time.monotonic()
        # Idle after a response: closed as well.
        data, closed_at = read_until_closed(sock, 10)
    assert data == b""
    assert closed_at - started < 3.0


def test_past_the_connection_cap_a_connection_gets_503_and_healthz_answers_below_it(
    pair: dict[str, Server],
) -> None:
    refusals = {}
    for backend, server in pair.items():
        slow = [connect(server) for _ in range(30)]
        for sock in slow:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        try:
            # Below the cap, under a slowloris load: answered at once.
            started = time.monotonic()
            with connect(server) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                assert read_response(sock)[0] == 200
            assert time.monotonic() - started < 0.5
            more = [connect(server) for _ in range(15)]
            answers = []
            for sock in more:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                answers.append(read_until_closed(sock, 5)[0])
                sock.close()
            refused = [a for a in answers if a.startswith(b"HTTP/1.1 503")]
            assert refused, answers
            refusals[backend] = refused[0]
            head, body = refused[0].split(b"\r\n\r\n", 1)
            assert b"retry-after: 1" in head.lower()
            assert json.loads(body)["error"]["code"] == "too_many_connections"
        finally:
            for sock in slow:
                sock.close()
        # Once the slow ones are gone, the server answers again.
        deadline = time.monotonic() + 5
        while True:
            with connect(server) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                if read_response(sock)[0] == 200:
                    break
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert refusals["fastapi"] == refusals["axum"]


def post_head(length: int | str, extra: str = "") -> bytes:
    return (
        "POST /deepsearch HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
        f"content-length: {length}\r\n{extra}\r\n"
    ).encode()


def test_a_body_sent_too_slowly_gets_408_and_the_connection_closes(
    pair: dict[str, Server],
) -> None:
    got = {}
    for backend, server in pair.items():
        with connect(server) as sock:
            started = time.monotonic()
            sock.sendall(post_head(100) + b'{"query": ')
            status, headers, body = read_response(sock)
            took = time.monotonic() - started
            rest, _ = read_until_closed(sock, 5)
        assert status == 408 and 0.8 < took < 3.0, (status, took)
        assert headers["connection"] == "close" and rest == b""
        got[backend] = body
    assert got["fastapi"] == got["axum"]
    assert json.loads(got["axum"])["error"]["code"] == "body_timeout"
    # Counted as any refusal, on both faces (the core answers it).
    for backend, server in pair.items():
        with urllib.request.urlopen(server.url + "/metrics", timeout=5) as res:
            text = res.read().decode()
        assert 'deepsearch_requests_total{route="/deepsearch",status="408"}' in text, backend


@pytest.mark.parametrize("length", [2_000_000, 2**63 - 1])
def test_a_declared_body_over_the_cap_is_refused_at_once(
    pair: dict[str, Server], length: int
) -> None:
    got = {}
    for backend, server in pair.items():
        started = time.monotonic()
        status, body, _ = exchange(server, post_head(length) + b"{}")
        assert status == 413 and time.monotonic() - started < 0.9, backend
        got[backend] = body
    assert got["fastapi"] == got["axum"]


@pytest.mark.parametrize(
    "chunks",
    [b"10000000000000000\r\nab", b"2\nab\n0\n\n", b"ffffffffffffffffffff\r\n"],
    ids=["chunk-of-2^64", "lf-only", "chunk-size-overflow"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_odd_chunked_bodies_end_in_an_answer(
    pair: dict[str, Server], backend: str, chunks: bytes
) -> None:
    head = (
        b"POST /deepsearch HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    with connect(pair[backend]) as sock:
        started = time.monotonic()
        sock.sendall(head + chunks)
        data, closed_at = read_until_closed(sock, 10)
    assert closed_at - started < 3.0
    status = int(data.split(b" ", 2)[1]) if data else None
    assert status in (400, 408, 413), data


SMUGGLED = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"


@pytest.mark.parametrize("backend", BACKENDS)
def test_content_length_with_chunked_never_runs_what_follows_as_a_request(
    pair: dict[str, Server], backend: str
) -> None:
    body = b'{"query": "q", "stream": false, "max_loop": 1}'
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    request = post_head(len(chunked), "transfer-encoding: chunked\r\n") + chunked + SMUGGLED
    with connect(pair[backend]) as sock:
        sock.sendall(request)
        data, _ = read_until_closed(sock, 10)
    assert data.count(b"HTTP/1.1 ") == 1, data
    assert b"deepsearch_streams_total" not in data


@pytest.mark.parametrize("backend", BACKENDS)
def test_transfer_encoding_on_http_1_0_is_refused(pair: dict[str, Server], backend: str) -> None:
    request = (
        b"POST /deepsearch HTTP/1.0\r\ncontent-type: application/json\r\n"
        b"transfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + SMUGGLED
    )
    with connect(pair[backend]) as sock:
        sock.sendall(request)
        data, _ = read_until_closed(sock, 10)
    assert data.startswith(b"HTTP/1.1 400 "), data
    assert data.count(b"HTTP/1.") == 1


BIG = "x" * (1 << 20)
# Request heads each server must read alike: (raw request, status).
HEADS: dict[str, tuple[bytes, int]] = {
    "no-host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    "two-hosts": (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "http-1.0-no-host": (b"GET /healthz HTTP/1.0\r\n\r\n", 200),
    "obs-fold": (b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n", 400),
    "http-1.2": (b"GET /healthz HTTP/1.2\r\nHost: t\r\n\r\n", 400),
    "absolute-form": (b"GET http://t/healthz HTTP/1.1\r\nHost: t\r\n\r\n", 200),
    "100-headers": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"x-h%d: v\r\n" % i for i in range(99))
        + b"\r\n",
        200,
    ),
    "101-headers": (
        b"GET /healthz HTTP/1.1\r\nHost: t\r\n"
        + b"".join(b"x-h%d: v\r\n" % i for i in range(100))
        + b"\r\n",
        431,
    ),
    "1-mib-header": (f"GET /healthz HTTP/1.1\r\nHost: t\r\nx-big: {BIG}\r\n\r\n".encode(), 431),
    "control-byte-in-last-event-id": (
        b"GET /deepsearch?query=q HTTP/1.1\r\nHost: t\r\nlast-event-id: 1\x01\r\n\r\n",
        400,
    ),
    "percent-encoded-path": (b"GET /%64eepsearch?query=q HTTP/1.1\r\nHost: t\r\n\r\n", 404),
}


@pytest.mark.parametrize("case", list(HEADS))
def test_request_heads_are_read_alike(pair: dict[str, Server], case: str) -> None:
    request, want = HEADS[case]
    got: dict[str, Any] = {}
    for backend, server in pair.items():
        status, body, closed = exchange(server, request)
        got[backend] = (status, body, closed or status < 400)
    assert got["fastapi"] == got["axum"]
    assert got["axum"][0] == want


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_file_descriptors_the_server_backs_off_and_logs_once(
    backend: str, corpus: Path, tmp_path: Path
) -> None:
    log = tmp_path / "log.txt"
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--header-timeout", "30"]
    with log.open("wb") as out, running(backend, args, stderr=out, fd_limit=128) as server:
        held = []
        try:
            for _ in range(200):
                held.append(connect(server))
            started = log.stat().st_size
            time.sleep(3)
            written = log.read_bytes()[started:]
            # Still there: once connections close, it accepts again (those still queued
            # first: they are closed too).
            for sock in held:
                sock.close()
            deadline = time.monotonic() + 5
            while True:
                try:
                    with connect(server) as sock:
                        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                        if read_response(sock)[0] == 200:
                            break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "never accepted again"
                time.sleep(0.2)
        finally:
            for sock in held:
                sock.close()
    lines = written.decode(errors="replace").splitlines()
    assert len(lines) <= 4, lines[:20]
