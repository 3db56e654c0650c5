"""DeepSearch from Python: run() / sse() / search(), the seed's endpoint unchanged, bad
input, cancellation of requests in flight, and an OpenAI-compatible model served locally."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from conftest import frames, message, serve
from deepsearch_stream import (
    ConfigError,
    DeepSearch,
    InvalidRequestError,
    LlmError,
    SearchEngineError,
)
from deepsearch_stream.deepsearch import _messages
from deepsearch_stream.testing import LocalServer, OpenAIHandler
from servers import HangingEngine


@pytest.fixture(scope="module")
def ds(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> DeepSearch:
    return DeepSearch(["local"], corpus, "offline", cache_dir=tmp_path_factory.mktemp("cache"))


async def collect(it: AsyncIterator[str]) -> list[dict[str, Any]]:
    return [json.loads(chunk) async for chunk in it]


async def test_run_yields_the_seed_chunks(ds: DeepSearch) -> None:
    msgs = await collect(ds.run("What is Tokio?", "req-1"))
    kinds = [m["type"] for m in msgs]
    assert kinds[0] == "status" and kinds[-1] == "final"
    assert {"progress", "plan", "intermediate", "answer"} <= set(kinds)
    for m in msgs:
        assert list(m)[:4] == ["type", "data", "requestId", "timestamp"]
        assert m["requestId"] == "req-1"
    final = msgs[-1]["data"]
    pieces = "".join(m["data"] for m in msgs if m["type"] == "answer")
    assert pieces == final["answer"]
    assert "asynchronous runtime" in final["answer"]
    assert final["sources"] == [{"id": 1, "title": "Tokio", "url": "https://tokio.rs/"}]
    assert final["loops"] == 1 and final["queries"][0] == "What is Tokio?"


async def test_stream_false_and_modes(ds: DeepSearch) -> None:
    only = await collect(ds.run("What is Tokio?", "r", stream=False))
    assert [m["type"] for m in only] == ["final"]
    fin = await collect(ds.run("What is Tokio?", "r", stream_mode="final"))
    assert [m["type"] for m in fin] == ["status", "final"]
    inter = await collect(ds.run("What is Tokio?", "r", stream_mode="intermediate"))
    assert "answer" not in {m["type"] for m in inter} and inter[-1]["type"] == "final"
    batched = await collect(
        ds.run("What is Tokio?", "r", stream_mode={"mode": "token", "token": 3})
    )
    pieces = [m["data"] for m in batched if m["type"] == "answer"]
    general = await collect(ds.run("What is Tokio?", "r"))
    n_general = sum(1 for m in general if m["type"] == "answer")
    assert len(pieces) == -(-n_general // 3)
    assert "".join(pieces) == batched[-1]["data"]["answer"]


async def test_sse_frames_have_ids_and_done(ds: DeepSearch) -> None:
    blob = b"".join([c async for c in ds.sse("What is UDP?", "req-2", 2, heartbeat=None)])
    got = frames(blob)
    assert got[-1] == b"data: [DONE]\n\n"
    ids = [message(f)[0] for f in got[:-1]]
    assert ids == list(range(1, len(ids) + 1))
    last = message(got[-2])[1]
    assert last["type"] == "final" and "connectionless" in last["data"]["answer"]


async def test_search_returns_the_final_result(ds: DeepSearch) -> None:
    result = await ds.search("How long to steep green tea?")
    assert set(result) == {
        "answer",
        "sources",
        "loops",
        "queries",
        "elapsed_ms",
        "citations",
        "usage",
    }
    assert "two minutes" in result["answer"]
    usage = result["usage"]
    assert set(usage) == {
        "search_calls",
        "engine_failures",
        "llm_prompt_tokens",
        "llm_completion_tokens",
        "elapsed_ms",
    }
    assert usage["search_calls"] >= 1 and usage["engine_failures"] == 0
    assert usage["llm_prompt_tokens"] == usage["llm_completion_tokens"] == 0, "offline"
    assert result["sources"][0]["url"].startswith("https://tea.example/green")


async def test_search_gives_the_data_of_the_streamed_final(ds: DeepSearch) -> None:
    # search() builds its dict directly, beside the serde shape the stream sends: they
    # must not drift apart (a new field of FinalData must reach both).
    result = await ds.search("How long to steep green tea?", request_id="same-1")
    streamed = [
        json.loads(chunk)
        async for chunk in ds.run(query="How long to steep green tea?", request_id="same-1")
    ]
    final = next(m["data"] for m in streamed if m["type"] == "final")
    for data in (result, final):
        data.pop("elapsed_ms")
        data["usage"].pop("elapsed_ms")
    assert result == final


class SearchBody(BaseModel):
    query: str
    request_id: str
    max_loop: int = 3
    stream_mode: str = "all"


def seed_app(deepsearch: DeepSearch) -> FastAPI:
    """The seed's endpoint, as written there, on this package's DeepSearch."""
    app = FastAPI()

    @app.post("/v1/tool/deepsearch")
    async def post_deepsearch(body: SearchBody) -> EventSourceResponse:
        async def _stream() -> AsyncIterator[ServerSentEvent]:
            async for chunk in deepsearch.run(
                query=body.query,
                request_id=body.request_id,
                max_loop=body.max_loop,
                stream=True,
                stream_mode=body.stream_mode,
            ):
                yield ServerSentEvent(data=chunk)
            yield ServerSentEvent(data="[DONE]")

        return EventSourceResponse(
            _stream(),
            ping_message_factory=lambda: ServerSentEvent(data="heartbeat"),
            ping=15,
        )

    return app


async def test_seed_endpoint_runs_unchanged(ds: DeepSearch) -> None:
    async with serve(seed_app(ds)) as base, httpx.AsyncClient(timeout=30) as client:
        body = {"query": "What is Tokio?", "request_id": "seed-1", "max_loop": 2}
        r = await client.post(f"{base}/v1/tool/deepsearch", json=body)
    assert r.status_code == 200
    datas = [
        line[len("data: ") :]
        for line in r.text.replace("\r\n", "\n").split("\n")
        if line.startswith("data: ")
    ]
    assert datas[-1] == "[DONE]"
    msgs = [json.loads(d) for d in datas[:-1]]
    assert msgs[0]["type"] == "status" and msgs[-1]["type"] == "final"
    assert all(m["requestId"] == "seed-1" for m in msgs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"query": ""}, "query"),
        ({"query": "x" * 5000}, "query"),
        ({"max_loop": 0}, "max_loop"),
        ({"max_loop": 11}, "max_loop"),
        ({"max_loop": -3}, "max_loop"),
        ({"stream_mode": "everything"}, "stream_mode"),
        ({"stream_mode": {"mode": "token", "token": 0}}, "stream_mode"),
        ({"stream_mode": {"mode": "time", "extra": 1}}, "stream_mode"),
    ],
)
def test_bad_requests_raise_naming_the_field(
    ds: DeepSearch, kwargs: dict[str, Any], field: str
) -> None:
    args: dict[str, Any] = {"query": "What is Tokio?", "request_id": "r", **kwargs}
    with pytest.raises(InvalidRequestError, match=f"invalid {field}"):
        ds.run(**args)


def test_bad_configuration_is_refused(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SEARXNG_URL", raising=False)
    with pytest.raises(SearchEngineError, match="SEARXNG_URL"):
        DeepSearch(["searxng"], corpus, "offline")
    with pytest.raises(SearchEngineError, match="unknown engine"):
        DeepSearch(["bing"], corpus, "offline")
    with pytest.raises(ConfigError, match="unknown llm option"):
        DeepSearch(["local"], corpus, {"modle": "x"})
    with pytest.raises(LlmError, match="no model"):
        DeepSearch(["local"], corpus, {"base_url": "http://127.0.0.1:9/v1"})
    with pytest.raises(ConfigError, match="locale"):
        DeepSearch(["local"], corpus, "offline", locale="fr")
    with pytest.raises(ConfigError, match="concurrency"):
        DeepSearch(["local"], corpus, "offline", concurrency=0)


def test_zh_locale(corpus: Path, tmp_path: Path) -> None:
    zh = DeepSearch(["local"], corpus, "offline", locale="zh", cache_dir=tmp_path)

    async def first_two() -> list[str]:
        out = []
        async for chunk in zh.run("What is Tokio?", "r"):
            out.append(json.loads(chunk)["data"])
            if len(out) == 2:
                break
        return out

    assert asyncio.run(first_two()) == ["开始搜索...", "执行第1轮搜索..."]


async def test_leaving_the_stream_drops_engine_requests(
    hanging: HangingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARXNG_URL", hanging.url)
    slow = DeepSearch(["searxng"], llm="offline", engine_timeout=60)
    seen: list[str] = []

    async def consume() -> None:
        async for chunk in slow.run("What is Tokio?", "r"):
            seen.append(json.loads(chunk)["type"])

    task = asyncio.create_task(consume())
    deadline = time.monotonic() + 10
    while not hanging.accepted.is_set():
        assert time.monotonic() < deadline, "the engine request never arrived"
        await asyncio.sleep(0.005)
    left = time.monotonic()
    task.cancel()  # what a server does when its client disconnects
    with pytest.raises(asyncio.CancelledError):
        await task
    while not hanging.closed_at:
        assert time.monotonic() < left + 5, "the engine request was never dropped"
        await asyncio.sleep(0.002)
    assert "plan" in seen and "final" not in seen
    assert hanging.closed_at[0] - left < 0.1


class FakeOpenAI:
    """A local OpenAI-compatible chat-completions server with scripted replies."""

    def __init__(
        self,
        answer_chunks: list[str] | Callable[[dict[str, int]], list[str]],
        fail_status: int | None = None,
        queries: Sequence[str] = ("tokio runtime", "What is Tokio?"),
    ) -> None:
        """``answer_chunks`` may be a function of the answer prompt's sources ({title: n})."""
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(OpenAIHandler):
            def respond(self, phase: str, request: dict[str, Any]) -> None:
                fake.requests.append(
                    {"path": self.path, "auth": self.headers["Authorization"], **request}
                )
                if fail_status is not None:
                    self.error(fail_status, "upstream exploded")
                elif phase == "plan":
                    self.reply(f"```json\n{json.dumps({'queries': list(queries)})}\n```")
                elif phase == "judge":
                    self.reply('{"is_answer": true, "rewrite_query": null, "reason": "enough"}')
                else:
                    self.start_stream()
                    prompt = request["messages"][1]["content"]
                    numbers = {
                        t: int(n) for n, t in re.findall(r"^\[(\d+)\] (.+?) — ", prompt, re.M)
                    }
                    chunks = answer_chunks(numbers) if callable(answer_chunks) else answer_chunks
                    for piece in chunks:
                        self.piece(piece)
                    self.end_stream()

        self.server = LocalServer(Handler)
        self.url = self.server.url + "/v1"

    def close(self) -> None:
        self.server.close()


