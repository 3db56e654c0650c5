"""deepsearch-stream: a Rust streaming core for AI search services.

``EventStream`` is one Server-Sent-Events stream per request: producers ``await
stream.send(type, data)`` (waiting under backpressure), the HTTP response iterates it
(``async for chunk in stream`` gives ``bytes`` holding whole SSE frames, heartbeats and
the final ``[DONE]`` included).

``DeepSearch`` runs the search loop (plan → parallel search → reason → cited answer)
and streams its messages: ``run()`` yields JSON strings like the seed's generator,
``sse()`` returns an ``EventStream``, ``search()`` returns the final result.

``deepsearch_stream.response.EventStreamResponse(stream)`` sends an ``EventStream`` as a
Starlette/FastAPI response.

``proxy(url, body)`` relays another deepsearch service's SSE answer as an ``EventStream``.
"""

from deepsearch_stream._core import (
    ConfigError,
    DecodeError,
    DeepSearchStreamError,
    EncodeError,
    EventStream,
    InvalidRequestError,
    LlmError,
    SearchEngineError,
    StreamClosedError,
    StreamTimeoutError,
    __version__,
    proxy,
    synthetic_stream,
)
from deepsearch_stream.deepsearch import DeepSearch

__all__ = [
    "ConfigError",
    "DecodeError",
    "DeepSearch",
    "DeepSearchStreamError",
    "EncodeError",
    "EventStream",
    "InvalidRequestError",
    "LlmError",
    "SearchEngineError",
    "StreamClosedError",
    "StreamTimeoutError",
    "__version__",
    "proxy",
    "synthetic_stream",
]
