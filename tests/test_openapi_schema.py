"""schemathesis against the FastAPI service's own OpenAPI schema, over a real server
process: valid and invalid requests of every documented operation never get a 5xx,
and every response matches what the schema documents (status, content type, body)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from servers import Server, running, write_corpus

EXAMPLES = 100


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "30"]
    with running("fastapi", args) as server:
        yield server


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors_and_conforming_responses(server: Server, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json")
    operations = schema.as_strategy(generation_mode=mode)
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    seen: set[str] = set()

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operations)
    def check(case: schemathesis.Case) -> None:
        with requests.Session() as session:
            response = case.call(base_url=server.url, session=session, timeout=30)
        case.validate_response(response, checks=checks)
        seen.add(f"{case.method} {case.path} {response.status_code}")

    check()
    # The run reached the searches (valid data) and the refusals (invalid data), not only
    # the cheap routes.
    statuses = {int(s.rsplit(" ", 1)[1]) for s in seen if "deepsearch" in s}
    if mode is GenerationMode.POSITIVE:
        assert 200 in statuses, seen
    else:
        assert statuses & {400, 413, 415, 422}, seen