async def test_model_plans_judges_and_writes_with_valid_citations(
    corpus: Path, tmp_path: Path
) -> None:
    fake = FakeOpenAI(["<think>hmm</think>Tokio is an async ", "runtime [1]. It is ", "great [7]."])
    try:
        llm = {"base_url": fake.url, "model": "fake-1", "api_key": "sk-secret"}
        model_ds = DeepSearch(["local"], corpus, llm, cache_dir=tmp_path)
        assert model_ds.llm == "fake-1"
        msgs = await collect(model_ds.run("What is Tokio?", "llm-1", max_loop=2))
    finally:
        fake.close()
    plan = next(m["data"] for m in msgs if m["type"] == "plan")
    assert plan == {"loop": 1, "queries": ["tokio runtime", "What is Tokio?"]}
    final = msgs[-1]["data"]
    assert final["answer"] == "Tokio is an async runtime [1]. It is great."
    assert [s["id"] for s in final["sources"]] == [1]
    assert final["loops"] == 1, "the model judged round 1 enough"
    assert [bool(r.get("stream")) for r in fake.requests] == [False, False, True]
    assert all(r["auth"] == "Bearer sk-secret" and r["model"] == "fake-1" for r in fake.requests)
    assert all(r["path"] == "/v1/chat/completions" for r in fake.requests)


