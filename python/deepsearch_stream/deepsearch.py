"""``DeepSearch``: the core's search loop, with the seed's ``run()`` interface.

The Rust class does the work; this subclass adds the two things that belong to the
Python package: the default corpus (the Python documentation, exported on first use)
and ``run()``, which yields each message as a JSON string like the seed's generator.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from deepsearch_stream import _core

__all__ = ["DeepSearch"]

_DONE = b"[DONE]"


def _uses_local(engines: Sequence[str] | None) -> bool:
    return not engines or any(e.strip().lower() == "local" for e in engines)


class DeepSearch(_core.DeepSearch):
    """Plan → parallel search → reason, round after round, then a cited answer.

    ``engines`` names the search engines (``local``, ``searxng``, ``tavily``, ``brave``,
    ``serper``, ``jina``; default ``["local"]``). ``corpus`` is the directory the
    ``local`` engine indexes; when it is ``None`` and ``DEEPSEARCH_CORPUS_DIR`` is unset,
    the Python documentation is exported into the cache directory and used, so a fresh
    machine needs no network. ``llm`` is ``None`` (an OpenAI-compatible model from the
    environment, else offline), ``"offline"``, or a dict of client options. Other
    keywords are the loop's limits; see ``_core.DeepSearch``.
    """

    def __new__(
        cls,
        engines: Sequence[str] | None = None,
        corpus: str | os.PathLike[str] | None = None,
        llm: str | Mapping[str, Any] | None = None,
        **options: Any,
    ) -> DeepSearch:
        if (
            corpus is None
            and _uses_local(engines)
            and not os.environ.get("DEEPSEARCH_CORPUS_DIR", "").strip()
        ):
            from deepsearch_stream.corpus import export_python_docs

            cache_dir = options.get("cache_dir")
            dest = Path(cache_dir) / "python-docs" if cache_dir is not None else None
            corpus = export_python_docs(dest)
        return super().__new__(cls, engines, corpus, llm, **options)

    def run(
        self,
        query: str,
        request_id: str,
        max_loop: int = 3,
        stream: bool = True,
        stream_mode: str | Mapping[str, Any] = "all",
    ) -> AsyncIterator[str]:
        """The search's messages as JSON strings (``{"type", "data", "requestId",
        "timestamp"}``), the seed's chunks: wrap each in a ``ServerSentEvent``.

        Arguments are checked now, so bad input raises here rather than mid-response.
        With ``stream=False`` only the ``final`` message (or an ``error``) is yielded.
        Leaving the loop early, or cancelling the task iterating it, stops the search.
        """
        events = self.sse(query, request_id, max_loop, stream_mode, stream=stream, heartbeat=None)
        return _messages(events)


async def _messages(events: _core.EventStream) -> AsyncIterator[str]:
    # Frames come whole and JSON never holds a raw newline, so a blank line ends each,
    # and its one `data:` line ends at the next newline (the `id:` line follows it).
    try:
        async for chunk in events:
            for frame in chunk.split(b"\n\n"):
                if not frame:
                    continue
                start = frame.index(b"data: ") + 6
                end = frame.find(b"\n", start)
                data = frame[start:] if end == -1 else frame[start:end]
                if data == _DONE:
                    return
                yield data.decode()
    finally:
        events.close()
