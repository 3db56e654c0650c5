"""The offline default corpus: the running Python's documentation exported as markdown."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from importlib.machinery import ExtensionFileLoader
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

CORPUS_DIR = Path(__file__).resolve().parents[1] / "python" / "deepsearch_stream" / "corpus"
DOCS = f"https://docs.python.org/{sys.version_info[0]}.{sys.version_info[1]}"


def _load_corpus_module() -> ModuleType:
    # Loaded from its directory: ``import deepsearch_stream.corpus`` would run the package
    # ``__init__``, which needs the compiled extension, and the corpus package is pure stdlib.
    name = "deepsearch_stream_corpus_under_test"
    spec = importlib.util.spec_from_file_location(
        name, CORPUS_DIR / "__init__.py", submodule_search_locations=[str(CORPUS_DIR)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


corpus = _load_corpus_module()
# The same loading in a fresh interpreter, as ``m``, for the tests that need one.
LOAD_CORPUS = (
    "import importlib.util, sys\n"
    f"spec = importlib.util.spec_from_file_location('c', {str(CORPUS_DIR / '__init__.py')!r},"
    f" submodule_search_locations=[{str(CORPUS_DIR)!r}])\n"
    "m = importlib.util.module_from_spec(spec); sys.modules['c'] = m\n"
    "spec.loader.exec_module(m)\n"
)
# The submodules whose functions the tests replace where they are called.
export_mod = importlib.import_module(f"{corpus.__name__}.export")
render_mod = importlib.import_module(f"{corpus.__name__}.render")
stdlib_mod = importlib.import_module(f"{corpus.__name__}.stdlib")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones included) by relative path."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def file_stats(root: Path) -> dict[str, tuple[int, int]]:
    """``(inode, mtime_ns)`` of every file and directory under ``root``, root included."""
    paths = [root, *sorted(root.rglob("*"))]
    return {p.relative_to(root).as_posix(): (p.stat().st_ino, p.stat().st_mtime_ns) for p in paths}


def read(root: Path, rel: str) -> str:
    return (root / rel).read_text(encoding="utf-8")


def siblings(dest: Path) -> list[str]:
    return sorted(p.name for p in dest.parent.iterdir() if p.name != dest.name)


def fake_renderer(
    files: dict[str, str], barrier: threading.Barrier | None = None
) -> Callable[[], dict[str, str]]:
    """A fast stand-in for the real renderer; the barrier makes exports overlap."""

    def render() -> dict[str, str]:
        if barrier is not None:
            barrier.wait(timeout=60)
        return dict(files)

    return render


FAKE = {"modules/fake.md": "<!-- url: https://docs.python.org/3/ -->\n# fake\n\nfake body\n"}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """One real export shared by the read-only tests, with the modules it imported."""
    dest = tmp_path_factory.mktemp("shared") / "python-docs"
    imported: list[str] = []
    real_import = stdlib_mod.import_module

    def recording_import(name: str) -> ModuleType:
        imported.append(name)
        module: ModuleType = real_import(name)
        return module

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stdlib_mod, "import_module", recording_import)
        mp.setattr(render_mod, "import_module", recording_import)
        assert corpus.export_python_docs(dest) == dest
    yield dest, imported


# --------------------------------------------------------------------------- locations


def test_cache_dir_precedence_mirrors_the_rust_rule(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEEPSEARCH_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert corpus.default_cache_dir() == tmp_path / "explicit"
    assert corpus.default_corpus_dir() == tmp_path / "explicit" / "python-docs"

    monkeypatch.setenv("DEEPSEARCH_CACHE_DIR", " \t ")  # whitespace counts as unset
    assert corpus.default_cache_dir() == tmp_path / "xdg" / "deepsearch-stream"

    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert corpus.default_cache_dir() == tmp_path / "home" / ".cache" / "deepsearch-stream"
    assert corpus.default_corpus_dir() == (
        tmp_path / "home" / ".cache" / "deepsearch-stream" / "python-docs"
    )

    monkeypatch.delenv("HOME")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    expected_tmp = tmp_path / "tmp" if os.name == "posix" else Path(tempfile.gettempdir())
    assert corpus.default_cache_dir() == expected_tmp / "deepsearch-stream"

    # Like Rust's PathBuf::from: the value is taken literally, no "~" expansion.
    monkeypatch.setenv("DEEPSEARCH_CACHE_DIR", "~/cache")
    assert corpus.default_cache_dir() == Path("~/cache")


def test_module_pages_follow_the_docs_site() -> None:
    url = render_mod._module_url_path
    assert url("json") == "json.html"
    assert url("os.path") == "os.path.html"
    assert url("concurrent.futures") == "concurrent.futures.html"
    assert url("asyncio.tasks") == "asyncio.html#module-asyncio.tasks"
    assert url("importlib.abc") == "importlib.html#module-importlib.abc"
    assert url("email.mime.text") == "email.mime.html#module-email.mime.text"
    assert url("xml.etree.ElementTree") == "xml.etree.elementtree.html"
    assert url("lib2to3.fixes.fix_print") == "2to3.html#module-lib2to3.fixes.fix_print"
    assert url("cProfile") == "profile.html#module-cProfile"
    assert url("builtins") == "functions.html"


# --------------------------------------------------------------------------- content


def test_modules_are_exported_with_docstrings_signatures_and_urls(
    exported: tuple[Path, list[str]],
) -> None:
    dest, _ = exported
    json_md = read(dest, "modules/json.md")
    assert json_md.startswith(f"<!-- url: {DOCS}/library/json.html -->\n# json\n")
    assert "JSON (JavaScript Object Notation)" in json_md
    assert "\n## json.dumps\n" in json_md
    assert "\n    json.dumps(obj, *, skipkeys=False," in json_md
    assert "Serialize ``obj`` to a JSON formatted ``str``." in json_md

    asyncio_md = read(dest, "modules/asyncio.md")
    assert asyncio_md.startswith(f"<!-- url: {DOCS}/library/asyncio.html -->\n# asyncio\n")
    tasks_md = read(dest, "modules/asyncio.tasks.md")
    assert tasks_md.startswith(f"<!-- url: {DOCS}/library/asyncio.html#module-asyncio.tasks -->")
    assert "\n## asyncio.tasks.gather\n" in tasks_md
    assert "Return a future aggregating results from the given coroutines/futures." in tasks_md
    assert "\n    async asyncio.tasks.sleep(delay, result=None)\n" in tasks_md

    # A C module, documented by importing it.
    math_md = read(dest, "modules/math.md")
    assert math_md.startswith(f"<!-- url: {DOCS}/library/math.html -->\n# math\n")
    assert "mathematical functions" in math_md
    assert "\n## math.sqrt\n" in math_md
    assert "Return the square root of x." in math_md
    # A C function named like a module dunder (unicodedata.name vs __name__) is kept, and
    # sys documents its own hooks even though pytest has replaced sys.unraisablehook.
    assert "\n## unicodedata.name\n" in read(dest, "modules/unicodedata.md")
    sys_md = read(dest, "modules/sys.md")
    assert "\n## sys.unraisablehook\n" in sys_md
    assert "Handle an unraisable exception." in sys_md

    # os.path is the platform's path module, plus what it re-exports from genericpath.
    path_md = read(dest, "modules/os.path.md")
    assert path_md.startswith(f"<!-- url: {DOCS}/library/os.path.html -->\n# os.path\n")
    assert "\n## os.path.join\n" in path_md
    assert "\n## os.path.exists\n" in path_md
    assert "Test whether a path exists." in path_md

    # Re-exports from private modules belong to the public module...
    futures_md = read(dest, "modules/concurrent.futures.md")
    assert "\n## concurrent.futures.Future\n" in futures_md
    assert "\n### concurrent.futures.Future.result\n" in futures_md
    decimal_md = read(dest, "modules/decimal.md")  # from the _decimal extension
    assert "\n## decimal.Decimal\n" in decimal_md
    # ...while re-exports from public modules stay in their own file.
    assert "\n## json.JSONDecoder\n" not in json_md
    assert "\n## json.decoder.JSONDecoder\n" in read(dest, "modules/json.decoder.md")


def test_topics_are_exported_once_each_under_their_docs_anchor(
    exported: tuple[Path, list[str]],
) -> None:
    dest, _ = exported
    simple = read(dest, "topics/simple_stmts.md")
    assert simple.startswith(f"<!-- url: {DOCS}/reference/simple_stmts.html -->\n")
    assert '\n## assert\n\n### The "assert" statement\n' in simple
    assert "Assert statements are a convenient way to insert debugging assertions" in simple

    from pydoc_data.topics import topics

    all_topics = "".join(read(dest, f"topics/{p.name}") for p in (dest / "topics").iterdir())
    headings = set(re.findall(r"^## (\S+)$", all_topics, flags=re.MULTILINE))
    texts = {label: text.strip() for label, text in topics.items()}
    for label, text in texts.items():
        duplicate = any(t == text for other, t in texts.items() if other != label)
        assert label in headings or duplicate, label
    # "compound" contains the "while" topic verbatim; the text is stored only once.
    assert all_topics.count('The "while" statement is used for repeated execution') == 1
    assert "\n## while\n" in read(dest, "topics/compound_stmts.md")


def test_every_file_is_markdown_the_rust_splitter_reads_as_intended(
    exported: tuple[Path, list[str]],
) -> None:
    """Only our own headings are headings, and no docstring opens a code fence."""
    dest, _ = exported
    files = sorted(dest.rglob("*.md"))
    assert len(files) > 300
    for path in files:
        lines = path.read_text(encoding="utf-8").split("\n")
        assert re.fullmatch(rf"<!-- url: {re.escape(DOCS)}/\S+ -->", lines[0]), path
        for line in lines[1:]:
            stripped = line.lstrip()
            if len(line) - len(stripped) > 3:
                continue  # indented code: not structure for the splitter
            assert not stripped.startswith(("```", "~~~")), (path, line)
            level = len(stripped) - len(stripped.lstrip("#"))
            if not (1 <= level <= 6 and stripped[level : level + 1] in ("", " ", "\t")):
                continue
            heading = stripped[level:].strip()
            if path.parent.name == "modules":
                name = path.stem
                ok = (level == 1 and heading == name) or (
                    level in (2, 3) and heading.startswith(f"{name}.")
                )
            else:  # a page, its topics, their sections, the names they document
                ok = level in (1, 2, 3) or (
                    level == 4 and re.fullmatch(r"[A-Za-z_][\w.]*", heading) is not None
                )
            assert ok, (path, line)


def test_side_effect_private_and_test_modules_are_not_exported(
    exported: tuple[Path, list[str]],
) -> None:
    dest, imported = exported
    names = {p.stem for p in (dest / "modules").iterdir()}
    assert {"json", "math", "os", "os.path", "asyncio"} <= names
    for name in names:
        parts = name.split(".")
        assert parts[0] not in {"antigravity", "this", "idlelib", "turtledemo", "__main__"}, name
        assert not any(p.startswith("_") for p in parts), name
        assert not any(p in ("test", "tests") for p in parts), name
    # Implementation modules are documented as os and os.path.
    assert not names & {"posix", "posixpath", "ntpath", "genericpath"}

    # Only built-in and extension modules were imported, never a Python source.
    assert imported, "C modules such as math are documented by importing them"
    for name in set(imported):
        spec = sys.modules[name].__spec__
        assert spec is not None
        assert spec.origin == "built-in" or isinstance(spec.loader, ExtensionFileLoader), name
    assert "readline" not in imported


def test_export_never_runs_side_effect_modules(tmp_path: Path) -> None:
    # In a fresh interpreter, so nothing the test session imported can hide an import.
    dest = tmp_path / "python-docs"
    script = (
        f"{LOAD_CORPUS}"
        f"m.export_python_docs({str(dest)!r})\n"
        "bad = {'antigravity', 'this', 'idlelib', 'turtledemo', 'tkinter', 'turtle',\n"
        "       'webbrowser', 'readline', 'pydoc_data.topics', 'json'}\n"
        "print(sorted(bad & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=110
    )
    # Nothing printed the Zen of Python or anything else, and nothing unsafe was imported.
    assert result.stdout == "[]\n"
    assert (dest / "modules" / "json.md").is_file()


# --------------------------------------------------------------------------- caching


def test_export_is_deterministic(exported: tuple[Path, list[str]], tmp_path: Path) -> None:
    dest, _ = exported
    again = corpus.export_python_docs(tmp_path / "again")
    assert snapshot(again) == snapshot(dest)
    assert ".stamp" in snapshot(dest)


def test_matching_corpus_is_reused_untouched_and_force_rewrites(
    exported: tuple[Path, list[str]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DEEPSEARCH_CACHE_DIR", str(tmp_path / "cache"))
    dest = tmp_path / "cache" / "python-docs"
    shutil.copytree(exported[0], dest)
    before = file_stats(dest)

    def no_render() -> dict[str, str]:
        raise AssertionError("an up-to-date corpus was rebuilt")

    with monkeypatch.context() as mp:
        mp.setattr(export_mod, "_render_corpus", no_render)
        started = time.perf_counter()
        assert corpus.export_python_docs() == dest  # the default destination
        assert time.perf_counter() - started < 1.0
    assert file_stats(dest) == before

    # force: a new directory with new files (new inodes), same bytes.
    content = snapshot(dest)
    assert corpus.export_python_docs(dest, force=True) == dest
    after = file_stats(dest)
    assert set(after) == set(before)
    assert all(after[rel][0] != before[rel][0] for rel in before)
    assert snapshot(dest) == content
    assert siblings(dest) == []


def test_stale_stamp_triggers_a_new_export(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(FAKE))
    dest = tmp_path / "python-docs"
    corpus.export_python_docs(dest)
    stamp = read(dest, ".stamp")
    assert f"format: {corpus.FORMAT_VERSION}\n" in stamp
    assert " ".join(sys.version.split()) in stamp

    # Another Python (or format version) wrote this corpus: it is replaced.
    (dest / ".stamp").write_text(stamp.replace("python: ", "python: 2.7 "), encoding="utf-8")
    (dest / "modules" / "stale.md").write_text("stale\n", encoding="utf-8")
    corpus.export_python_docs(dest)
    assert read(dest, ".stamp") == stamp
    assert snapshot(dest).keys() == {".stamp", "modules/fake.md"}


def test_export_is_built_aside_and_renamed_into_place(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dest = tmp_path / "python-docs"
    monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(FAKE))
    corpus.export_python_docs(dest)
    old = snapshot(dest)
    new_files = {"modules/a.md": "# a\n", "modules/b.md": "# b\n"}
    monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(new_files))
    real_install = export_mod._install
    seen: list[Path] = []

    def checking_install(tmp: Path, target: Path, stamp: str, *, force: bool) -> None:
        # Complete and stamped before it becomes visible; hidden, beside the target.
        assert tmp.parent == target.parent and tmp.name.startswith(".")
        assert snapshot(tmp).keys() == {".stamp", "modules/a.md", "modules/b.md"}
        assert snapshot(target) == old  # readers still see the previous corpus
        seen.append(tmp)
        real_install(tmp, target, stamp, force=force)

    monkeypatch.setattr(export_mod, "_install", checking_install)
    corpus.export_python_docs(dest, force=True)
    assert seen and snapshot(dest).keys() == {".stamp", "modules/a.md", "modules/b.md"}

    # A failure before the rename leaves the previous corpus as it was, and no debris.
    def failing_install(tmp: Path, target: Path, stamp: str, *, force: bool) -> None:
        raise OSError("disk full")

    before = snapshot(dest)
    monkeypatch.setattr(export_mod, "_install", failing_install)
    with pytest.raises(OSError, match="disk full"):
        corpus.export_python_docs(dest, force=True)
    assert snapshot(dest) == before
    assert siblings(dest) == []


def test_foreign_directories_are_never_replaced(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(FAKE))
    dest = tmp_path / "notes"
    dest.mkdir()
    (dest / "mine.md").write_text("my notes\n", encoding="utf-8")
    with pytest.raises(FileExistsError):
        corpus.export_python_docs(dest)
    assert snapshot(dest) == {"mine.md": b"my notes\n"}

    empty = tmp_path / "empty"
    empty.mkdir()
    corpus.export_python_docs(empty)
    assert (empty / "modules" / "fake.md").is_file()
    assert (empty / ".stamp").is_file()


def test_leftovers_of_crashed_exports_are_swept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(FAKE))
    old = tmp_path / ".python-docs.tmp-1-dead"
    fresh = tmp_path / ".python-docs.old-2-busy"  # maybe another exporter's, right now
    for path in (old, fresh):
        (path / "modules").mkdir(parents=True)
    hour_ago = time.time() - 2 * 3600
    os.utime(old, (hour_ago, hour_ago))
    corpus.export_python_docs(tmp_path / "python-docs")
    assert siblings(tmp_path / "python-docs") == [fresh.name]


# --------------------------------------------------------------------------- robustness


def test_a_failing_module_is_skipped_not_fatal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real_read = stdlib_mod._read_source
    real_import = stdlib_mod._import_extension
    real_function_entry = stdlib_mod._function_entry

    def read_source(path: Path) -> bytes:
        if path.parent.name == "json" and path.name == "__init__.py":
            return b"def broken(:\n"  # a source that does not parse
        data: bytes = real_read(path)
        return data

    def import_extension(name: str) -> Any:
        if name == "math":
            raise ImportError("simulated broken extension")
        return real_import(name)

    def function_entry(node: Any, *, method: bool) -> Any:
        if node.name == "fnmatch":  # anything unexpected while documenting a module
            raise RuntimeError("simulated bug")
        return real_function_entry(node, method=method)

    monkeypatch.setattr(stdlib_mod, "_read_source", read_source)
    monkeypatch.setattr(stdlib_mod, "_import_extension", import_extension)
    monkeypatch.setattr(stdlib_mod, "_function_entry", function_entry)
    dest = corpus.export_python_docs(tmp_path / "python-docs")
    modules = dest / "modules"
    assert not (modules / "json.md").exists()
    assert not (modules / "math.md").exists()
    assert not (modules / "fnmatch.md").exists()
    for survivor in ("json.decoder", "cmath", "os.path", "glob", "asyncio"):
        assert (modules / f"{survivor}.md").is_file(), survivor
    assert (dest / "topics" / "simple_stmts.md").is_file()
    assert (dest / ".stamp").is_file()


def test_concurrent_processes_both_end_with_the_complete_corpus(
    exported: tuple[Path, list[str]], tmp_path: Path
) -> None:
    dest = tmp_path / "cache" / "python-docs"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", f"{LOAD_CORPUS}sys.exit(m.main())", "--dest", str(dest)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        for seed in ("1", "2")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=110)
        assert proc.returncode == 0, err
        assert out == f"{dest}\n"  # the CLI prints the corpus directory
    # Complete, and byte-identical to this process's export (other hash seeds included).
    assert snapshot(dest) == snapshot(exported[0])
    assert siblings(dest) == []


@pytest.mark.parametrize("force", [False, True])
def test_concurrent_threads_both_end_with_a_complete_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, force: bool
) -> None:
    dest = tmp_path / "python-docs"
    if force:  # both replace an existing corpus at once
        monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(FAKE))
        corpus.export_python_docs(dest)
    barrier = threading.Barrier(2)
    files = {**FAKE, "topics/t.md": "<!-- url: https://docs.python.org/3/ -->\n# t\n"}
    monkeypatch.setattr(export_mod, "_render_corpus", fake_renderer(files, barrier))
    results: list[Path] = []
    errors: list[BaseException] = []

    def export() -> None:
        try:
            results.append(corpus.export_python_docs(dest, force=force))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=export) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert results == [dest, dest]
    assert snapshot(dest).keys() == {".stamp", "modules/fake.md", "topics/t.md"}
    assert siblings(dest) == []
