"""deepsearch-stream: a Rust streaming core for AI search services.

``EventStream`` is one Server-Sent-Events stream per request: producers ``await
stream.send(type, data)`` (waiting under backpressure), the HTTP response iterates it
(``async for chunk in stream`` gives ``bytes`` holding whole SSE frames, heartbeats and
the final ``[DONE]`` included).
"""

from deepsearch_stream._core import (
    ConfigError,
    DeepSearchStreamError,
    EncodeError,
    EventStream,
    StreamClosedError,
    StreamTimeoutError,
    __version__,
    synthetic_stream,
)

__all__ = [
    "ConfigError",
    "DeepSearchStreamError",
    "EncodeError",
    "EventStream",
    "StreamClosedError",
    "StreamTimeoutError",
    "__version__",
    "synthetic_stream",
]
