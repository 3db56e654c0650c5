"""Testing streaming endpoints offline: ``pip install 'deepsearch-stream[testing]'``.

- ``read_events(response)`` / ``await aread_events(response)``: an ``httpx`` or
  Starlette ``TestClient`` response's decoded SSE events (the core's decoder), as
  ``Events`` (``.messages``, ``.types``, ``.final``, ``.data_of(type)``);
  ``parse_events(body)`` for bytes.
- ``assert_stream`` (envelopes, ids and ``[DONE]``), ``assert_ids`` (no gap, no
  duplicate), ``assert_done`` (one ``[DONE]``, last), ``assert_heartbeats_idle``.
- Fixtures, from the pytest plugin this extra registers: ``openai_server``
  (``ModelServer``) and ``searxng_server`` (``SearxngServer``); ``LocalServer``,
  ``Handler``, ``OpenAIHandler`` and ``searxng_results`` to write other stand-ins.
"""

from deepsearch_stream.testing._checks import (
    assert_done,
    assert_heartbeats_idle,
    assert_ids,
    assert_stream,
)
from deepsearch_stream.testing._providers import (
    Handler,
    LocalServer,
    ModelServer,
    OpenAIHandler,
    SearxngServer,
    searxng_results,
)
from deepsearch_stream.testing._sse import Events, SseEvent, aread_events, parse_events, read_events

__all__ = [
    "Events",
    "Handler",
    "LocalServer",
    "ModelServer",
    "OpenAIHandler",
    "SearxngServer",
    "SseEvent",
    "aread_events",
    "assert_done",
    "assert_heartbeats_idle",
    "assert_ids",
    "assert_stream",
    "parse_events",
    "read_events",
    "searxng_results",
]
