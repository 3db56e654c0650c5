"""The pytest plugin of ``deepsearch-stream[testing]`` (entry point ``pytest11``): local
stand-ins for a model and a search engine, as fixtures.

- ``openai_server``: a ``ModelServer``, an OpenAI-compatible model streaming a scripted
  answer, failing on demand (``.url`` is the ``base_url``, ending in ``/v1``).
- ``searxng_server``: a ``SearxngServer``, SearXNG's JSON API with the hits you add
  (``.url`` is the ``SEARXNG_URL``).

Both listen on a free loopback port for one test. They are built on the standard
library's HTTP server: loading the plugin imports this package and nothing else, and
a test that asks for neither fixture starts no server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from deepsearch_stream.testing._providers import ModelServer, SearxngServer


@pytest.fixture
def openai_server() -> Iterator[ModelServer]:
    """An OpenAI-compatible model on a loopback port; see ``ModelServer``."""
    server = ModelServer()
    yield server
    server.close()


@pytest.fixture
def searxng_server() -> Iterator[SearxngServer]:
    """A SearXNG JSON API on a loopback port; see ``SearxngServer``."""
    server = SearxngServer()
    yield server
    server.close()
