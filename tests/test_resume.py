"""Resuming streams with Last-Event-ID on both servers, as real processes: a client that
drops and comes back misses nothing and gets nothing twice (POST with the header, GET
with the query parameter, as EventSource does; a GET without request_id too, the event
id carrying the stream's key), only the stream's own key resumes it (a bare number, a
wrong key or another API key is answered as an unknown stream), an id past the log is
refused without taking the stream from its reader, [DONE]'s id answers 204, a live
request id is not taken by a new search (409), SIGTERM ends every stream with
``shutdown`` within its numbering, and a slow client is served losslessly within the
replay budget."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_servers import events, metric, normalize_event, read_across

from conftest import event_number, sse_events
from servers import BACKENDS, HangingEngine, Server, running

Q = "What is Tokio?"
Frame = tuple[str | None, Any]


def local_args(corpus: Path, cache: Path, *extra: str) -> list[str]:
    return ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30", *extra]


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cache = tmp_path_factory.mktemp("cache")
    with running(request.param, local_args(corpus, cache)) as s:
        yield s


def same_search(frames: list[Frame], request_id: str) -> list[Frame]:
    """Frames with the request id and the stream's key made neutral, to compare two runs
    of one search."""
    out: list[Frame] = []
    for ident, data in frames:
        if isinstance(data, dict):
            data = {**data, "requestId": "<id>"} if "requestId" in data else data
        out.append((None if ident is None else str(event_number(ident)), data))
    return out


def keyed_events(body: bytes) -> list[Frame]:
    """Events but heartbeats, their ids whole (``<key>.<n>``): what a client resumes with."""
    return [(i, normalize_event(d)) for i, d in sse_events(body) if d != "heartbeat"]


def key_of(frames: list[Frame]) -> str:
    """The stream's key, from its events' ids."""
    keys = {i.rsplit(".", 1)[0] for i, _ in frames if i is not None}
    assert len(keys) == 1, keys
    return keys.pop()


def read_some(client: httpx.Client, method: str, url: str, n: int, **kwargs: Any) -> list[Frame]:
    """Opens a stream, reads until `n` frames with ids arrived, then drops the connection;
    returns those frames (what a client saw before its connection broke)."""
    with client.stream(method, url, **kwargs) as r:
        assert r.status_code == 200
        seen = b""
        for chunk in r.iter_bytes():
            seen += chunk
            complete = seen[: seen.rfind(b"\n\n") + 2]
            got = keyed_events(complete)
            numbered = [k for k, (i, _) in enumerate(got) if i is not None]
            if len(numbered) >= n:
                return got[: numbered[n - 1] + 1]
    raise AssertionError(f"the stream ended before {n} frames: {seen!r}")


def ids_of(frames: list[Frame]) -> list[int]:
    return [event_number(i) for i, _ in frames if i is not None]


def whole_run(base: str, request_id: str) -> list[Frame]:
    r = httpx.post(base + "/deepsearch", json={"query": Q, "request_id": request_id}, timeout=30)
    return [e for e in events(r.content) if e[1] != "heartbeat"]


def test_disconnect_mid_stream_then_resume_loses_nothing(server: Server) -> None:
    whole = whole_run(server.url, "r-whole")
    assert len(whole) > 5
    body = {"query": Q, "request_id": "r-cut"}
    with httpx.Client(timeout=30) as client:
        first = read_some(client, "POST", server.url + "/deepsearch", 3, json=body)
        last = first[-1][0]
        assert last is not None and last.startswith(key_of(first) + ".")
        r = client.post(server.url + "/deepsearch", json=body, headers={"last-event-id": last})
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert r.content.startswith(b"retry: 3000\ndata: heartbeat\nid: %s\n\n" % last.encode())
    rest = keyed_events(r.content)
    joined = first + rest
    assert ids_of(joined) == list(range(1, len(ids_of(joined)) + 1)), "no gap, no duplicate"
    assert key_of(joined) == key_of(first)
    assert joined[-1][1] == "[DONE]" and joined[-1][0] is not None, "[DONE] has its own id"
    assert same_search(joined, "r-cut") == same_search(whole, "r-whole")


@pytest.mark.parametrize("request_id", ["&request_id=r-es", ""])
def test_eventsource_get_resumes_with_the_query_parameter(server: Server, request_id: str) -> None:
    """With or without request_id: the event id alone finds the stream."""
    url = server.url + "/deepsearch?query=What+is+Tokio%3F" + request_id
    with httpx.Client(timeout=30) as client:
        first = read_some(client, "GET", url, 2, headers={"accept": "text/event-stream"})
        last = first[-1][0]
        r = client.get(f"{url}&last_event_id={last}")
        again = client.get(url, headers={"last-event-id": f"{key_of(first)}.0"})
        done = client.get(url, headers={"last-event-id": keyed_events(r.content)[-1][0]})
    rest = keyed_events(r.content)
    assert ids_of(first + rest) == list(range(1, len(ids_of(first + rest)) + 1))
    assert rest[-1][1] == "[DONE]"
    assert rest[-2][1]["type"] == "final"
    # From 0: the whole log again, identical to what the two connections got.
    assert keyed_events(again.content) == first + rest
    # With [DONE]'s id: the client has read the end; 204 tells EventSource to stop.
    assert (done.status_code, done.content) == (204, b"")


def test_a_resume_too_late_is_expired_and_counted(server: Server) -> None:
    r = httpx.post(
        server.url + "/deepsearch",
        json={"query": Q, "request_id": "r-never"},
        headers={"last-event-id": "0123456789abcdef0123456789abcdef.12"},
        timeout=30,
    )
    assert r.status_code == 200
    assert b"id:" not in r.content, "an expired answer does not move the client's id"
    got = events(r.content)
    assert got[-1] == (None, "[DONE]"), "nor does its [DONE]"
    assert got[0][1]["data"]["code"] == "expired" and got[0][1]["isFinal"] is True
    assert metric(server.url, 'deepsearch_resumes_total{outcome="expired"}') >= 1


def test_bad_last_event_id_is_a_400_naming_it(server: Server) -> None:
    r = httpx.post(
        server.url + "/deepsearch",
        json={"query": Q, "request_id": "r-bad"},
        headers={"last-event-id": "abc"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "Last-Event-ID"
    assert r.json()["error"]["code"] == "invalid_last_event_id"


def read_until(chunks: Iterator[bytes], seen: bytes, done: Any) -> bytes:
    while not done(seen):
        seen += next(chunks)
    return seen


@pytest.mark.parametrize("backend", BACKENDS)
def test_strangers_can_neither_resume_nor_take_a_live_stream(
    backend: str, hanging: HangingEngine
) -> None:
    """A bare number, a request id or a wrong key is answered as for an unknown stream;
    an id past the log is refused; a new search with the live one's request id is
    refused; and none of them cuts the live client off."""
    args = ["--engines", "searxng", "--heartbeat", "0.3"]
    with (
        running(backend, args, env={"SEARXNG_URL": hanging.url}) as server,
        httpx.Client(timeout=30) as client,
    ):
        url = server.url + "/deepsearch"
        body = {"query": Q, "request_id": "live"}
        with client.stream("POST", url, json=body) as live:
            chunks = live.iter_bytes()
            seen = read_until(chunks, b"", lambda b: keyed_events(b[: b.rfind(b"\n\n") + 2]))
            assert hanging.accepted.wait(10)
            key = key_of(keyed_events(seen[: seen.rfind(b"\n\n") + 2]))
            wrong = ("1" if key[0] == "0" else "0") + key[1:]
            for guess in ["0", "1", f"{wrong}.0", "live.1", f"{key.upper()}.0"]:
                r = client.post(url, json=body, headers={"last-event-id": guess})
                assert r.status_code == 200, guess
                assert b"id:" not in r.content, guess
                assert events(r.content)[0][1]["data"]["code"] == "expired", guess
            r = client.post(url, json=body, headers={"last-event-id": f"{key}.99"})
            assert r.status_code == 400, r.text
            assert r.json()["error"]["code"] == "unsent_event_id"
            assert r.json()["error"]["field"] == "Last-Event-ID"
            r = client.post(url, json=body)
            assert r.status_code == 409, r.text
            assert r.json()["error"] == {
                "code": "request_id_in_use",
                "field": "request_id",
                "message": r.json()["error"]["message"],
            }
            # The live client still has its stream: heartbeats go on, no `superseded`.
            more = read_until(chunks, b"", lambda b: b.count(b"data: heartbeat\n\n") >= 2)
            assert b"superseded" not in more and b"[DONE]" not in more
            assert hanging.closed_at == [], "the search was stopped"


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_ends_streams_within_their_numbering(backend: str, hanging: HangingEngine) -> None:
    """The shutdown error is the log's next frame (a resume elsewhere reads the same),
    and a search lingering for a client that left does not hold the server up."""
    args = ["--engines", "searxng", "--heartbeat", "0.2", "--shutdown-timeout", "5"]
    with running(backend, args, env={"SEARXNG_URL": hanging.url}) as server:
        with httpx.Client(timeout=30) as client:
            read_some(
                client,
                "POST",
                server.url + "/deepsearch",
                1,
                json={"query": Q, "request_id": "gone"},
            )
            got, started = read_across(
                client,
                server.url + "/deepsearch",
                {"query": Q, "request_id": "stays"},
                hanging.accepted,
                lambda: server.process.send_signal(15),
            )
        assert server.process.wait(10) in (0, -15)
        assert time.monotonic() - started < 10
    assert got[-1][1] == "[DONE]"
    ident, error = got[-2]
    assert error["type"] == "error" and error["data"]["code"] == "shutdown"
    assert ident is not None
    assert ids_of(got) == list(range(1, len(ids_of(got)) + 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_slow_client_is_served_losslessly_within_the_budget(
    backend: str, corpus: Path, tmp_path: Path
) -> None:
    budget, per_stream = 4096, 1024
    args = local_args(
        corpus,
        tmp_path,
        "--replay-max-bytes",
        str(budget),
        "--replay-max-stream-bytes",
        str(per_stream),
    )
    body = {
        "query": Q,
        "request_id": "slow",
        "max_loop": 3,
        "stream_mode": {"mode": "token", "token": 1},
    }
    with running(backend, args) as server:
        fast = httpx.post(server.url + "/deepsearch", json={**body, "request_id": "fast"})
        expected = [e for e in events(fast.content) if e[1] != "heartbeat"]
        assert len(expected) > 20
        host, port = server.url.removeprefix("http://").split(":")
        sock = socket.socket()
        # A small receive window, so the server feels the slow reader.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.connect((host, int(port)))
        payload = json.dumps(body).encode()
        sock.sendall(
            b"POST /deepsearch HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(payload), payload)
        )
        received = b""
        peak = 0
        while True:
            chunk = sock.recv(256)
            if not chunk:
                break
            received += chunk
            peak = max(peak, metric(server.url, "deepsearch_replay_bytes"))
            time.sleep(0.01)
        sock.close()
        # The budget was in play: frames the client had passed were dropped for room.
        assert metric(server.url, "deepsearch_replay_trimmed_frames_total") >= 1
    head, _, raw = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    if b"transfer-encoding: chunked" in head.lower():
        raw = dechunk(raw)
    got = [e for e in events(raw) if e[1] != "heartbeat"]
    assert same_search(got, "slow") == same_search(expected, "fast"), "nothing lost"
    assert peak <= budget, f"replay logs held {peak} bytes, over the {budget}-byte budget"


def dechunk(raw: bytes) -> bytes:
    out = b""
    while raw:
        size_line, _, raw = raw.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += raw[:size]
        raw = raw[size + 2 :]
    return out


@pytest.mark.parametrize("backend", BACKENDS)
def test_each_api_key_resumes_only_its_own_streams(
    backend: str, corpus: Path, tmp_path: Path
) -> None:
    """Several keys (a repeated --api-key and a key file): any passes, and a stream is
    scoped to the key that started it."""
    keys = tmp_path / "keys"
    keys.write_text("# one key a line\nkey-two\n\n  key-three  \n")
    args = [*local_args(corpus, tmp_path / "cache"), "--api-key", "key-one"]
    with running(backend, [*args, "--api-key-file", str(keys)]) as server:
        url = server.url + "/deepsearch"
        body = {"query": Q, "request_id": "scoped"}
        auth = {name: {"authorization": f"Bearer {name}"} for name in ("key-one", "key-two")}
        with httpx.Client(timeout=30) as client:
            assert (
                client.post(url, json=body, headers={"authorization": "Bearer nope"}).status_code
                == 401
            )
            assert (
                client.get(
                    server.url + "/metrics", headers={"authorization": "Bearer key-three"}
                ).status_code
                == 200
            )
            first = keyed_events(client.post(url, json=body, headers=auth["key-one"]).content)
            middle = first[len(first) // 2][0]
            assert middle is not None
            own = client.post(url, json=body, headers={**auth["key-one"], "last-event-id": middle})
            other = client.post(
                url, json=body, headers={**auth["key-two"], "last-event-id": middle}
            )
    assert keyed_events(own.content) == first[len(first) // 2 + 1 :]
    assert other.status_code == 200
    assert b"id:" not in other.content
    assert events(other.content)[0][1]["data"]["code"] == "expired"
