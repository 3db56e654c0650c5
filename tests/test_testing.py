"""deepsearch_stream.testing: the SSE reader (the core's decoder), the stream assertions,
the model and engine stand-ins of its pytest plugin, and the README's example run with
them by pytest as a user would."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from conftest import serve
from deepsearch_stream import DecodeError, DeepSearch, EventStream
from deepsearch_stream._core import SseDecoder
from deepsearch_stream.response import EventStreamResponse
from deepsearch_stream.testing import (
    ModelServer,
    SearxngServer,
    SseEvent,
    aread_events,
    assert_done,
    assert_heartbeats_idle,
    assert_ids,
    assert_stream,
    parse_events,
)
from servers import ROOT

WIRE = (
    b'\xef\xbb\xbfid: 1\r\ndata: {"type": "status", "data": "go", "requestId": "r", '
    b'"timestamp": 1}\r\n\r\n: comment\n\ndata: heartbeat\n\nevent: x\rid: 2\rdata: '
    b'{"type": "final", "data": {"answer": "a"}, "requestId": "r", "timestamp": 2}\r\r'
    b"data: [DONE]\n\n"
)


def test_reader_decodes_like_an_event_source_however_split() -> None:
    whole = parse_events(WIRE)
    assert [(e.event, e.id) for e in whole] == [
        ("message", "1"),
        ("message", "1"),
        ("x", "2"),
        ("message", "2"),
    ]
    assert whole[1].is_heartbeat and whole[-1].is_done
    assert whole.types == ["status", "final"] and whole.final == {"answer": "a"}
    byte_by_byte = parse_events(WIRE[i : i + 1] for i in range(len(WIRE)))
    assert byte_by_byte == whole
    assert_stream(whole)


def test_decoder_limits_raise() -> None:
    decoder = SseDecoder(max_line_bytes=8)
    assert decoder.feed(b"data: ok\n\n") == [("message", "ok", "")]
    with pytest.raises(DecodeError, match="limit of 8 bytes"):
        decoder.feed(b"data: far too long")
    with pytest.raises(DecodeError):
        decoder.feed(b"\n\n")  # poisoned: nothing after a broken line can be framed
    retry = SseDecoder()
    retry.feed(b"retry: 2500\nid: 7\ndata: x\n\n")
    assert (retry.retry, retry.last_event_id) == (2500, "7")


def msg(id_: str, type_: str = "answer", code: str | None = None) -> SseEvent:
    data = f'{{"message": "m", "code": "{code}"}}' if code else '"x"'
    body = f'{{"type": "{type_}", "data": {data}, "requestId": "r", "timestamp": 1}}'
    return SseEvent("message", body, id_)


DONE = SseEvent("message", "[DONE]", "3")


def test_id_assertions_catch_gaps_duplicates_and_missing_ids() -> None:
    assert_ids([msg("1"), msg("2"), msg("3"), DONE])
    assert_ids([msg("5"), msg("6")], start=5)
    # A connection message carries no id: it shows the previous one, and is allowed to.
    assert_ids([msg("1"), msg("1", "error", "superseded"), DONE])
    with pytest.raises(AssertionError, match="has id '3', expected '2'"):
        assert_ids([msg("1"), msg("3")])
    with pytest.raises(AssertionError, match="has id '2', expected '3'"):
        assert_ids([msg("1"), msg("2"), msg("2")])  # a duplicate, or a message without id
    with pytest.raises(AssertionError, match="expected '1'"):
        assert_ids([msg("")])


def test_done_assertion() -> None:
    assert_done([msg("1"), DONE])
    with pytest.raises(AssertionError, match="no \\[DONE\\]"):
        assert_done([msg("1")])
    with pytest.raises(AssertionError, match="expected only last"):
        assert_done([DONE, msg("1")])
    with pytest.raises(AssertionError, match="several requests"):
        other = SseEvent("message", msg("2").data.replace('"r"', '"s"'), "2")
        assert_stream([msg("1"), other, DONE])


def test_heartbeat_assertion_needs_arrival_times_and_checks_them() -> None:
    beat = SseEvent("message", "heartbeat", "1", received=10.1)
    with pytest.raises(AssertionError, match=r"0\.100 s after the previous event"):
        assert_heartbeats_idle([SseEvent("message", "x", "1", received=10.0), beat], 1.0)
    assert_heartbeats_idle([SseEvent("message", "x", "1", received=9.0), beat], 1.0)
    with pytest.raises(ValueError, match="no arrival times"):
        assert_heartbeats_idle(parse_events(WIRE), 1.0)


async def test_live_stream_read_with_httpx_has_idle_heartbeats_only() -> None:
    async def produce(stream: EventStream) -> None:
        for n in range(3):
            await stream.send("answer", f"piece {n}")
        await asyncio.sleep(0.7)  # idle: heartbeats fill this, and only this
        await stream.send("final", {"answer": "done"})

    async def app(scope: dict, receive: object, send: object) -> None:
        stream = EventStream("live-1", heartbeat=0.2)
        stream.start(produce(stream))
        await EventStreamResponse(stream)(scope, receive, send)  # type: ignore[arg-type]

    async with serve(app) as base, httpx.AsyncClient() as client:
        async with client.stream("GET", base) as response:
            events = await aread_events(response)
    assert_stream(events)
    beats = [e for e in events if e.is_heartbeat]
    assert 2 <= len(beats) <= 4, [e.data for e in events]
    assert_heartbeats_idle(events, 0.2, slack=0.05)
    assert events.data_of("answer") == ["piece 0", "piece 1", "piece 2"]


def search(ds: DeepSearch) -> list[SseEvent]:
    async def run() -> list[SseEvent]:
        return parse_events([chunk async for chunk in ds.sse("What is Tokio?", "t-1", 2)])

    return asyncio.run(run())


@pytest.fixture
def tokio(searxng_server: SearxngServer, monkeypatch: pytest.MonkeyPatch) -> SearxngServer:
    searxng_server.add("Tokio", "https://tokio.rs/", "Tokio is an asynchronous runtime.")
    monkeypatch.setenv("SEARXNG_URL", searxng_server.url)
    return searxng_server


def model_search(model: ModelServer) -> list[SseEvent]:
    return search(DeepSearch(["searxng"], llm={"base_url": model.url, "model": "m"}))


def test_model_stand_in_streams_the_script(
    openai_server: ModelServer, tokio: SearxngServer
) -> None:
    openai_server.script(["Tokio is ", "a runtime [1]."], queries=["tokio rust"])
    events = model_search(openai_server)
    assert_stream(events)
    assert events.data_of("plan") == [{"loop": 1, "queries": ["tokio rust"]}]
    assert "".join(events.data_of("answer")) == "Tokio is a runtime [1]."
    assert tokio.queries == ["tokio rust"]
    assert [r["phase"] for r in openai_server.requests] == ["plan", "judge", "answer"]


@pytest.mark.parametrize(
    ("how", "phase", "expected"),
    [
        ("500", "plan", "HTTP 500"),
        ("reset", "judge", ""),
        ("reset", "answer", ""),
        ("error_chunk", "answer", "scripted"),
    ],
)
def test_model_stand_in_fails_on_demand(
    openai_server: ModelServer, tokio: SearxngServer, how: str, phase: str, expected: str
) -> None:
    openai_server.script(["Tokio is ", "a runtime [1]."])
    openai_server.fail(how, phase=phase)
    events = model_search(openai_server)
    assert_stream(events)
    error = events.data_of("error")
    assert len(error) == 1 and error[0]["code"] == "llm_error", events.types
    assert expected in error[0]["message"]
    if phase == "answer":
        before = "".join(events.data_of("answer"))
        assert before.strip() == "Tokio is", "the pieces before the failure, not after"


def test_engine_stand_in_failure_is_a_warning(
    openai_server: ModelServer, tokio: SearxngServer
) -> None:
    for fault in (500, None):  # an HTTP 500, then a reset connection
        tokio.fail(fault)
        events = model_search(openai_server)
        assert_stream(events)
        warnings = events.data_of("warning")
        assert warnings and {w["engine"] for w in warnings} == {"searxng"}, events.types
        assert events.final["sources"] == []
    tokio.ok()
    openai_server.script("Tokio is a runtime [1].")
    assert model_search(openai_server).final["sources"][0]["url"] == "https://tokio.rs/"
    with pytest.raises(ValueError, match="only phase='answer' streams"):
        openai_server.fail("error_chunk", phase="plan")


def test_readme_example_runs_with_the_installed_plugin(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Testing your own endpoint")
    block = re.compile(r"```python\n(.*?)```", re.S).search(readme, start)
    assert block is not None
    (tmp_path / "test_readme_example.py").write_text(block.group(1))
    # Outside the checkout, no conftest: the fixtures come from the entry point alone.
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", tmp_path],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 passed" in r.stdout
