"""Resuming with the SSE clients people use, under Node, against both servers through a
proxy that cuts connections (``cutting_proxy``):

- ``@microsoft/fetch-event-source`` records an id as soon as it reads the ``id:`` line;
  ids are the last line of each frame, so a cut anywhere loses no frame and repeats none
  (but between that line and the frame's closing blank line, where the client drops the
  frame itself: ``dropped_by_the_client``);
- ``eventsource`` (the WHATWG EventSource) reconnects after the server's ``retry:`` with
  ``Last-Event-ID``, and, reconnecting once more after ``[DONE]``, is stopped by 204.

The npm packages are pinned in tests/package.json (``npm ci --prefix tests``)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cutting_proxy import CuttingProxy
from test_servers import normalize_event

from conftest import event_number
from servers import BACKENDS, ROOT, Server, running

JS = ROOT / "tests" / "js"
Q = "What is Tokio?"


def node(script: str, arg: dict[str, Any], timeout: float = 240) -> Any:
    assert (ROOT / "tests" / "node_modules" / "@microsoft" / "fetch-event-source").is_dir(), (
        "the npm clients are not installed: run `npm ci --prefix tests`"
    )
    done = subprocess.run(
        ["node", str(JS / script), json.dumps(arg)],
        capture_output=True,
        timeout=timeout,
        cwd=JS,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return json.loads(done.stdout)


@pytest.fixture(scope="module", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, corpus: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    with running(request.param, [*args, "--retry-ms", "400"]) as s:
        yield s


def neutral(data: str) -> Any:
    """An event's data with what differs between two runs of one search taken out."""
    msg = normalize_event(data)
    if isinstance(msg, dict):
        msg.pop("requestId", None)
    return msg


def check_session(events: list[dict[str, str]], expected: list[Any], missing: int = 0) -> None:
    """One client's events (heartbeats aside): each frame once, in order, ids
    consecutive under one key, ending with [DONE]; but event number ``missing``, when
    given, which the client dropped itself (see ``dropped_by_the_client``)."""
    got = [e for e in events if e["data"] not in ("heartbeat", "")]
    if missing:
        expected = expected[: missing - 1] + expected[missing:]
    assert [neutral(e["data"]) for e in got] == expected
    ids = [e["id"] for e in got]
    assert len({i.rsplit(".", 1)[0] for i in ids}) == 1, ids
    numbers = list(range(1, len(ids) + 2))
    if missing:
        numbers.remove(missing)
    assert [event_number(i) for i in ids] == numbers[: len(ids)], ids


ID_LINE_END = re.compile(rb"\nid: [0-9a-f]{32}\.(\d+)\n$")


def dropped_by_the_client(cut_response: bytes) -> int:
    """The event fetch-event-source loses by itself when a connection is cut between a
    frame's `id:` line (its last) and the blank line that ends it: it records an id as
    soon as it reads the line, before the frame is complete, so it resumes after a frame
    it never dispatched. No byte layout closes that one-byte window (an SSE frame needs
    its blank line); with the id first, the window was the whole frame. 0: none."""
    match = ID_LINE_END.search(cut_response)
    return int(match.group(1)) if match else 0


def cut_points(raw: bytes) -> list[int]:
    """Offsets to cut a response like ``raw`` at: spread over all of it, and around
    frame ends and ``id:`` lines, where a client that reads ids early goes wrong."""
    points = set(range(1, len(raw), max(1, len(raw) // 40)))
    at = 0
    while (at := raw.find(b"\nid: ", at + 1)) != -1:
        points.update((at, at + 1, at + 4))
    at = 0
    while (at := raw.find(b"\n\n", at + 1)) != -1:
        points.update((at - 1, at + 1, at + 2))
    return sorted(p for p in points if 0 < p < len(raw))[:160]


def test_fetch_event_source_loses_no_frame_at_any_cut(server: Server) -> None:
    # No request_id: each run is a new search (the server makes the id up), and the
    # event ids alone carry what a resume needs.
    body = json.dumps({"query": Q, "max_loop": 2})
    with CuttingProxy(server.url) as proxy:
        whole = node(
            "fetch_event_source.mjs",
            {"url": proxy.url, "body": body, "cuts": [10**9], "prefix": "whole"},
        )[0]
        expected = [neutral(e["data"]) for e in whole["events"] if e["data"] != "heartbeat"]
        assert expected[-1] == "[DONE]" and len(expected) > 5
        check_session(whole["events"], expected)
        raw = bytes(proxy.forwarded[0].response)
        cuts = cut_points(raw)
        assert len(cuts) > 40
        sessions = node(
            "fetch_event_source.mjs",
            {"url": proxy.url, "body": body, "cuts": cuts, "prefix": "cut"},
        )
        resumed = [r for r in proxy.forwarded if r.last_event_id is not None]
    cut_responses = {r.session: bytes(r.response) for r in proxy.forwarded if r.cut is not None}
    windows = 0
    for n, s in enumerate(sessions):
        missing = dropped_by_the_client(cut_responses[f"cut{n}"])
        windows += bool(missing)
        # In the window the client drops the frame if it read the id line's bytes
        # before the connection broke (undici may or may not hand over that last part).
        seen = [neutral(e["data"]) for e in s["events"]]
        got_it = seen.count(expected[missing - 1]) == expected.count(expected[missing - 1])
        try:
            check_session(s["events"], expected, missing if missing and not got_it else 0)
        except AssertionError as e:
            raise AssertionError(f"cut at byte {s['cut']} (missing {missing}): {e}") from e
    assert windows < len(cuts) // 4, "most cuts land elsewhere than the one-byte window"
    assert sum(s["reconnects"] for s in sessions) >= len(cuts) * 3 // 4
    assert resumed and all("." in r.last_event_id for r in resumed if r.last_event_id)


def test_eventsource_resumes_after_retry_and_stops_on_204(server: Server) -> None:
    with CuttingProxy(server.url) as proxy:
        url = f"{proxy.url}/deepsearch?query=What+is+Tokio%3F&max_loop=2"
        whole = node("eventsource.mjs", {"url": url + "&session=whole", "wait": 2000})
        raw = bytes(proxy.forwarded[0].response)
        # Inside the third event's frame.
        ends = [i for i in range(len(raw)) if raw.startswith(b"\n\n", i)]
        cut = ends[3] - 3
        got = node("eventsource.mjs", {"url": f"{url}&session=es&cut={cut}", "wait": 4000})
        mine = [r for r in proxy.forwarded if r.session == "es"]
    expected = [neutral(e["data"]) for e in whole["events"] if e["data"] != "heartbeat"]
    assert expected[-1] == "[DONE]"
    for run in (whole, got):
        check_session(run["events"], expected)
        # After [DONE] it reconnected once more, was answered 204, and stopped.
        assert run["closed"] is True, run
    assert len(got["opens"]) == 2, got["opens"]
    # The reconnect waited for the server's retry: (400 ms; the stream ran before).
    assert got["opens"][1] - got["opens"][0] >= 300, got["opens"]
    assert [r.last_event_id is None for r in mine] == [True, False, False]
    assert bytes(mine[0].response).count(b"retry: 400\n") == 1
    assert mine[2].last_event_id == got["events"][-1]["id"]
    assert bytes(mine[2].response).startswith(b"HTTP/1.1 204"), bytes(mine[2].response)[:200]