async def test_citations_are_checked_against_their_sources(corpus: Path, tmp_path: Path) -> None:
    """The model cites real, retrieved sources for claims they do not make: a claim
    another source makes moves there, one no source makes loses its citation."""

    def planted(n: dict[str, int]) -> list[str]:
        tokio, tea = n["Tokio"], n["Green tea"]
        return [
            f"Tokio is an asynchronous runtime for Rust [{tea}]. Steep green ",
            f"tea for two minutes [{tea}]. Tokio was written by monks in Haskell [",
            f"{tokio}].",
        ]

    fake = FakeOpenAI(planted, queries=["tokio runtime", "green tea"])
    try:
        llm = {"base_url": fake.url, "model": "fake-1"}
        model_ds = DeepSearch(["local"], corpus, llm, cache_dir=tmp_path)
        msgs = await collect(model_ds.run("What is Tokio?", "cite-1", max_loop=1))
    finally:
        fake.close()
    final = msgs[-1]["data"]
    ids = {s["title"]: s["id"] for s in final["sources"]}
    answer_text = "".join(m["data"] for m in msgs if m["type"] == "answer")
    assert answer_text == final["answer"]  # what streamed is what was checked
    tokio, tea = ids["Tokio"], ids["Green tea"]
    assert final["answer"] == (
        f"Tokio is an asynchronous runtime for Rust [{tokio}]. Steep green tea for two "
        f"minutes [{tea}]. Tokio was written by monks in Haskell."
    )
    checks = final["citations"]
    assert [(c["id"], c["supported"], c["moved_to"]) for c in checks] == [
        (tea, False, tokio),
        (tea, True, None),
        (tokio, False, None),
    ]
    assert checks[1]["score"] >= 0.5 > checks[0]["score"] and checks[2]["score"] < 0.5


