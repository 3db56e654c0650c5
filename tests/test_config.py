"""One configuration for both servers: ``deepsearch-server --help`` and
``deepsearch-stream serve --help`` offer the same flags with the same help, defaults and
variables (all from the core's table), take the same variables, and refuse the same bad
values with the same message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from deepsearch_stream import _core
from deepsearch_stream.app import Settings
from servers import running, server_binary

ENTRY = re.compile(r"^\s{2,}(?:-\w, )?--(?P<flag>[a-z][a-z-]*)", re.MULTILINE)
DEFAULT = re.compile(r"\[default: (?P<value>[^\]]*)\]")
ENV = re.compile(r"\[env: (?P<name>[A-Z_]+)")
# No wrapping: one help line per flag, whatever the terminal.
WIDE = {"COLUMNS": "4000"}


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DEEPSEARCH_")}
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean, **WIDE, **(env or {})},
        check=False,
    )


def axum(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([str(server_binary()), *args], env)


def fastapi(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "deepsearch_stream", *args], env)


def flags(help_text: str) -> dict[str, tuple[str, str | None, str | None]]:
    """``--help`` as {flag: (description, default, variable)}."""
    found: dict[str, tuple[str, str | None, str | None]] = {}
    starts = list(ENTRY.finditer(help_text))
    for here, after in zip(starts, [*starts[1:], None], strict=True):
        chunk = help_text[here.end() : after.start() if after else len(help_text)]
        # Past the value name (`<PORT>` or `PORT`, then a column gap or a new line), the
        # help line, whitespace collapsed.
        chunk = re.sub(r"^ (<[^>]+>|[A-Z][A-Z_]*)(?=\s{2,}|\n)", "", chunk)
        text = " ".join(chunk.split())
        default, env = DEFAULT.search(text), ENV.search(text)
        description = text.split(" [default:")[0].strip()
        found[here["flag"]] = (
            description,
            default["value"] if default else None,
            env["name"] if env else None,
        )
    return found


def table() -> dict[str, tuple[str, str, str]]:
    return {
        flag: (help_line.split(" [default:")[0], default or "none", env)
        for _key, flag, env, default, help_line, _kind in _core.config_table()
    }


def test_both_servers_offer_every_setting_with_its_help_default_and_variable() -> None:
    rust, python = axum("--help"), fastapi("serve", "--help")
    assert rust.returncode == 0 and python.returncode == 0, rust.stderr + python.stderr
    on_axum, on_fastapi = flags(rust.stdout), flags(python.stdout)
    for extra in ("help", "version"):  # each parser's own
        on_axum.pop(extra, None)
        on_fastapi.pop(extra, None)
    assert on_axum == on_fastapi
    expected = table()
    assert set(on_axum) == set(expected)
    for flag, (description, default, env) in on_axum.items():
        assert description and description.endswith("."), flag
        assert (description, default, env) == expected[flag], flag
        assert env is not None and env.startswith("DEEPSEARCH_"), flag
    assert on_axum["port"] == (on_axum["port"][0], "8000", "DEEPSEARCH_PORT")
    assert on_axum["redis"][2] == "DEEPSEARCH_REDIS_URL"


@pytest.mark.parametrize("command", [["search", "--help"], ["index", "--help"]])
def test_the_terminal_commands_take_the_same_settings(command: list[str]) -> None:
    rust, python = axum(*command), fastapi(*command)
    assert rust.returncode == 0 and python.returncode == 0, rust.stderr + python.stderr
    on_axum, on_fastapi = flags(rust.stdout), flags(python.stdout)
    on_axum.pop("help", None)
    on_fastapi.pop("help", None)
    assert set(on_axum) == set(on_fastapi)
    expected = table()
    for flag, (_description, default, env) in on_axum.items():
        if flag in expected:
            assert on_fastapi[flag] == on_axum[flag] == expected[flag], flag
        else:  # the command's own: --max-loop, --json
            assert on_fastapi[flag][1:] == (default, env), flag


PORT = "expected a port number from 0 to 65535"
SECONDS = "expected a number of seconds, at least 0"
ABOVE_0 = "expected a number of seconds above 0"
BENCH = "DEEPSEARCH_BENCH_ROUTES (--bench-routes)"


@pytest.mark.parametrize(
    ("args", "env", "source", "expected", "raw"),
    [
        (["--port", "x"], {}, "--port", PORT, "x"),
        ([], {"DEEPSEARCH_PORT": "x"}, "DEEPSEARCH_PORT (--port)", PORT, "x"),
        (["--heartbeat", "-1"], {}, "--heartbeat", SECONDS, "-1"),
        (["--header-timeout", "0"], {}, "--header-timeout", ABOVE_0, "0"),
        ([], {"DEEPSEARCH_BENCH_ROUTES": "maybe"}, BENCH, "expected true or false", "maybe"),
    ],
)  # fmt: skip
def test_bad_values_are_refused_alike(
    args: list[str], env: dict[str, str], source: str, expected: str, raw: str
) -> None:
    message = f'invalid value for {source}: {expected}, got "{raw}"'
    rust, python = axum(*args, env=env), fastapi("serve", *args, env=env)
    assert rust.returncode == python.returncode == 2, rust.stderr + python.stderr
    assert rust.stderr == f"deepsearch-server: {message}\n"
    assert python.stderr == f"deepsearch-stream: {message}\n"


def test_python_settings_read_the_table_and_refuse_bad_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    defaults = _core.ServiceConfig.defaults().to_dict()
    assert set(defaults) == {row[0] for row in _core.config_table()}
    assert Settings() == Settings(
        max_streams=defaults["max_streams"], heartbeat=defaults["heartbeat"]
    )
    assert (Settings().max_streams, Settings().replay_max_bytes) == (1000, 256 << 20)
    monkeypatch.setenv("DEEPSEARCH_HEARTBEAT", "0")
    monkeypatch.setenv("DEEPSEARCH_ENGINES", "local, searxng")
    monkeypatch.setenv("DEEPSEARCH_LLM_MODEL", "m")
    settings = Settings.from_env()
    assert settings.heartbeat is None and settings.engines == ["local", "searxng"]
    assert settings.llm == {"model": "m"}
    monkeypatch.setenv("DEEPSEARCH_MAX_STREAMS", "many")
    with pytest.raises(_core.ConfigError, match=r"DEEPSEARCH_MAX_STREAMS \(--max-streams\)"):
        Settings.from_env()
    monkeypatch.delenv("DEEPSEARCH_MAX_STREAMS")
    with pytest.raises(_core.ConfigError, match="unknown setting"):
        _core.ServiceConfig.from_args([("nope", "1")])
    secret = _core.ServiceConfig.from_args(
        [("api_key", "k-secret"), ("redis_url", "redis://:pw@h/0")]
    )
    assert "k-secret" not in repr(secret) and "pw@" not in repr(secret)


def _status(url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("backend", ["fastapi", "axum"])
def test_both_servers_fall_back_to_the_variables(
    backend: str, corpus: Path, tmp_path: Path
) -> None:
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path)]
    env = {"DEEPSEARCH_API_KEY": "from-env", "DEEPSEARCH_BENCH_ROUTES": "true"}
    with running(backend, args, env=env) as server:
        assert _status(f"{server.url}/metrics") == 401
        assert _status(f"{server.url}/metrics", "from-env") == 200
        # The variable turned the bench routes on: the path exists (POST only).
        assert _status(f"{server.url}/bench/stream", "from-env") == 405
    # A flag wins over its variable.
    with running(backend, [*args, "--api-key", "from-flag"], env=env) as server:
        assert _status(f"{server.url}/metrics", "from-env") == 401
        assert _status(f"{server.url}/metrics", "from-flag") == 200
        assert _status(f"{server.url}/bench/stream", "from-flag") == 405
    with running(backend, args) as server:
        assert _status(f"{server.url}/bench/stream") == 404
