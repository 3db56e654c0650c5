"""Engine and model failures in every phase of the loop, on both servers as real
processes: a model that fails while planning, while judging a round, or before or in the
middle of its streamed answer ends the stream with an ``error`` message and ``[DONE]``; a
search engine that fails (HTTP error, garbage, a dropped connection; in the first round
or only in a later one) becomes ``warning`` messages and the search goes on to its
``final``. Never a broken connection, never a gap in the ids, and both servers send the
same events.

The model is a local OpenAI-compatible server and the engine a local SearXNG, both
speaking their providers' wire formats, failures included. Each case is named in the
question (``fault:<case>``): the fake model plans queries that carry it on to the
engine."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from test_resume import ids_of
from test_servers import events

from deepsearch_stream.testing import Handler, LocalServer, OpenAIHandler, searxng_results
from servers import BACKENDS, Server, running

FAULT = re.compile(r"fault:([a-z0-9-]+)")
ROUND = re.compile(r"^Round: (\d+)$", re.M)
ANSWER = ["Tokio is an asynchronous ", "runtime for Rust [1]. ", "It is used for networking."]
OVERLOADED = "the model is overloaded"


class Model(OpenAIHandler):
    """Plan and judge are JSON replies, the answer a stream; each fails as told."""

    def respond(self, phase: str, request: dict[str, Any]) -> None:
        user = request["messages"][1]["content"]
        match = FAULT.search(user)
        fault = match.group(1) if match else ""
        if phase == "plan":
            self.plan(fault, int(ROUND.search(user).group(1)))  # type: ignore[union-attr]
        elif phase == "judge":
            self.judge(fault)
        else:
            self.answer(fault)

    def plan(self, fault: str, round_: int) -> None:
        if fault == "plan-500":
            self.error(500, OVERLOADED)
        elif fault == "plan-prose":
            self.reply("I would search the web for Tokio.")
        elif fault == "plan-drop":
            self.reset()
        else:
            self.reply(json.dumps({"queries": [f"tokio runtime round {round_} fault:{fault}"]}))

    def judge(self, fault: str) -> None:
        if fault == "judge-429":
            self.error(429, "Rate limit reached", "requests")
        elif fault == "judge-401":
            self.error(401, "Incorrect API key provided", "invalid_key")
        else:
            enough = fault != "engine-round2"  # that case needs a second round
            self.reply(json.dumps({"is_answer": enough, "rewrite_query": None, "reason": "ok"}))

    def answer(self, fault: str) -> None:
        if fault == "answer-500":
            self.error(500, OVERLOADED)
            return
        self.start_stream()
        for n, piece in enumerate(ANSWER):
            if n == 2 and fault == "answer-cut":
                return  # the body ends (the connection closes) without [DONE]
            if n == 2 and fault == "answer-reset":
                self.reset()
                return
            if n == 2 and fault == "answer-error-chunk":
                self.event({"error": {"message": OVERLOADED, "type": "server_error"}})
                return
            self.piece(piece)
        self.end_stream()


class Engine(Handler):
    """SearXNG's JSON API: ``GET /search?q=...&format=json``."""

    def do_GET(self) -> None:
        query = parse_qs(urlparse(self.path).query)["q"][0]
        match = FAULT.search(query)
        fault = match.group(1) if match else ""
        if fault == "engine-500" or (fault == "engine-round2" and "round 2" in query):
            self.send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        elif fault == "engine-garbage":
            self.send(200, b"<html>not the JSON API</html>")
        elif fault == "engine-drop":
            self.reset()
        else:
            hit = ("Tokio", "https://tokio.rs/", "Tokio is a runtime.")
            self.send_json(200, {"query": query, **searxng_results(hit)})


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    yield from fault_servers()


@pytest.fixture
def fresh_servers() -> Iterator[dict[str, Server]]:
    """Servers of their own: an engine's failures open its circuit breaker, which would
    then skip the engine in the next test's searches."""
    yield from fault_servers()


def fault_servers() -> Iterator[dict[str, Server]]:
    model, engine = LocalServer(Model), LocalServer(Engine)
    args = ["--engines", "searxng", "--heartbeat", "30"]
    args += ["--llm-base-url", model.url + "/v1", "--llm-model", "fake"]
    env = {"SEARXNG_URL": engine.url}
    try:
        with running("fastapi", args, env=env) as fastapi, running("axum", args, env=env) as axum:
            yield {"fastapi": fastapi, "axum": axum}
    finally:
        model.close()
        engine.close()


