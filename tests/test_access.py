"""The API key and CORS on both servers: the same answers (status, the headers that
matter, body) from each, for a table of requests; and the settings that turn them on."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conftest import sse_events
from deepsearch_stream import _core
from deepsearch_stream.app import Settings
from servers import BACKENDS, Server, command, running, write_corpus

KEY = "k3y-for-tests"
APP = "https://app.example"
GOOD = {"query": "What is Tokio?", "request_id": "a-1", "stream_mode": "final"}
HEADERS = (
    "content-type",
    "www-authenticate",
    "allow",
    "vary",
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
)


def bearer(key: str = KEY) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def preflight(origin: str, path: str = "/deepsearch") -> dict[str, Any]:
    headers = {
        "origin": origin,
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type",
    }
    return {"method": "OPTIONS", "path": path, "headers": headers}


def req(method: str, path: str, headers: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    return {"method": method, "path": path, "headers": headers or {}, **kw}


# name: (request, status)
GUARDED: dict[str, tuple[dict[str, Any], int]] = {
    "healthz-without-key": (req("GET", "/healthz"), 200),
    "page-without-key": (req("GET", "/"), 200),
    "search-without-key": (req("POST", "/deepsearch", json=GOOD), 401),
    "search-wrong-key": (req("POST", "/deepsearch", bearer("k3y-for-tesTs"), json=GOOD), 401),
    "search-shorter-key": (req("POST", "/deepsearch", bearer(KEY[:-1]), json=GOOD), 401),
    "search-longer-key": (req("POST", "/deepsearch", bearer(KEY + "x"), json=GOOD), 401),
    "search-basic-scheme": (
        req("POST", "/deepsearch", {"authorization": f"Basic {KEY}"}, json=GOOD),
        401,
    ),
    "search-bare-key": (req("POST", "/deepsearch", {"authorization": KEY}, json=GOOD), 401),
    "search-key": (req("POST", "/deepsearch", bearer(), json=GOOD), 200),
    "search-key-lowercase-scheme": (
        req("POST", "/deepsearch", {"authorization": f"bearer {KEY}"}, json=GOOD),
        200,
    ),
    "bad-body-without-key": (req("POST", "/deepsearch", content=b"{"), 401),
    "bad-body-with-key": (req("POST", "/deepsearch", bearer(), content=b"{"), 415),
    "genie-without-key": (req("POST", "/v1/tool/deepsearch", json=GOOD), 401),
    "metrics-without-key": (req("GET", "/metrics"), 401),
    "bench-without-key": (req("POST", "/bench/idle", json={"id": "x"}), 401),
    "unknown-path-without-key": (req("GET", "/nope"), 401),
    "unknown-path-with-key": (req("GET", "/nope", bearer()), 404),
    "wrong-method-with-key": (req("PUT", "/deepsearch", bearer()), 405),
    "healthz-alias-without-key": (req("GET", "/%68ealthz"), 401),
    # CORS: preflights need no key; the answers carry the CORS headers, refusals too.
    "preflight-allowed": (preflight(APP), 204),
    "preflight-unknown-path": (preflight(APP, "/nope"), 204),
    "preflight-other-origin": (preflight("https://evil.example"), 403),
    "options-not-preflight": (req("OPTIONS", "/deepsearch", {"origin": APP}), 401),
    "search-from-app": (req("POST", "/deepsearch", {**bearer(), "origin": APP}, json=GOOD), 200),
    "search-from-app-without-key": (req("POST", "/deepsearch", {"origin": APP}, json=GOOD), 401),
    "search-from-other-origin": (
        req("POST", "/deepsearch", {**bearer(), "origin": "https://evil.example"}, json=GOOD),
        200,
    ),
    "healthz-from-app": (req("GET", "/healthz", {"origin": APP}), 200),
}


def exchange(base: str, spec: dict[str, Any]) -> dict[str, Any]:
    spec = dict(spec)
    r = httpx.request(spec.pop("method"), base + spec.pop("path"), timeout=30, **spec)
    out = {
        "status": r.status_code,
        "headers": {h: r.headers.get(h) for h in HEADERS},
    }
    if r.headers.get("content-type", "").startswith("text/event-stream"):
        # The last event's data ([DONE]); its id holds the stream's own key.
        out["last"] = sse_events(r.content)[-1][1]
    elif r.status_code != 200:
        out["body"] = r.content
    return out


def pair(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[dict[str, Server]]:
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--bench-routes", *extra]
    with running("fastapi", args) as fastapi, running("axum", args) as axum:
        yield {"fastapi": fastapi, "axum": axum}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    yield from pair(
        tmp_path_factory, "--api-key", KEY, "--cors-origins", f"{APP},http://localhost:3000"
    )


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Server]]:
    yield from pair(tmp_path_factory)


@pytest.mark.parametrize("case", list(GUARDED))
def test_guarded_parity(guarded: dict[str, Server], case: str) -> None:
    spec, status = GUARDED[case]
    got = {name: exchange(server.url, spec) for name, server in guarded.items()}
    assert got["fastapi"] == got["axum"]
    answer = got["axum"]
    headers = answer["headers"]
    assert answer["status"] == status, answer
    if status == 401:
        assert headers["www-authenticate"] == "Bearer"
        assert headers["content-type"] == "application/json"
        assert answer["body"].startswith(b'{"error": {"code": "unauthorized", "message": "')
        assert answer["body"].endswith(b'", "field": null}}')
        assert KEY.encode() not in answer["body"]
    if status == 200 and "last" in answer:
        assert answer["last"] == "[DONE]"
    origin = spec["headers"].get("origin")
    if origin == APP:
        assert headers["access-control-allow-origin"] == APP
        assert headers["vary"] == "origin"
    else:
        assert headers["access-control-allow-origin"] is None
    if status == 204:
        assert (
            headers["access-control-allow-headers"]
            == "authorization, content-type, last-event-id, "
            "mcp-protocol-version, mcp-session-id, mcp-method, mcp-name"
        )
        assert headers["access-control-allow-methods"] == "GET, HEAD, POST"
        assert answer["body"] == b""
    if origin == APP and status != 204:
        assert headers["access-control-expose-headers"] == (
            "retry-after, www-authenticate, mcp-session-id"
        )


@pytest.mark.parametrize(
    "spec",
    [
        req("POST", "/deepsearch", {"origin": APP}, json=GOOD),
        req("GET", "/metrics", {"origin": APP}),
        preflight(APP),
    ],
    ids=["search", "metrics", "preflight"],
)
def test_without_settings_nothing_is_guarded_and_no_cors_header_is_sent(
    plain: dict[str, Server], spec: dict[str, Any]
) -> None:
    got = {name: exchange(server.url, spec) for name, server in plain.items()}
    assert got["fastapi"] == got["axum"]
    answer = got["axum"]
    assert answer["status"] == (405 if spec["method"] == "OPTIONS" else 200)
    assert answer["headers"]["www-authenticate"] is None
    assert not any(v for h, v in answer["headers"].items() if h.startswith("access-control-"))


def test_any_origin(tmp_path_factory: pytest.TempPathFactory) -> None:
    for servers in pair(tmp_path_factory, "--cors-origins", "*"):
        for spec, status in [
            (preflight("https://x.example"), 204),
            (req("GET", "/healthz", {"origin": "https://x.example"}), 200),
        ]:
            got = {name: exchange(s.url, spec) for name, s in servers.items()}
            assert got["fastapi"] == got["axum"]
            assert got["axum"]["status"] == status
            assert got["axum"]["headers"]["access-control-allow-origin"] == "*"
            assert got["axum"]["headers"]["vary"] is None


def test_the_key_comes_from_the_environment(tmp_path_factory: pytest.TempPathFactory) -> None:
    corpus = write_corpus(tmp_path_factory.mktemp("corpus"))
    cache = tmp_path_factory.mktemp("cache")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache)]
    env = {"DEEPSEARCH_API_KEY": KEY, "DEEPSEARCH_CORS_ORIGINS": APP}
    for backend in BACKENDS:
        with running(backend, args, env=env) as server:
            assert httpx.get(server.url + "/metrics").status_code == 401
            r = httpx.get(server.url + "/metrics", headers={**bearer(), "origin": APP})
            assert r.status_code == 200
            assert r.headers["access-control-allow-origin"] == APP


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("flags", "named"),
    [(["--api-key", " "], "API key is empty"), (["--cors-origins", "app.example"], "app.example")],
)
def test_bad_settings_stop_the_server_with_a_message(
    backend: str, flags: list[str], named: str
) -> None:
    result = subprocess.run(
        command(backend, ["--port", "0", *flags]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_read_the_environment_and_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEEPSEARCH_API_KEY", " secret-value ")
    monkeypatch.setenv("DEEPSEARCH_CORS_ORIGINS", APP)
    settings = Settings.from_env()
    assert (settings.api_key, settings.cors_origins) == ("secret-value", APP)
    assert "secret-value" not in repr(settings)
    access = _core.Access(api_key=settings.api_key, cors_origins=settings.cors_origins)
    assert "secret-value" not in repr(access)
    assert access.check("GET", "/metrics", b"Bearer secret-value") is None
    with pytest.raises(_core.ConfigError, match="--cors-origins"):
        _core.Access(cors_origins="https://a.example/path")


def test_request_ids_are_checked_the_same_way_everywhere() -> None:
    assert _core.valid_request_id("req-1:a.b_c")
    for bad in ["", "a\r\nb", "a\x00", "a b", "é", "r" * 129]:
        assert not _core.valid_request_id(bad), bad
