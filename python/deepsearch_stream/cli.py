"""``deepsearch-stream serve``: the FastAPI service under uvicorn.

Every flag falls back to the same ``DEEPSEARCH_*`` environment variable as the axum
server's, so one configuration starts either server.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from deepsearch_stream import _cli_index, _cli_search, _deps

__all__ = ["main"]


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name, "").strip()
    return value if value else default


def _at_least_one(raw: str) -> int:
    """A whole number of at least 1 (the axum server refuses 0 and below alike)."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {raw!r}")
    return value


def _positive(raw: str) -> float:
    """Seconds above 0 (the axum server refuses 0 and below alike)."""
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {raw!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepsearch-stream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the FastAPI service")
    serve.add_argument("--host", default=_env("DEEPSEARCH_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(_env("DEEPSEARCH_PORT", 8000)))
    serve.add_argument("--corpus", default=_env("DEEPSEARCH_CORPUS_DIR"))
    serve.add_argument("--cache-dir", default=_env("DEEPSEARCH_CACHE_DIR"))
    serve.add_argument(
        "--engines",
        default=_env("DEEPSEARCH_ENGINES", "local"),
        help="comma-separated: local, searxng, tavily, brave, serper, jina",
    )
    serve.add_argument("--llm-base-url", default=_env("DEEPSEARCH_LLM_BASE_URL"))
    serve.add_argument("--llm-model", default=_env("DEEPSEARCH_LLM_MODEL"))
    serve.add_argument("--llm-api-key", default=_env("DEEPSEARCH_LLM_API_KEY"))
    serve.add_argument("--locale", default=_env("DEEPSEARCH_LOCALE", "en"))
    serve.add_argument("--max-streams", type=int, default=int(_env("DEEPSEARCH_MAX_STREAMS", 1000)))
    serve.add_argument(
        "--max-body-bytes", type=int, default=int(_env("DEEPSEARCH_MAX_BODY_BYTES", 65536))
    )
    serve.add_argument("--heartbeat", type=float, default=float(_env("DEEPSEARCH_HEARTBEAT", 10.0)))
    serve.add_argument(
        "--stream-timeout", type=float, default=float(_env("DEEPSEARCH_STREAM_TIMEOUT", 3600.0))
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=float,
        default=float(_env("DEEPSEARCH_SHUTDOWN_TIMEOUT", 10.0)),
    )
    serve.add_argument(
        "--upstream",
        default=_env("DEEPSEARCH_UPSTREAM"),
        help="relay every search to this deepsearch service (base URL)",
    )
    serve.add_argument(
        "--resume-linger",
        type=float,
        default=float(_env("DEEPSEARCH_RESUME_LINGER", 60.0)),
        help="seconds a search goes on after its client left, waiting for it to resume "
        "with Last-Event-ID; 0 cancels it at once",
    )
    serve.add_argument(
        "--replay-ttl",
        type=float,
        default=float(_env("DEEPSEARCH_REPLAY_TTL", 300.0)),
        help="seconds a stream's replay log is kept after the stream ended",
    )
    serve.add_argument(
        "--replay-max-bytes",
        type=int,
        default=int(_env("DEEPSEARCH_REPLAY_MAX_BYTES", 256 << 20)),
        help="bytes all replay logs together may hold (ended logs evicted oldest first)",
    )
    serve.add_argument(
        "--replay-max-stream-bytes",
        type=int,
        default=int(_env("DEEPSEARCH_REPLAY_MAX_STREAM_BYTES", 16 << 20)),
        help="bytes one stream's replay log may hold",
    )
    serve.add_argument(
        "--redis",
        dest="redis_url",
        default=_env("DEEPSEARCH_REDIS_URL"),
        help="keep replay logs in Redis Streams at this URL (redis://host:port/db), shared by "
        "every instance; none: in memory. The server does not start when Redis does not answer",
    )
    serve.add_argument(
        "--header-timeout",
        type=_positive,
        default=float(_env("DEEPSEARCH_HEADER_TIMEOUT", 10.0)),
        help="seconds a request head may take to arrive (from its first byte), and an idle "
        "keep-alive connection may stay open; then the connection is closed",
    )
    serve.add_argument(
        "--body-timeout",
        type=_positive,
        default=float(_env("DEEPSEARCH_BODY_TIMEOUT", 30.0)),
        help="seconds a request body may take to arrive; then 408 and the connection is closed",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=int(_env("DEEPSEARCH_MAX_CONNECTIONS", 4096)),
        help="open connections at most (keep it under the file descriptor limit); past it, "
        "a new connection gets 503 and is closed",
    )
    serve.add_argument("--log-level", default=_env("DEEPSEARCH_LOG_LEVEL", "info"))
    serve.add_argument(
        "--bench-routes",
        action="store_true",
        help="add the bench-only routes of bench/CONTRACT.md (/bench/stream, /bench/idle, "
        "/bench/producer); off by default",
    )
    serve.add_argument(
        "--api-key",
        default=_env("DEEPSEARCH_API_KEY"),
        help="require 'Authorization: Bearer <key>' on every route but /healthz and the page "
        "at / (env DEEPSEARCH_API_KEY)",
    )
    serve.add_argument(
        "--cors-origins",
        default=_env("DEEPSEARCH_CORS_ORIGINS"),
        help="origins allowed to call from a browser: comma-separated, or *; "
        "none: no CORS headers at all",
    )
    serve.add_argument(
        "--max-search-calls",
        type=_at_least_one,
        default=_env("DEEPSEARCH_MAX_SEARCH_CALLS"),
        help="engine calls one search may make: the budget of a request that sets none, and "
        "the most its budget.max_search_calls may ask for; none: no limit",
    )
    serve.add_argument(
        "--max-llm-tokens",
        type=_at_least_one,
        default=_env("DEEPSEARCH_MAX_LLM_TOKENS"),
        help="model tokens one search may spend (prompt and completion), as --max-search-calls",
    )
    serve.add_argument(
        "--search-deadline",
        type=_positive,
        default=_env("DEEPSEARCH_SEARCH_DEADLINE"),
        help="seconds one search may search before it answers from what it found, as "
        "--max-search-calls",
    )
    serve.add_argument(
        "--breaker-cooldown",
        type=_positive,
        default=float(_env("DEEPSEARCH_BREAKER_COOLDOWN", 30.0)),
        help="seconds an engine that failed 3 calls in a row is skipped before it is tried again",
    )
    _cli_search.register(sub)
    _cli_index.register(sub)
    return parser


def _settings(args: argparse.Namespace) -> Any:
    from deepsearch_stream.app import Settings

    llm = {"base_url": args.llm_base_url, "model": args.llm_model, "api_key": args.llm_api_key}
    return Settings(
        engines=[e.strip() for e in args.engines.split(",") if e.strip()],
        corpus=args.corpus,
        cache_dir=args.cache_dir,
        llm={k: v for k, v in llm.items() if v} or None,
        locale=args.locale,
        max_streams=args.max_streams,
        max_body_bytes=args.max_body_bytes,
        heartbeat=args.heartbeat if args.heartbeat > 0 else None,
        stream_timeout=args.stream_timeout if args.stream_timeout > 0 else None,
        upstream=args.upstream,
        resume_linger=args.resume_linger,
        replay_ttl=args.replay_ttl,
        replay_max_bytes=args.replay_max_bytes,
        replay_max_stream_bytes=args.replay_max_stream_bytes,
        redis_url=args.redis_url,
        bench_routes=args.bench_routes,
        api_key=args.api_key,
        cors_origins=args.cors_origins,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_connections=args.max_connections,
        search_options=_budget_options(args),
    )


def _budget_options(args: argparse.Namespace) -> dict[str, Any]:
    """The flags the DeepSearch service takes: budgets (as numbers: an environment default
    arrives as text) and the circuit breaker's cooldown."""
    options: dict[str, Any] = {"breaker_cooldown": float(args.breaker_cooldown)}
    if args.max_search_calls is not None:
        options["max_search_calls"] = int(args.max_search_calls)
    if args.max_llm_tokens is not None:
        options["max_llm_tokens"] = int(args.max_llm_tokens)
    if args.search_deadline is not None:
        options["search_deadline"] = float(args.search_deadline)
    return options


def serve(args: argparse.Namespace) -> int:
    from deepsearch_stream._serve import run
    from deepsearch_stream.app import create_app

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s %(message)s")
    from deepsearch_stream import _core

    try:
        app = create_app(_settings(args))
    except _core.ConfigError as e:
        print(f"deepsearch-stream: {e}", file=sys.stderr)
        return 2
    run(app, args.host, args.port, log_level=args.log_level, shutdown_timeout=args.shutdown_timeout)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return serve(args) if args.command == "serve" else int(args.run(args))
    except ModuleNotFoundError as e:
        return _deps.missing(e)


if __name__ == "__main__":
    sys.exit(main())
