"""The terminal commands, as processes: ``deepsearch-stream search`` (live display,
``--json``, Ctrl-C), ``deepsearch-stream index`` (progress, counts, unreadable folders)
and the one-line report of a missing dependency."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from deepsearch_stream.testing import ModelServer, SearxngServer
from servers import HangingEngine, assert_ctrl_c_cancels_the_search, run_command

CLI = [sys.executable, "-m", "deepsearch_stream"]


def cli(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_command(CLI, *args, env=env)


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


def test_search_with_a_model_and_engine_streams_the_answer(
    openai_server: ModelServer, searxng_server: SearxngServer
) -> None:
    searxng_server.add("Tokio", "https://tokio.rs/", "Tokio is a runtime.")
    openai_server.script(["Tokio is ", "a runtime [1]."], queries=["tokio"])
    r = cli(
        "search", "What is Tokio?", "--engines", "searxng",
        "--llm-base-url", openai_server.url, "--llm-model", "m",
        env={"SEARXNG_URL": searxng_server.url},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "\nAnswer:\nTokio is a runtime [1].\n\nSources:\n[1] Tokio\n" in r.stdout
    openai_server.fail("500", phase="answer")
    failed = cli(
        "search", "What is Tokio?", "--engines", "searxng",
        "--llm-base-url", openai_server.url, "--llm-model", "m",
        env={"SEARXNG_URL": searxng_server.url},
    )  # fmt: skip
    assert failed.returncode == 1
    assert failed.stderr.strip().endswith("(llm_error)"), failed.stderr
    assert "Traceback" not in failed.stderr


def test_search_refuses_bad_options_in_one_line(corpus: Path) -> None:
    r = cli("search", "q", "--engines", "nope", "--corpus", corpus)
    assert r.returncode == 2
    assert r.stderr.startswith("deepsearch-stream search: ") and "nope" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = cli("search", "q", "--max-loop", "11", "--corpus", corpus)
    assert r.returncode == 2 and "max_loop" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_cancels_the_search_and_its_requests(hanging: HangingEngine) -> None:
    assert_ctrl_c_cancels_the_search(CLI, "deepsearch-stream", hanging)


def test_index_builds_then_reuses_with_progress_and_sizes(corpus: Path, cache: Path) -> None:
    r = cli("index", corpus, "--cache-dir", cache)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"3 documents (3 passages) from {corpus.resolve()}"
    assert lines[1].startswith(f"index built: {cache / 'local-index'}")
    assert lines[1].endswith(" KiB)")
    assert r.stderr.splitlines()[-1] == f"indexing [{'#' * 30}] 3/3 files", r.stderr
    again = cli("index", corpus, "--cache-dir", cache)
    assert again.returncode == 0 and again.stderr == ""
    assert again.stdout.splitlines()[1].startswith("index up to date: ")
    (corpus / "extra.txt").write_text("A fourth document about queues.\n")
    try:
        grown = cli("index", corpus, "--cache-dir", cache)
    finally:
        (corpus / "extra.txt").unlink()
    assert grown.stdout.startswith("4 documents") and "index built" in grown.stdout


def test_index_refuses_what_it_cannot_read(tmp_path: Path, cache: Path) -> None:
    missing = cli("index", tmp_path / "nowhere", "--cache-dir", cache)
    assert missing.returncode == 2
    assert (
        missing.stderr
        == f"deepsearch-stream index: cannot read {tmp_path / 'nowhere'}: no such folder\n"
    )
    (tmp_path / "file.md").write_text("# a file\n")
    not_dir = cli("index", tmp_path / "file.md", "--cache-dir", cache)
    assert not_dir.returncode == 2 and not_dir.stderr.endswith(": not a folder\n")
    (tmp_path / "empty").mkdir()
    empty = cli("index", tmp_path / "empty", "--cache-dir", cache)
    assert empty.returncode == 1 and "no .md, .txt or .html files" in empty.stderr


def test_missing_dependency_is_one_line_naming_what_to_install() -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None\n"
        "from deepsearch_stream.cli import main\n"
        "sys.exit(main(['serve', '--port', '0']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert r.returncode == 1
    assert r.stderr == (
        "deepsearch-stream: uvicorn is not installed; "
        "install it with: pip install 'deepsearch-stream'\n"
    )
