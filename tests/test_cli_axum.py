"""The axum binary's terminal commands, as processes: ``deepsearch-server search``
(plain-text display, ``--json``, Ctrl-C) and ``deepsearch-server index`` (counts, sizes,
unreadable folders), mirroring ``deepsearch-stream search``/``index`` (test_cli.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from servers import HangingEngine, assert_ctrl_c_cancels_the_search, run_command, server_binary


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_command([str(server_binary())], *args, env=env)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_search_shows_plan_sources_answer_and_numbered_urls(corpus: Path, cache: Path) -> None:
    r = cli("search", "What is Tokio?", "--corpus", corpus, "--cache-dir", cache, "--max-loop", "2")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    plan, sources, answer, numbered = (
        out.index("Round 1 plan:\n  - What is Tokio?"),
        out.index("    Tokio <https://tokio.rs/> [local]"),
        out.index("\nAnswer:\nTokio is an asynchronous runtime"),
        out.index("\n\nSources:\n[1] Tokio\n    https://tokio.rs/\n"),
    )
    assert plan < sources < answer < numbered, out


def test_search_json_prints_the_final_result(corpus: Path, cache: Path) -> None:
    r = cli("search", "--json", "What is UDP?", "--corpus", corpus, "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout)
    assert final["sources"] == [{"id": 1, "title": "UDP", "url": "https://net.example/udp"}]
    assert "connectionless" in final["answer"] and final["loops"] >= 1


def test_search_refuses_bad_options_in_one_line(corpus: Path) -> None:
    r = cli("search", "q", "--engines", "nope", "--corpus", corpus)
    assert r.returncode == 2
    assert r.stderr.startswith("deepsearch-server search: ") and "nope" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("search", "q", "--max-loop", "11", "--corpus", corpus)
    assert r.returncode == 2 and "max_loop" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_ctrl_c_cancels_the_search_and_its_requests(hanging: HangingEngine) -> None:
    assert_ctrl_c_cancels_the_search([str(server_binary())], "deepsearch-server", hanging)


def test_index_builds_then_reuses_with_counts_and_sizes(corpus: Path, cache: Path) -> None:
    r = cli("index", corpus, "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"3 documents (3 passages) from {corpus.resolve()}"
    assert lines[1].startswith(f"index built: {cache / 'local-index'}")
    assert lines[1].endswith(" KiB)")
    assert r.stderr.splitlines()[-1] == f"indexing [{'#' * 30}] 3/3 files", r.stderr
    again = cli("index", corpus, "--cache-dir", cache)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[1].startswith("index up to date: ")


def test_index_refuses_what_it_cannot_read(tmp_path: Path, cache: Path) -> None:
    missing = cli("index", tmp_path / "nowhere", "--cache-dir", cache)
    assert missing.returncode == 2
    assert (
        missing.stderr
        == f"deepsearch-server index: cannot read {tmp_path / 'nowhere'}: no such folder\n"
    )
    (tmp_path / "file.md").write_text("# a file\n")
    not_dir = cli("index", tmp_path / "file.md", "--cache-dir", cache)
    assert not_dir.returncode == 2 and not_dir.stderr.endswith(": not a folder\n")
    (tmp_path / "empty").mkdir()
    empty = cli("index", tmp_path / "empty", "--cache-dir", cache)
    assert empty.returncode == 1 and "no .md, .txt or .html files" in empty.stderr