async def test_model_failure_becomes_an_error_message(corpus: Path, tmp_path: Path) -> None:
    fake = FakeOpenAI([], fail_status=500)
    try:
        model_ds = DeepSearch(
            ["local"], corpus, {"base_url": fake.url, "model": "m"}, cache_dir=tmp_path
        )
        msgs = await collect(model_ds.run("What is Tokio?", "llm-2"))
        with pytest.raises(LlmError, match="HTTP 500"):
            await model_ds.search("What is Tokio?")
    finally:
        fake.close()
    assert msgs[-1]["type"] == "error"
    assert msgs[-1]["data"]["code"] == "llm_error"
    assert "upstream exploded" in msgs[-1]["data"]["message"]
    assert msgs[-1]["isFinal"] is True


LIVE_URL = os.environ.get("DEEPSEARCH_TEST_LLM_BASE_URL", "")
LIVE_MODEL = os.environ.get("DEEPSEARCH_TEST_LLM_MODEL", "")


@pytest.mark.skipif(
    not (LIVE_URL and LIVE_MODEL),
    reason="live LLM test: set DEEPSEARCH_TEST_LLM_BASE_URL and DEEPSEARCH_TEST_LLM_MODEL "
    "(and DEEPSEARCH_TEST_LLM_API_KEY if needed) to run the loop against a real endpoint",
)
async def test_live_openai_compatible_endpoint(corpus: Path, tmp_path: Path) -> None:
    llm = {
        "base_url": LIVE_URL,
        "model": LIVE_MODEL,
        "api_key": os.environ.get("DEEPSEARCH_TEST_LLM_API_KEY") or None,
    }
    live = DeepSearch(["local"], corpus, llm, cache_dir=tmp_path)
    msgs = await collect(live.run("What is Tokio?", "live", max_loop=2))
    assert msgs[-1]["type"] == "final", msgs[-1]
    final = msgs[-1]["data"]
    assert final["answer"].strip()
    retrieved = {
        d["url"]
        for m in msgs
        if m["type"] == "intermediate"
        for r in m["data"]["results"]
        for d in r["docs"]
    }
    assert all(s["url"] in retrieved for s in final["sources"])


def test_messages_helper_splits_coalesced_frames() -> None:
    class Chunks:
        def __init__(self, chunks: list[bytes]) -> None:
            self.chunks = chunks
            self.closed = False

        def __aiter__(self) -> Chunks:
            return self

        async def __anext__(self) -> bytes:
            if not self.chunks:
                raise StopAsyncIteration
            return self.chunks.pop(0)

        def close(self) -> None:
            self.closed = True

    src = Chunks([b'id: 1\ndata: {"a": 1}\n\nid: 2\ndata: {"b": "x\\ny"}\n\n', b"data: [DONE]\n\n"])

    async def run() -> list[str]:
        return [m async for m in _messages(src)]  # type: ignore[arg-type]

    assert asyncio.run(run()) == ['{"a": 1}', '{"b": "x\\ny"}']
    assert src.closed


async def test_default_corpus_is_the_python_documentation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No corpus given: the Python docs are exported into the cache and searched offline."""
    monkeypatch.delenv("DEEPSEARCH_CORPUS_DIR", raising=False)
    default = DeepSearch(llm="offline", cache_dir=tmp_path)
    assert (tmp_path / "python-docs" / ".stamp").is_file()
    result = await default.search("How do I run a subprocess and capture its output?")
    urls = [s["url"] for s in result["sources"]]
    assert urls, result
    assert all(u.startswith("https://docs.python.org/3.") for u in urls)
    assert any("/library/subprocess.html" in u for u in urls), urls
    assert "capture" in result["answer"]


async def test_cancelling_search_drops_engine_requests(
    hanging: HangingEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEARXNG_URL", hanging.url)
    slow = DeepSearch(["searxng"], llm="offline", engine_timeout=60)
    task = asyncio.ensure_future(slow.search("What is Tokio?"))
    deadline = time.monotonic() + 10
    while not hanging.accepted.is_set():
        assert time.monotonic() < deadline, "the engine request never arrived"
        await asyncio.sleep(0.005)
    left = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    while not hanging.closed_at:
        assert time.monotonic() < left + 5, "the engine request was never dropped"
        await asyncio.sleep(0.002)
    assert hanging.closed_at[0] - left < 0.1


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), float("inf"), 1e300])
def test_out_of_range_seconds_raise_instead_of_panicking(corpus: Path, value: float) -> None:
    with pytest.raises(ConfigError, match="engine_timeout"):
        DeepSearch(["local"], corpus, "offline", engine_timeout=value)
    with pytest.raises(ConfigError, match="timeout"):
        DeepSearch(["local"], corpus, {"model": "m", "timeout": value})
