"""The core's log events reach Python's ``logging`` (logger ``deepsearch_stream``): the
FastAPI service logs what the axum server logs, each record with its request id."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import httpx
import pytest

from conftest import serve
from deepsearch_stream import DeepSearch, InvalidRequestError
from deepsearch_stream.app import Settings, create_app

LOGGER = "deepsearch_stream"


async def records_of(
    caplog: pytest.LogCaptureFixture, message: str, request_id: str
) -> list[logging.LogRecord]:
    """The bridge's records starting with ``message`` for ``request_id``, once there:
    they are logged from the bridge's own thread, a moment after the event."""
    for _ in range(500):
        found = [
            r
            for r in caplog.records
            if r.name == LOGGER
            and r.getMessage().startswith(message)
            and getattr(r, "request_id", None) == request_id
        ]
        if found:
            return found
        await asyncio.sleep(0.01)
    seen = [(r.name, r.getMessage()) for r in caplog.records]
    raise AssertionError(f"no {message!r} record for {request_id}; saw {seen}")


async def test_the_service_logs_each_search_with_its_request_id(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    app = create_app(Settings(engines=["local"], corpus=str(corpus)))
    async with serve(app) as base, httpx.AsyncClient(timeout=30) as client:
        body = {"query": "What is Tokio?", "request_id": "log-1", "stream_mode": "final"}
        r = await client.post(f"{base}/deepsearch", json=body)
        assert r.status_code == 200 and re.search(
            r"data: \[DONE\]\nid: [0-9a-f]{32}\.\d+\n\n$", r.text
        )
        r = await client.post(
            f"{base}/deepsearch", content=b"{", headers={"content-type": "application/json"}
        )
        assert r.status_code == 400
    (started,) = await records_of(caplog, "search started", "log-1")
    assert started.levelno == logging.INFO
    assert started.fields["route"] == "/deepsearch"  # type: ignore[attr-defined]
    assert started.fields["stream"] == "true"  # type: ignore[attr-defined]
    (ended,) = await records_of(caplog, "stream ended", "log-1")
    assert int(ended.fields["messages"]) >= 2  # type: ignore[attr-defined]
    (refused,) = await records_of(caplog, "request refused", "-")
    assert refused.fields["code"] == "invalid_json"  # type: ignore[attr-defined]
    assert refused.fields["status"] == "400"  # type: ignore[attr-defined]
    # Never the body: a refusal's message may quote it.
    assert "{" not in refused.getMessage()


async def test_a_search_awaited_to_the_end_logs_under_its_request_id(
    corpus: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    ds = DeepSearch(["local"], str(corpus))
    result = await ds.search("What is Tokio?", request_id="awaited-7")
    assert set(result) == {
        "answer",
        "sources",
        "loops",
        "queries",
        "elapsed_ms",
        "citations",
        "usage",
    }
    assert all(set(s) == {"id", "title", "url"} for s in result["sources"])
    assert isinstance(result["elapsed_ms"], int) and result["loops"] >= 1
    assert result["citations"] == [], "an extractive answer quotes its sources: nothing to check"
    await records_of(caplog, "search answered", "awaited-7")


async def test_a_bad_request_id_is_refused_by_name(corpus: Path) -> None:
    ds = DeepSearch(["local"], str(corpus))
    with pytest.raises(InvalidRequestError, match="request_id"):
        await ds.search("What is Tokio?", request_id="bad id\n")
