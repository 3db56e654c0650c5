"""Budgets, ``final.usage`` and the engine circuit breaker on both servers, as real
processes: every kind of budget ends in a cited answer with a warning naming it, a
request may not ask for more than the server's ceiling, and a failing engine (a local
SearXNG) is skipped once its circuit opens and used again once it answers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import sse_events
from deepsearch_stream.testing import ModelServer, SearxngServer
from servers import BACKENDS, HangingEngine, running

Q = "What is Tokio?"


def search(base: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    r = httpx.post(base + "/deepsearch", json=body, timeout=60)
    assert r.status_code == 200, r.text
    return [json.loads(d) for _, d in sse_events(r.content) if d not in ("[DONE]", "heartbeat")]


def final_of(messages: list[dict[str, Any]]) -> dict[str, Any]:
    assert messages[-1]["type"] == "final", messages[-1]
    data: dict[str, Any] = messages[-1]["data"]
    return data


def warnings(messages: list[dict[str, Any]], engine: str) -> list[str]:
    return [
        m["data"]["message"]
        for m in messages
        if m["type"] == "warning" and m["data"]["engine"] == engine
    ]


def assert_cited(final: dict[str, Any]) -> None:
    assert "[1]" in final["answer"], final["answer"]
    assert "https://tokio.rs/" in [s["url"] for s in final["sources"]], final["sources"]


def args(corpus: Path, cache: Path, *extra: str) -> list[str]:
    return ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30", *extra]


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_search_call_budget_and_its_ceiling(backend: str, corpus: Path, tmp_path: Path) -> None:
    with running(backend, args(corpus, tmp_path, "--max-search-calls", "2")) as server:
        messages = search(
            server.url, {"query": Q, "max_loop": 3, "budget": {"max_search_calls": 1}}
        )
        final = final_of(messages)
        assert_cited(final)
        assert final["usage"]["search_calls"] == 1
        assert final["loops"] == 1
        assert any("max_search_calls" in m for m in warnings(messages, "budget"))

        # No budget in the request: the server's is the default.
        final = final_of(
            search(server.url, {"query": "What is Tokio? What is UDP?", "max_loop": 3})
        )
        assert final["usage"]["search_calls"] <= 2

        # Asking for more than the server allows is refused, naming the field.
        r = httpx.post(
            server.url + "/deepsearch", json={"query": Q, "budget": {"max_search_calls": 3}}
        )
        assert r.status_code == 422
        error = r.json()["error"]
        assert error["field"] == "budget" and "at most 2" in error["message"]

        metrics = httpx.get(server.url + "/metrics").text
        assert 'deepsearch_budgets_spent_total{budget="max_search_calls"}' in metrics
        assert "deepsearch_search_calls_total" in metrics


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_deadline_answers_from_what_was_found(
    backend: str, corpus: Path, tmp_path: Path, hanging: HangingEngine
) -> None:
    """The local engine answers at once; a SearXNG that never answers is cut off at the
    deadline, which does not count against its circuit."""
    env = {"SEARXNG_URL": hanging.url}
    extra = ("--engines", "local,searxng")
    with running(backend, args(corpus, tmp_path, *extra), env=env) as server:
        started = time.monotonic()
        messages = search(server.url, {"query": Q, "max_loop": 3, "budget": {"deadline_s": 1}})
        took = time.monotonic() - started
        final = final_of(messages)
        assert_cited(final)
        assert 1 <= took < 8, took
        assert any("deadline_s" in m for m in warnings(messages, "budget"))
        assert not any(m.startswith("circuit") for m in warnings(messages, "searxng"))
        assert final["usage"]["elapsed_ms"] >= 1000


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_token_budget_answers_without_the_model(
    backend: str, corpus: Path, tmp_path: Path, openai_server: ModelServer
) -> None:
    openai_server.script("Tokio is a runtime [1].", queries=["tokio"], enough=False)
    model = ("--llm-base-url", openai_server.url, "--llm-model", "test-model")
    with running(backend, args(corpus, tmp_path, *model)) as server:
        messages = search(server.url, {"query": Q, "max_loop": 3, "budget": {"max_llm_tokens": 5}})
        final = final_of(messages)
        assert_cited(final)
        assert "Tokio is an asynchronous runtime" in final["answer"], "extracted, not the model's"
        assert [r["phase"] for r in openai_server.requests] == ["plan"]
        usage = final["usage"]
        assert usage["llm_prompt_tokens"] > 0 and usage["llm_completion_tokens"] > 0
        told = warnings(messages, "budget")
        assert len([m for m in told if "max_llm_tokens" in m]) == 2, told

        # Without a budget the model writes the answer, and its tokens are counted.
        openai_server.requests.clear()
        final = final_of(search(server.url, {"query": Q, "max_loop": 1}))
        assert "Tokio is a runtime" in final["answer"], "the model's"
        assert final["usage"]["llm_completion_tokens"] > 0
        assert openai_server.requests[-1]["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_engine_is_skipped_then_used_again(
    backend: str, corpus: Path, tmp_path: Path, searxng_server: SearxngServer
) -> None:
    searxng_server.add(
        "Tokio tasks", "https://searx.example/tasks", "Tokio tasks are green threads."
    )
    searxng_server.fail(500)
    env = {"SEARXNG_URL": searxng_server.url}
    extra = ("--engines", "local,searxng", "--breaker-cooldown", "1")
    body = {"query": "What is Tokio? How do Tokio tasks work? What is UDP?", "max_loop": 2}
    with running(backend, args(corpus, tmp_path, *extra), env=env) as server:
        messages = search(server.url, body)
        assert any(m.startswith("circuit open") for m in warnings(messages, "searxng")), messages
        assert final_of(messages)["usage"]["engine_failures"] >= 3
        asked = len(searxng_server.queries)

        messages = search(server.url, body)
        assert len(searxng_server.queries) == asked, "skipped while open"
        assert any("skipped" in m for m in warnings(messages, "searxng"))
        assert_cited(final_of(messages))

        searxng_server.ok()
        time.sleep(1.3)
        messages = search(server.url, body)
        assert any(m.startswith("circuit closed") for m in warnings(messages, "searxng")), messages
        assert len(searxng_server.queries) > asked

        metrics = httpx.get(server.url + "/metrics").text
        assert 'deepsearch_engine_circuit_changes_total{engine="searxng",state="open"} 1' in metrics
        assert (
            'deepsearch_engine_circuit_changes_total{engine="searxng",state="closed"} 1' in metrics
        )
