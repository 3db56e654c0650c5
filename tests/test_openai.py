"""`/v1/models` and `/v1/chat/completions` driven by the official `openai` package, sync
and async, streamed and not, against both servers: the same cited answer from each, and
refusals raised as the client's own exception classes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from deepsearch_stream.testing import ModelServer
from servers import BACKENDS, HangingEngine, Server, running

Q = "What is Tokio?"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You are a search assistant."},
    {"role": "user", "content": Q},
]


@pytest.fixture(scope="module")
def pair(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


def client(server: Server, api_key: str = "unused") -> openai.OpenAI:
    # No retries: a refusal must surface as it is, not be retried away.
    return openai.OpenAI(base_url=server.url + "/v1", api_key=api_key, max_retries=0)


def streamed(server: Server, **extra: Any) -> dict[str, Any]:
    """One streamed completion, read with the SDK: its pieces and its last chunks."""
    chunks = list(
        client(server).chat.completions.create(
            model="deepsearch", messages=MESSAGES, stream=True, **extra
        )
    )
    with_choices = [c for c in chunks if c.choices]
    deltas = [c.choices[0].delta for c in with_choices]
    return {
        "chunks": chunks,
        "role": deltas[0].role,
        "content": "".join(d.content or "" for d in deltas),
        "reasoning": "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas),
        "last": with_choices[-1],
    }


def test_models_list_the_pipeline(pair: dict[str, Server]) -> None:
    for server in pair.values():
        models = client(server).models.list()
        assert [m.id for m in models.data] == ["deepsearch"]
        assert models.data[0].object == "model"


def test_both_servers_stream_the_same_cited_answer(pair: dict[str, Server]) -> None:
    got = {name: streamed(server) for name, server in pair.items()}
    assert got["fastapi"]["content"] == got["axum"]["content"]
    answer = got["axum"]
    assert answer["role"] == "assistant"
    assert "[1]" in answer["content"] and "Tokio" in answer["content"]
    # The search's progress is the model's "thinking": the plan and what it found.
    assert "Round 1 queries:" in answer["reasoning"]
    assert "https://tokio.rs/" in answer["reasoning"]
    last = answer["last"]
    assert last.choices[0].finish_reason == "stop"
    assert "https://tokio.rs/" in (last.model_extra or {})["citations"]
    notes = (last.choices[0].delta.model_extra or {})["annotations"]
    first = notes[0]["url_citation"]
    assert answer["content"][first["start_index"] : first["end_index"]] == "[1]"
    assert first["url"] == "https://tokio.rs/"


def test_include_usage_adds_a_usage_chunk(pair: dict[str, Server]) -> None:
    got = streamed(pair["axum"], stream_options={"include_usage": True})
    usage = got["chunks"][-1]
    assert usage.choices == [] and usage.usage is not None
    assert usage.usage.completion_tokens > 0
    assert usage.usage.total_tokens == usage.usage.prompt_tokens + usage.usage.completion_tokens


def test_a_whole_completion_equals_the_streamed_one(pair: dict[str, Server]) -> None:
    texts = {}
    for name, server in pair.items():
        done = client(server).chat.completions.create(
            model="deepsearch", messages=MESSAGES, temperature=0.3, extra_body={"max_loop": 2}
        )
        assert done.object == "chat.completion"
        choice = done.choices[0]
        assert choice.finish_reason == "stop" and choice.message.role == "assistant"
        assert choice.message.annotations, "url_citation annotations"
        note = choice.message.annotations[0].url_citation
        assert choice.message.content is not None
        assert choice.message.content[note.start_index : note.end_index] == "[1]"
        assert "https://tokio.rs/" in (done.model_extra or {})["citations"]
        texts[name] = choice.message.content
    assert texts["fastapi"] == texts["axum"] == streamed(pair["axum"])["content"]


def test_the_async_client_streams_too(pair: dict[str, Server]) -> None:
    async def main(server: Server) -> str:
        async with openai.AsyncOpenAI(
            base_url=server.url + "/v1", api_key="unused", max_retries=0
        ) as aclient:
            stream = await aclient.chat.completions.create(
                model="deepsearch", messages=MESSAGES, stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

    texts = {name: asyncio.run(main(server)) for name, server in pair.items()}
    assert texts["fastapi"] == texts["axum"] == streamed(pair["axum"])["content"]


def test_bad_requests_raise_bad_request_error(pair: dict[str, Server]) -> None:
    bodies = {}
    for name, server in pair.items():
        with pytest.raises(openai.BadRequestError) as raised:
            client(server).chat.completions.create(
                model="deepsearch", messages=MESSAGES, extra_body={"max_loop": 0}
            )
        assert raised.value.status_code == 400
        assert raised.value.param == "max_loop" and raised.value.code == "invalid_request"
        with pytest.raises(openai.BadRequestError) as no_user:
            client(server).chat.completions.create(
                model="deepsearch", messages=[{"role": "system", "content": "hi"}]
            )
        assert no_user.value.param == "messages"
        bodies[name] = (raised.value.body, no_user.value.body)
    assert bodies["fastapi"] == bodies["axum"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_key_raises_authentication_error(
    backend: str, corpus: Path, tmp_path: Path
) -> None:
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--api-key", "sekrit"]
    with running(backend, args) as server:
        with pytest.raises(openai.AuthenticationError) as raised:
            client(server, api_key="wrong").models.list()
        # OpenAI's error object, so the client has the message and the code.
        assert raised.value.code == "unauthorized" and raised.value.message
        assert [m.id for m in client(server, api_key="sekrit").models.list().data] == ["deepsearch"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_over_the_stream_limit_raises_rate_limit_error(
    backend: str, hanging: HangingEngine
) -> None:
    args = ["--engines", "searxng", "--max-streams", "1", "--resume-linger", "0"]
    with running(backend, args, env={"SEARXNG_URL": hanging.url}) as server:
        body = {"model": "deepsearch", "messages": MESSAGES, "stream": True}
        with httpx.stream("POST", server.url + "/v1/chat/completions", json=body) as held:
            assert held.status_code == 200
            assert hanging.accepted.wait(10)
            with pytest.raises(openai.RateLimitError) as raised:
                client(server).chat.completions.create(model="deepsearch", messages=MESSAGES)
            assert raised.value.response.headers["retry-after"] == "1"
            assert raised.value.code == "overloaded"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_model_raises_mid_stream(
    backend: str, corpus: Path, tmp_path: Path, openai_server: ModelServer
) -> None:
    openai_server.script(["never ", "sent"])
    openai_server.fail("500", phase="answer")
    args = [
        *("--corpus", str(corpus), "--cache-dir", str(tmp_path)),
        *("--llm-base-url", openai_server.url, "--llm-model", "m"),
    ]
    with running(backend, args, env={"DEEPSEARCH_LLM_API_KEY": "k"}) as server:
        stream = client(server).chat.completions.create(
            model="deepsearch", messages=MESSAGES, stream=True
        )
        with pytest.raises(openai.APIError) as raised:
            for _ in stream:
                pass
        assert raised.value.code == "llm_error"


@pytest.mark.parametrize("backend", BACKENDS)
def test_heartbeats_while_the_search_waits_leave_the_client_reading(
    backend: str, hanging: HangingEngine
) -> None:
    # The SDK's SSE decoder turns a comment heartbeat into an empty event (that it fails
    # to decode as JSON) once any frame has carried an id: these streams send none.
    args = ["--engines", "searxng", "--heartbeat", "0.05", "--resume-linger", "0"]
    with running(backend, args, env={"SEARXNG_URL": hanging.url}) as server:
        stream = client(server).chat.completions.create(
            model="deepsearch", messages=MESSAGES, stream=True
        )
        got: list[Any] = []
        errors: list[BaseException] = []

        def read() -> None:
            try:
                for chunk in stream:
                    got.append(chunk)
            except BaseException as e:  # the test reports it
                errors.append(e)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        assert hanging.accepted.wait(10)
        time.sleep(0.6)  # a dozen heartbeats while the engine hangs
        assert not errors, errors
        assert reader.is_alive()
        assert got and got[0].choices[0].delta.role == "assistant"
        stream.close()
        reader.join(10)
