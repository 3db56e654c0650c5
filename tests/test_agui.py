"""`POST /ag-ui` run by @ag-ui/client's `HttpAgent` under Node (it verifies the event
order as it applies them) against both servers: the assistant message holds the cited
answer, the shared state the sources; a failing model ends the run in `RUN_ERROR`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from node import run_node

from deepsearch_stream.testing import ModelServer
from servers import BACKENDS, Server, running

Q = "What is Tokio?"


@pytest.fixture(scope="module")
def pair(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


def test_http_agent_runs_a_search_on_both(pair: dict[str, Server]) -> None:
    got = {name: run_node("agui.mjs", server.url, Q) for name, server in pair.items()}
    assert got["fastapi"] == got["axum"]
    run = got["axum"]
    assert run["failure"] is None and run["runError"] is None
    events = run["events"]
    assert events[:2] == ["RUN_STARTED", "STATE_SNAPSHOT"] and events[-1] == "RUN_FINISHED"
    assert events.count("STEP_STARTED") == events.count("STEP_FINISHED") >= 3
    assert "STATE_DELTA" in events and "TEXT_MESSAGE_CONTENT" in events
    (answer,) = run["assistant"]
    assert "[1]" in answer and "Tokio" in answer
    state = run["state"]
    assert state["answer"] == answer
    assert state["sources"][0]["url"] == "https://tokio.rs/"
    assert state["plan"][0]["queries"] and state["results"][0]["results"]


def test_the_stream_has_no_done_and_comment_heartbeats(pair: dict[str, Server]) -> None:
    body = {
        "threadId": "t",
        "runId": "r-raw",
        "messages": [{"id": "1", "role": "user", "content": Q}],
        "state": {},
        "tools": [],
        "context": [],
        "forwardedProps": {},
    }
    for server in pair.values():
        r = httpx.post(server.url + "/ag-ui", json=body, timeout=30)
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "[DONE]" not in r.text
        assert r.text.rstrip().endswith(
            '"sources":[{"id":1,"title":"Tokio","url":"https://tokio.rs/"}]}}'
        )


def test_refusals_are_the_contracts(pair: dict[str, Server]) -> None:
    got = {
        name: httpx.post(server.url + "/ag-ui", json={"messages": "x"}, timeout=10)
        for name, server in pair.items()
    }
    assert got["fastapi"].content == got["axum"].content
    assert got["axum"].status_code == 422
    assert got["axum"].json()["error"]["field"] == "messages"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_model_ends_in_run_error(
    backend: str, corpus: Path, tmp_path: Path, openai_server: ModelServer
) -> None:
    openai_server.fail("500", phase="answer")
    args = [
        *("--corpus", str(corpus), "--cache-dir", str(tmp_path)),
        *("--llm-base-url", openai_server.url, "--llm-model", "m"),
    ]
    with running(backend, args, env={"DEEPSEARCH_LLM_API_KEY": "k"}) as server:
        run = run_node("agui.mjs", server.url, Q)
    assert run["runError"] is not None and run["runError"]["code"] == "llm_error"
    assert run["events"][-1] == "RUN_ERROR"
    assert "RUN_FINISHED" not in run["events"]