Frame = tuple[str | None, Any]


def search(server: Server, case: str) -> list[Frame]:
    body = {"query": f"What is Tokio? fault:{case}", "request_id": f"f-{case}", "max_loop": 2}
    r = httpx.post(server.url + "/deepsearch", json=body, timeout=30)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    got = [e for e in events(r.content) if e[1] != "heartbeat"]
    assert got[-1][1] == "[DONE]", "the stream was not ended properly"
    assert ids_of(got) == list(range(1, len(got) + 1)), "every message numbered, no gap"
    return got


def kinds(frames: list[Frame]) -> list[str]:
    return [data["type"] for _, data in frames if isinstance(data, dict)]


def data_of(frames: list[Frame], kind: str) -> list[Any]:
    return [d["data"] for _, d in frames if isinstance(d, dict) and d["type"] == kind]


MODEL_FAULTS = {
    # case: (error code, words in its message, the message type the search got to)
    "plan-500": ("llm_error", "HTTP 500: the model is overloaded", "progress"),
    "plan-prose": ("llm_error", "no JSON found in: I would search", "progress"),
    "plan-drop": ("llm_error", "Connection reset by peer", "progress"),
    "judge-429": ("llm_error", "HTTP 429: Rate limit reached", "progress"),
    "judge-401": ("llm_unauthorized", "Incorrect API key provided", "progress"),
    "answer-500": ("llm_error", "HTTP 500", "progress"),
    "answer-cut": ("llm_error", "ended early: the server closed the stream before", "answer"),
    "answer-reset": ("llm_error", "ended early: connection failed mid-stream", "answer"),
    "answer-error-chunk": ("llm_error", "mid-stream: the model is overloaded", "answer"),
}


@pytest.mark.parametrize("case", MODEL_FAULTS)
def test_a_model_failure_in_any_phase_ends_in_error_then_done(
    servers: dict[str, Server], case: str
) -> None:
    code, words, reached = MODEL_FAULTS[case]
    runs = {backend: search(servers[backend], case) for backend in BACKENDS}
    got = runs["fastapi"]
    assert runs["axum"] == got, "both servers send the same events"
    types = kinds(got)
    assert types[-1] == "error" and "final" not in types, types
    error = got[-2][1]
    assert error["data"]["code"] == code, error
    assert words in error["data"]["message"], error
    assert error["isFinal"] is True
    assert types[-2] == reached, types
    if case.startswith("plan"):
        assert "plan" not in types
    if case.startswith("judge"):
        assert types.count("intermediate") == 1 and "answer" not in types, types
    if reached == "answer":
        # What the model said before it failed was delivered, cited and in order.
        assert "".join(data_of(got, "answer")) == "".join(ANSWER[:2]).rstrip()


ENGINE_FAULTS = {
    # case: (words in each warning, rounds with warnings)
    "engine-500": ("HTTP 500", [1, 2]),
    "engine-garbage": ("malformed response", [1, 2]),
    "engine-drop": ("Connection reset by peer", [1, 2]),
    "engine-round2": ("HTTP 500", [2]),
}


@pytest.mark.parametrize("case", ENGINE_FAULTS)
def test_an_engine_failure_in_any_round_is_a_warning_and_the_search_ends(
    fresh_servers: dict[str, Server], case: str
) -> None:
    words, failing_rounds = ENGINE_FAULTS[case]
    runs = {backend: search(fresh_servers[backend], case) for backend in BACKENDS}
    got = runs["fastapi"]
    assert runs["axum"] == got, "both servers send the same events"
    types = kinds(got)
    assert types[-1] == "final" and "error" not in types, types
    warnings = data_of(got, "warning")
    assert warnings, types
    assert all(w["engine"] == "searxng" and words in w["message"] for w in warnings), warnings
    rounds = sorted({int(ROUND_OF.search(w["query"]).group(1)) for w in warnings})  # type: ignore[union-attr]
    assert rounds == failing_rounds
    final = got[-2][1]["data"]
    assert final["loops"] == 2, "a round that found nothing is not judged enough"
    if failing_rounds == [2]:
        # What round 1 found is kept: the answer cites it.
        assert [s["url"] for s in final["sources"]] == ["https://tokio.rs/"]
        assert "[1]" in final["answer"]
    else:
        # Nothing found: no source, and the model's citation of one is taken out.
        assert final["sources"] == [] and "[1]" not in final["answer"]


ROUND_OF = re.compile(r"round (\d+)")
