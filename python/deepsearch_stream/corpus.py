"""The offline default corpus: the Python documentation that ships with the interpreter.

DeepSearch's ``local`` engine is BM25 over a directory of markdown files. With no corpus
configured it searches this one, so the product works on a fresh machine with no network:
the ``pydoc_data.topics`` reference topics plus the docstrings and signatures of the
standard library, exported as markdown with a ``<!-- url: ... -->`` marker per file that
points at the matching page of docs.python.org for the running Python version.

Location rule (shared with the Rust server, which reads the directory without Python)::

    cache dir = $DEEPSEARCH_CACHE_DIR
                else $XDG_CACHE_HOME/deepsearch-stream
                else $HOME/.cache/deepsearch-stream
                else <system temp dir>/deepsearch-stream
                (a variable that is unset, empty or only whitespace counts as unset)
    corpus    = <cache dir>/python-docs

The corpus is complete exactly when ``<corpus>/.stamp`` exists: the directory is built as a
hidden sibling, stamped last and renamed into place, so a reader never sees a half-written
corpus. The stamp (a hidden file, which the Rust scanner ignores) records the export format
and the Python build; an export whose stamp matches is reused untouched, which keeps file
mtimes, and with them the Rust index cache, valid.

Layout: ``modules/<module>.md`` (one per public standard-library module, ``##`` per public
class or function, ``###`` per public method) and ``topics/<page>.md`` (``##`` per pydoc
topic, grouped by the documentation page the topic comes from).

Safety: sources are read with :mod:`ast`, never imported; only built-in and extension
modules (which have no Python source) are imported, and a module that fails in any way is
skipped. Run ``python -m deepsearch_stream.corpus [--dest DIR] [--force]``.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import logging
import os
import re
import shutil
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from importlib import import_module
from importlib.machinery import ExtensionFileLoader
from importlib.util import find_spec
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

__all__ = [
    "CACHE_DIR_ENV",
    "CORPUS_DIR_NAME",
    "FORMAT_VERSION",
    "STAMP_FILE",
    "default_cache_dir",
    "default_corpus_dir",
    "export_python_docs",
    "main",
]

_log = logging.getLogger(__name__)

#: Environment variable naming the cache directory (same as the Rust ``CACHE_DIR_ENV``).
CACHE_DIR_ENV = "DEEPSEARCH_CACHE_DIR"
#: Name of the corpus directory inside the cache directory.
CORPUS_DIR_NAME = "python-docs"
#: Completion marker inside the corpus directory; hidden, so it is never indexed.
STAMP_FILE = ".stamp"
#: Bump whenever the exported files change for the same Python, so old exports are redone.
FORMAT_VERSION = 1

_STAMP_HEADER = "deepsearch-stream python-docs corpus"
_APP_DIR = "deepsearch-stream"
#: Leftover build/replaced directories older than this are swept after an export.
_LEFTOVER_AGE_SECONDS = 3600.0
_INSTALL_ATTEMPTS = 50
#: Bounds how far re-exports are followed through private modules.
_MAX_FOLLOW_DEPTH = 6

# Top-level modules never exported: they run code on import (antigravity opens a browser,
# this prints), are applications or demos, or are tests.
_EXCLUDED = frozenset({"__main__", "antigravity", "idlelib", "test", "this", "turtledemo"})
# Implementation modules documented under another name: their public functions are
# exported as part of ``os`` (posix, nt) and ``os.path`` (the path modules).
_IMPLEMENTATION = frozenset({"genericpath", "ntpath", "nt", "posix", "posixpath"})
# Extension modules whose import has effects beyond defining names: importing readline
# initialises the terminal (and may write escape sequences to stdout).
_NO_IMPORT = frozenset({"readline"})
# Packages whose submodules are generated data rather than documentation (the ~120 codec
# tables of ``encodings``); the package itself is still exported.
_NO_SUBMODULES = frozenset({"encodings"})

# Modules documented on a page not named after them ("page" or "page#anchor", without
# ".html"). Every other top-level module ``m`` has ``library/<m lowercased>.html``.
_PAGE_ALIASES = {
    "builtins": "functions",
    "cProfile": "profile#module-cProfile",
    "email.utils": "email.util",
    "encodings": "codecs#standard-encodings",
    "lib2to3": "2to3#module-lib2to3",
    "nturl2path": "urllib.request",
    "opcode": "dis",
    "pstats": "profile#module-pstats",
    "pydoc_data": "pydoc",
    "sre_compile": "re",
    "sre_constants": "re",
    "sre_parse": "re",
    "tkinter.commondialog": "dialog#module-tkinter.commondialog",
    "tkinter.filedialog": "dialog#module-tkinter.filedialog",
    "tkinter.simpledialog": "dialog#module-tkinter.simpledialog",
    "urllib.response": "urllib.request#module-urllib.response",
    "xml.etree.ElementTree": "xml.etree.elementtree",
    "xml.parsers.expat": "pyexpat",
    "xml.sax.saxutils": "xml.sax.utils",
    "xml.sax.xmlreader": "xml.sax.reader",
}
# Submodules with a page of their own. Any other submodule links to the page of its
# nearest documented ancestor plus Sphinx's ``#module-<name>`` anchor (which exists for
# every submodule the docs describe, e.g. ``importlib.html#module-importlib.abc``).
_SUBMODULE_PAGES = frozenset(
    {
        "collections.abc",
        "concurrent.futures",
        "curses.ascii",
        "curses.panel",
        "email.charset",
        "email.contentmanager",
        "email.encoders",
        "email.errors",
        "email.generator",
        "email.header",
        "email.headerregistry",
        "email.iterators",
        "email.message",
        "email.mime",
        "email.parser",
        "email.policy",
        "html.entities",
        "html.parser",
        "http.client",
        "http.cookiejar",
        "http.cookies",
        "http.server",
        "importlib.metadata",
        "importlib.resources",
        "importlib.resources.abc",
        "logging.config",
        "logging.handlers",
        "multiprocessing.shared_memory",
        "os.path",
        "tkinter.colorchooser",
        "tkinter.dnd",
        "tkinter.font",
        "tkinter.messagebox",
        "tkinter.scrolledtext",
        "tkinter.tix",
        "tkinter.ttk",
        "unittest.mock",
        "urllib.error",
        "urllib.parse",
        "urllib.request",
        "urllib.robotparser",
        "xml.dom",
        "xml.dom.minidom",
        "xml.dom.pulldom",
        "xml.sax",
        "xml.sax.handler",
        "xmlrpc.client",
        "xmlrpc.server",
    }
)

# pydoc topic labels are Sphinx labels, and Sphinx emits every label as an HTML id, so
# ``<page>.html#<label>`` is an exact link. Topics are grouped into one file per page and
# each topic's ``##`` heading is its label: the Rust engine turns a section heading into
# the URL fragment with GitHub-style slugs, which leave these labels (lowercase letters,
# digits, hyphens) unchanged, so a hit lands on the topic's own anchor. The search page
# alone could not serve a grouped file, because the ``?q=`` query would be the same for
# every topic in it. A label missing here (one added by a newer Python) gets a file of its
# own pointing at ``search.html?q=<label>``, the docs' own search, which always exists.
_TOPIC_PAGE_TITLES = {
    "library/pdb": "pdb — The Python Debugger",
    "library/stdtypes": "Built-in Types",
    "library/string": "string — Common string operations",
    "reference/compound_stmts": "Compound statements",
    "reference/datamodel": "Data model",
    "reference/executionmodel": "Execution model",
    "reference/expressions": "Expressions",
    "reference/lexical_analysis": "Lexical analysis",
    "reference/simple_stmts": "Simple statements",
}
_TOPIC_PAGES = {
    label: page
    for page, labels in {
        "library/pdb": "debugger",
        "library/stdtypes": "bltin-code-objects bltin-ellipsis-object bltin-null-object "
        "bltin-type-objects specialattrs string-methods truth typesfunctions typesmapping "
        "typesmethods typesmodules typesseq typesseq-mutable",
        "library/string": "formatstrings formatspec",
        "reference/compound_stmts": "async class compound else for function if match try "
        "while with",
        "reference/datamodel": "attribute-access callable-types context-managers "
        "customization numeric-types objects sequence-types specialnames types",
        "reference/executionmodel": "dynamic-features exceptions execmodel naming",
        "reference/expressions": "assignment-expressions atom-identifiers atom-literals "
        "attribute-references await binary bitwise booleans calls comparisons conversions "
        "dict exprlists in lambda lists operator-summary power shifting slicings "
        "subscriptions unary",
        "reference/lexical_analysis": "floating id-classes identifiers imaginary integers "
        "numbers strings",
        "reference/simple_stmts": "assert assignment augassign break continue del global "
        "import nonlocal pass raise return type yield",
    }.items()
    for label in labels.split()
}

# Analysis touches process-global state (the warnings filters, imports of extension
# modules), so exports in several threads analyse one at a time.
_ANALYSIS_LOCK = threading.Lock()
_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")
_UNDERLINE = re.compile(r"([=*\-~^\"'`#+])\1{2,}")
_BLOCK_START = ("#", "```", "~~~")
_PROPERTY_DECORATORS = frozenset(
    {"abstractproperty", "cached_property", "deleter", "getter", "property", "setter"}
)
_FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
# ``try``/``except*`` (ast.TryStar) exists from Python 3.11 on.
_TRY_NODES: tuple[type[ast.stmt], ...] = tuple(
    t for t in (ast.Try, getattr(ast, "TryStar", None)) if isinstance(t, type)
)


# --------------------------------------------------------------------------- locations


def default_cache_dir() -> Path:
    """The cache directory: ``$DEEPSEARCH_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/deepsearch-stream``, else ``~/.cache/deepsearch-stream``.

    Unset, empty and whitespace-only variables count as unset, and ``~`` means ``$HOME``
    (with no ``$HOME`` either, ``<system temp dir>/deepsearch-stream``), exactly like the
    Rust ``search::local::default_cache_dir``.
    """

    def non_empty(name: str) -> str | None:
        value = os.environ.get(name)
        return value if value is not None and value.strip() else None

    if (explicit := non_empty(CACHE_DIR_ENV)) is not None:
        return Path(explicit)
    if (xdg := non_empty("XDG_CACHE_HOME")) is not None:
        return Path(xdg) / _APP_DIR
    if (home := non_empty("HOME")) is not None:
        return Path(home) / ".cache" / _APP_DIR
    return _system_temp_dir() / _APP_DIR


def _system_temp_dir() -> Path:
    # Rust's std::env::temp_dir(): $TMPDIR, else /tmp on Unix; the OS rule on Windows.
    if os.name == "posix":
        return Path(os.environ.get("TMPDIR") or "/tmp")
    return Path(tempfile.gettempdir())


def default_corpus_dir() -> Path:
    """Where the default corpus lives: ``default_cache_dir() / "python-docs"``."""
    return default_cache_dir() / CORPUS_DIR_NAME


# --------------------------------------------------------------------------- export


def export_python_docs(dest: str | os.PathLike[str] | None = None, *, force: bool = False) -> Path:
    """Writes the Python documentation corpus into ``dest`` and returns its absolute path.

    ``dest`` defaults to :func:`default_corpus_dir`. A complete corpus exported by the same
    format version from the same Python build is returned as is, without touching a file,
    unless ``force``. Otherwise the corpus is built in a hidden sibling directory and
    renamed into place, so readers see the old corpus, then (for a moment, when replacing
    one) no directory, then the new corpus, but never a partial one; concurrent exports all
    return a complete corpus. A non-empty ``dest`` that is not such a corpus is refused with
    :class:`FileExistsError` rather than deleted.
    """
    target = Path(os.path.abspath(dest if dest is not None else default_corpus_dir()))
    stamp = _stamp_text()
    if not force and _read_stamp(target) == stamp:
        return target
    _check_replaceable(target)
    target.parent.mkdir(parents=True, exist_ok=True)

    files = _render_corpus()
    tmp = _unique_sibling(target, "tmp")
    os.mkdir(tmp)  # mode 0o777 minus umask: the corpus is as readable as any new directory
    try:
        for rel in sorted(files):
            path = tmp / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(files[rel].encode("utf-8", "backslashreplace"))
        (tmp / STAMP_FILE).write_bytes(stamp.encode("utf-8"))
        _install(tmp, target, stamp, force=force)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _sweep_leftovers(target)
    return target


def _stamp_text() -> str:
    version = " ".join(sys.version.split())
    return (
        f"{_STAMP_HEADER}\n"
        f"format: {FORMAT_VERSION}\n"
        f"python: {version}\n"
        f"implementation: {sys.implementation.name}\n"
        f"platform: {sys.platform}\n"
    )


def _read_stamp(corpus: Path) -> str | None:
    try:
        return (corpus / STAMP_FILE).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _check_replaceable(target: Path) -> None:
    """Refuses to replace anything but nothing, an empty directory or one of our corpora."""
    if not os.path.lexists(target):
        return
    if target.is_dir():
        stamp = _read_stamp(target)
        if stamp is not None and stamp.startswith(_STAMP_HEADER + "\n"):
            return
        if not any(target.iterdir()):
            return
    raise FileExistsError(
        f"{target} exists and is not a python-docs corpus (no {STAMP_FILE}); refusing to replace it"
    )


def _unique_sibling(target: Path, kind: str) -> Path:
    # Hidden, so neither the Rust scanner nor a listing of the cache shows it as a corpus.
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:12]}")


def _install(tmp: Path, target: Path, stamp: str, *, force: bool) -> None:
    """Renames ``tmp`` to ``target``, moving an existing ``target`` aside first."""
    error: OSError | None = None
    for attempt in range(_INSTALL_ATTEMPTS):
        if attempt:
            time.sleep(0.01 * min(attempt, 10))  # contention, or Windows holding a handle
        try:
            # POSIX rename(2) also replaces an empty directory; a non-empty one fails.
            os.rename(tmp, target)
            return
        except OSError as exc:
            error = exc
            if not os.path.lexists(target):
                continue  # it was moved away between our attempt and the check: retry
        if not force and _read_stamp(target) == stamp:
            return  # a concurrent export installed the same corpus first; tmp is dropped
        _check_replaceable(target)
        aside = _unique_sibling(target, "old")
        try:
            os.rename(target, aside)
        except OSError as exc:
            error = exc
            continue  # another exporter moved it aside first, or a reader holds it
        try:
            os.rename(tmp, target)
        except OSError as exc:
            error = exc
            continue  # another exporter installed first; go round and look at theirs
        finally:
            _remove(aside)
        return
    raise OSError(f"could not install the corpus at {target}") from error


def _remove(path: Path) -> None:
    if path.is_symlink():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _sweep_leftovers(target: Path) -> None:
    """Removes build and replaced directories that crashed exporters left behind."""
    prefixes = (f".{target.name}.tmp-", f".{target.name}.old-")
    cutoff = time.time() - _LEFTOVER_AGE_SECONDS
    try:
        siblings = list(target.parent.iterdir())
    except OSError:
        return
    for path in siblings:
        try:
            if path.name.startswith(prefixes) and path.lstat().st_mtime < cutoff:
                _remove(path)
        except OSError:
            continue


# --------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Entry:
    """A documented object: a function, a class (with its methods) or a property."""

    name: str
    kind: str  # "def", "async def", "class" or "property"
    signature: str  # "(a, b=1) -> int"; "" when unknown
    doc: str
    bases: tuple[str, ...] = ()
    methods: tuple[_Entry, ...] = ()


@dataclass(frozen=True)
class _Source:
    """What the export needs from a parsed module; the syntax tree itself is dropped."""

    doc: str
    exported: list[str] | None  # a literal __all__
    local: dict[str, _Entry]  # top-level classes and functions, first definition wins
    bindings: tuple[ast.stmt, ...]  # imports and ``name = module.attr``, in order


def _render_corpus() -> dict[str, str]:
    """Every corpus file as ``{relative path: text}``."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    with _ANALYSIS_LOCK, warnings.catch_warnings():
        # Parsing old sources or importing deprecated extension modules may warn; under
        # ``-W error`` that would turn into spurious skips.
        warnings.simplefilter("ignore")
        stdlib = _Stdlib()
        files: dict[str, str] = {}
        for export_name, source_name in _public_modules(stdlib):
            try:
                text = _render_module(stdlib, export_name, source_name, version)
            except Exception as exc:  # one bad module must never fail the export
                _log.debug("skipping %s: %r", export_name, exc)
                continue
            if text is not None:
                files[f"modules/{export_name}.md"] = text
        try:
            files.update(_render_topics(_load_topics(stdlib), version))
        except Exception as exc:
            _log.debug("skipping the pydoc topics: %r", exc)
    return files


def _public_modules(stdlib: _Stdlib) -> list[tuple[str, str]]:
    """``(exported name, module whose source or namespace documents it)``, sorted."""
    found: list[tuple[str, str]] = []
    for top in sorted(sys.stdlib_module_names):
        if top.startswith("_") or top in _EXCLUDED or top in _IMPLEMENTATION:
            continue
        path = stdlib.source_path(top)
        if path is None:
            if stdlib.extension(top) is not None:
                found.append((top, top))
            continue
        found.append((top, top))
        if path.name == "__init__.py" and top not in _NO_SUBMODULES:
            found.extend((name, name) for name in _submodules(top, path.parent))
    # os.path is whichever path module the platform uses (posixpath here, ntpath on
    # Windows); both are implementation modules, documented as os.path.
    found.append(("os.path", os.path.__name__))
    return sorted(found)


def _submodules(package: str, directory: Path) -> Iterator[str]:
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return
    for entry in entries:
        name = entry.name.removesuffix(".py") if entry.is_file() else entry.name
        if entry.is_file() and not entry.name.endswith(".py"):
            continue
        if not _is_public_component(name):
            continue
        qualified = f"{package}.{name}"
        if entry.is_dir():
            if (entry / "__init__.py").is_file():
                yield qualified
                yield from _submodules(qualified, entry)
        else:
            yield qualified


def _is_public_component(name: str) -> bool:
    return (
        name.isidentifier()
        and not name.startswith("_")
        and name not in ("test", "tests")
        and not name.startswith("test_")
        and not name.endswith("_test")
    )


def _module_url_path(name: str) -> str:
    """docs.python.org path (under ``library/``) documenting module ``name``."""
    alias = _PAGE_ALIASES.get(name)
    if alias is not None:
        page, _, anchor = alias.partition("#")
        return f"{page}.html" + (f"#{anchor}" if anchor else "")
    parent, _, _ = name.rpartition(".")
    if not parent or name in _SUBMODULE_PAGES:
        return f"{name.lower()}.html"
    page = _module_url_path(parent).partition("#")[0]
    return f"{page}#module-{name}"


def _docs_url(version: str, path: str) -> str:
    return f"https://docs.python.org/{version}/{path}"


def _render_module(stdlib: _Stdlib, export_name: str, source_name: str, version: str) -> str | None:
    doc = stdlib.module_doc(source_name)
    if doc is None:
        return None  # neither source nor importable extension module
    entries = list(stdlib.public(source_name).values())
    if not doc and not entries:
        return None  # nothing to search (e.g. pydoc_data)
    lines = [
        f"<!-- url: {_docs_url(version, 'library/' + _module_url_path(export_name))} -->",
        f"# {export_name}",
        "",
    ]
    if doc:
        lines += [_neutralize(doc), ""]
    for entry in entries:
        lines += _render_entry(f"{export_name}.{entry.name}", entry, "##")
        for method in entry.methods:
            lines += _render_entry(f"{export_name}.{entry.name}.{method.name}", method, "###")
    return "\n".join(lines).rstrip("\n") + "\n"


def _render_entry(qualified: str, entry: _Entry, level: str) -> list[str]:
    if entry.kind == "property":
        signature = f"property {qualified}"
    elif entry.kind == "class":
        signature = f"class {qualified}{entry.signature}"
    elif entry.kind == "async def":
        signature = f"async {qualified}{entry.signature}"
    else:
        signature = f"{qualified}{entry.signature}"
    # An indented code block: its text is never taken for a heading or a fence.
    lines = [f"{level} {qualified}", "", "    " + " ".join(signature.split()), ""]
    if entry.bases:
        lines += ["Bases: " + ", ".join(" ".join(b.split()) for b in entry.bases), ""]
    if entry.doc:
        lines += [_neutralize(entry.doc), ""]
    return lines


def _neutralize(text: str) -> str:
    """Indents lines the Rust splitter would take for headings or code fences.

    The splitter (``src/search/passages.rs``) treats ``#`` and fence lines indented by at
    most three spaces as structure; docstrings and topics are prose, where such lines are
    comments or examples. Tabs are expanded because the splitter counts them as one column.
    """
    out = []
    for raw in text.expandtabs().splitlines():
        line = raw.rstrip()
        stripped = line.lstrip()
        if stripped.startswith(_BLOCK_START) and len(line) - len(stripped) <= 3:
            line = "    " + line
        out.append(line)
    return "\n".join(out).strip("\n")


def _load_topics(stdlib: _Stdlib) -> dict[str, str]:
    """``pydoc_data.topics.topics``, read as a literal (it is pure data) when possible."""
    path = stdlib.source_path("pydoc_data.topics")
    tree = ast.parse(_read_source(path)) if path is not None else None
    for stmt in tree.body if tree is not None else []:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "topics" for t in stmt.targets
        ):
            try:
                value = ast.literal_eval(stmt.value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                break
            if isinstance(value, dict):
                return {str(k): str(v) for k, v in value.items()}
    module = import_module("pydoc_data.topics")  # not a literal after all; still pure data
    return {str(k): str(v) for k, v in module.topics.items()}


def _render_topics(topics: dict[str, str], version: str) -> dict[str, str]:
    texts = _dedupe_topics({label: _topic_markdown(text) for label, text in topics.items()})
    grouped: dict[str, list[str]] = {}
    for label in sorted(texts):
        grouped.setdefault(_TOPIC_PAGES.get(label, ""), []).append(label)
    files: dict[str, str] = {}
    for page, labels in sorted(grouped.items()):
        if page:
            files[f"topics/{page.rpartition('/')[2]}.md"] = _render_topic_file(
                _docs_url(version, f"{page}.html"),
                _TOPIC_PAGE_TITLES[page],
                [(label, texts[label]) for label in labels],
            )
            continue
        for label in labels:
            title = topics[label].strip().partition("\n")[0].strip() or label
            files[f"topics/topic-{label}.md"] = _render_topic_file(
                _docs_url(version, f"search.html?q={quote(label)}"), title, [(label, texts[label])]
            )
    return files


def _dedupe_topics(texts: dict[str, str]) -> dict[str, str]:
    """Stores every piece of topic text once.

    Some topics contain others verbatim (``specialnames`` holds ``customization``,
    ``compound`` holds ``if``, ``while``, ...), and ``if`` and ``else`` are the same text.
    Contained topics are cut out of their containers, so a search hit is the smallest topic
    (with the most precise anchor) rather than the same text twice; of identical topics the
    one whose title names it (``The "if" statement``) is kept.
    """

    def names_itself(label: str) -> bool:
        return f'"{label}"' in texts[label].partition("\n")[0]

    kept: dict[str, str] = {}
    for label in sorted(texts, key=lambda label: (not names_itself(label), label)):
        kept.setdefault(texts[label], label)
    pieces = sorted((t for t in kept if t.strip()), key=lambda t: (-len(t), t))
    result: dict[str, str] = {}
    for text, label in kept.items():
        for piece in pieces:
            if len(piece) < len(text) and piece in text:
                text = text.replace(piece, "")
        result[label] = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
    return result


def _render_topic_file(url: str, title: str, topics: Sequence[tuple[str, str]]) -> str:
    lines = [f"<!-- url: {url} -->", f"# {title}", ""]
    for label, text in topics:
        lines += [f"## {label}", "", text, ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def _topic_markdown(text: str) -> str:
    """Topic text (reStructuredText rendered as plain text) with titles in bold."""
    source = text.expandtabs().splitlines()
    out: list[str] = []
    for i, line in enumerate(source):
        title = source[i - 1].strip() if i else ""
        if title and _UNDERLINE.fullmatch(line.strip()) and len(line.strip()) >= len(title):
            out[-1] = f"**{title}**"  # drop the underline, mark the title
            continue
        out.append(line)
    return _neutralize("\n".join(out))


# --------------------------------------------------------------------------- analysis


class _Stdlib:
    """What the standard library documents, read from sources or extension modules."""

    def __init__(self) -> None:
        self.root = Path(sysconfig.get_path("stdlib"))
        self._sources: dict[str, _Source | None] = {}
        self._extensions: dict[str, ModuleType | None] = {}
        self._namespaces: dict[str, dict[str, _Entry]] = {}
        self._in_progress: set[str] = set()

    # ---- locating

    def source_path(self, name: str) -> Path | None:
        parts = name.split(".")
        if not all(part.isidentifier() for part in parts):
            return None
        base = self.root.joinpath(*parts)
        for candidate in (base / "__init__.py", base.with_name(parts[-1] + ".py")):
            if candidate.is_file():
                return candidate
        return None

    def is_package(self, name: str) -> bool:
        path = self.source_path(name)
        return path is not None and path.name == "__init__.py"

    def source(self, name: str) -> _Source | None:
        """The parsed source of ``name``; None without a (parsable) source."""
        if name not in self._sources:
            path = self.source_path(name)
            source = None
            if path is not None:
                try:
                    source = _summarize(ast.parse(_read_source(path), filename=str(path)))
                except (OSError, SyntaxError, ValueError, RecursionError, MemoryError) as exc:
                    _log.debug("cannot parse %s: %r", path, exc)
            self._sources[name] = source
        return self._sources[name]

    def extension(self, name: str) -> ModuleType | None:
        """A built-in or extension module of the standard library (no Python source)."""
        if name not in self._extensions:
            module = None
            if self.source_path(name) is None:
                try:
                    module = _import_extension(name)
                except Exception as exc:  # ImportError, or anything the module init raises
                    _log.debug("cannot import %s: %r", name, exc)
            self._extensions[name] = module
        return self._extensions[name]

    # ---- documenting

    def module_doc(self, name: str) -> str | None:
        """The module docstring ("" when it has none); None when the module is unreadable."""
        source = self.source(name)
        if source is not None:
            return source.doc
        module = self.extension(name)
        if module is not None:
            return _own_doc(module)
        return None

    def public(self, name: str) -> dict[str, _Entry]:
        """The public API of ``name``: ``__all__`` when it is a literal, else every name
        without a leading underscore; names re-exported from private or implementation
        modules are documented here, names from other public modules in their own file."""
        namespace = self.namespace(name)
        source = self.source(name)
        names: list[str] | None
        if source is not None:
            names = source.exported
        else:
            exported = getattr(self.extension(name), "__all__", None)
            names = None
            if isinstance(exported, list | tuple):
                names = [n for n in exported if isinstance(n, str)]
        if names is None:
            return {n: e for n, e in namespace.items() if not n.startswith("_")}
        return {n: namespace[n] for n in names if n in namespace}

    def namespace(self, name: str) -> dict[str, _Entry]:
        """Every documented top-level binding of ``name``, private ones included."""
        if name in self._namespaces:
            return self._namespaces[name]
        if name in self._in_progress or len(self._in_progress) >= _MAX_FOLLOW_DEPTH:
            return {}  # an import cycle, or a chain too long to be documentation
        self._in_progress.add(name)
        try:
            source = self.source(name)
            if source is not None:
                result = self._source_namespace(name, source)
            else:
                module = self.extension(name)
                result = _object_namespace(module) if module is not None else {}
        finally:
            self._in_progress.discard(name)
        self._namespaces[name] = result
        return result

    def _source_namespace(self, name: str, source: _Source) -> dict[str, _Entry]:
        # Local definitions win over imports, whose modules are then only read (or, for
        # extension modules, imported) when a name is still missing.
        local, exported = source.local, source.exported
        # With a literal __all__ whose every name is defined here, star imports add nothing
        # (typically ``from _accelerator import *`` over pure-Python definitions).
        stars_needed = exported is None or any(n not in local for n in exported)

        imported: dict[str, _Entry] = {}
        modules: dict[str, str] = {}  # local names bound to modules, for ``x = _mod.x``

        def follow(module: str, attr: str, bound: str) -> None:
            if bound in local or bound in imported or not self._followable(module):
                return
            if bound.startswith("_") and (exported is None or bound not in exported):
                return  # private here too: never documented, so never looked up
            found = self.namespace(module).get(attr)
            if found is not None:
                imported[bound] = replace(found, name=bound)

        for stmt in source.bindings:
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    if alias.asname or "." not in alias.name:
                        modules[alias.asname or alias.name] = alias.name
            elif isinstance(stmt, ast.ImportFrom):
                origin = _resolve_import(name, self.is_package(name), stmt)
                if origin is None:
                    continue
                for alias in stmt.names:
                    bound = alias.asname or alias.name
                    if alias.name == "*":
                        if stars_needed and self._followable(origin):
                            for n, entry in self.public(origin).items():
                                imported.setdefault(n, entry)
                    elif self.source_path(f"{origin}.{alias.name}") is not None:
                        modules[bound] = f"{origin}.{alias.name}"  # a submodule
                    else:
                        follow(origin, alias.name, bound)
            elif (
                isinstance(stmt, ast.Assign)
                and len(stmt.targets) == 1
                and isinstance(target := stmt.targets[0], ast.Name)
                and isinstance(value := stmt.value, ast.Attribute)
                and isinstance(value.value, ast.Name)
                and (module := modules.get(value.value.id)) is not None
            ):
                follow(module, value.attr, target.id)
        result = dict(local)
        for bound, entry in imported.items():
            result.setdefault(bound, entry)
        return result

    def _followable(self, module: str) -> bool:
        """Re-exports are followed only into modules that get no file of their own."""
        parts = module.split(".")
        private = any(p.startswith("_") for p in parts) or parts[0] in _IMPLEMENTATION
        return private and (self.source_path(module) is not None or _is_extension(module))


def _summarize(tree: ast.Module) -> _Source:
    local: dict[str, _Entry] = {}
    bindings: list[ast.stmt] = []
    for stmt in _flatten(tree.body):
        if isinstance(stmt, ast.ClassDef):
            local.setdefault(stmt.name, _class_entry(stmt))
        elif isinstance(stmt, _FunctionNode):
            local.setdefault(stmt.name, _function_entry(stmt, method=False))
        elif isinstance(stmt, ast.Import | ast.ImportFrom) or (
            isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Attribute)
        ):
            bindings.append(stmt)
    return _Source(ast.get_docstring(tree) or "", _literal_all(tree), local, tuple(bindings))


def _read_source(path: Path) -> bytes:
    return path.read_bytes()


def _is_extension(name: str) -> bool:
    """Whether ``name`` is a built-in or extension module of this Python (never imports)."""
    if "." in name or name in _NO_IMPORT:
        return False
    if name in sys.builtin_module_names:
        return True
    spec = find_spec(name)  # for a top-level name this imports nothing
    return (
        spec is not None
        and isinstance(spec.loader, ExtensionFileLoader)
        and _is_stdlib_file(spec.origin)
    )


def _import_extension(name: str) -> ModuleType | None:
    """Imports a top-level built-in or extension module that belongs to this Python."""
    if not _is_extension(name):
        return None
    module = import_module(name)
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None)
    if origin == "built-in" or (
        isinstance(getattr(spec, "loader", None), ExtensionFileLoader) and _is_stdlib_file(origin)
    ):
        return module
    return None


def _is_stdlib_file(origin: object) -> bool:
    if not isinstance(origin, str):
        return False
    path = Path(origin).resolve()
    if {"site-packages", "dist-packages"} & set(path.parts):
        return False
    roots = {Path(sys.base_prefix).resolve(), Path(sys.base_exec_prefix).resolve()}
    return any(path.is_relative_to(root) for root in roots)


def _flatten(body: Sequence[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at the top level of a body, including inside ``if`` and ``try``
    (platform and fallback definitions), but not inside functions or classes."""
    for stmt in body:
        if isinstance(stmt, ast.If):
            yield from _flatten(stmt.body)
            yield from _flatten(stmt.orelse)
        elif isinstance(stmt, _TRY_NODES):  # ast.Try or ast.TryStar, same fields
            handlers: list[ast.ExceptHandler] = getattr(stmt, "handlers", [])
            yield from _flatten(getattr(stmt, "body", []))
            for handler in handlers:
                yield from _flatten(handler.body)
            yield from _flatten(getattr(stmt, "orelse", []))
            yield from _flatten(getattr(stmt, "finalbody", []))
        else:
            yield stmt


def _literal_all(tree: ast.Module) -> list[str] | None:
    """``__all__`` when every assignment to it is a literal list of strings, else None."""
    names: list[str] | None = None
    for stmt in _flatten(tree.body):
        value: ast.expr | None = None
        extend = False
        if isinstance(stmt, ast.Assign | ast.AnnAssign):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if not any(_mentions_all(t) for t in targets):
                continue
            if not (len(targets) == 1 and isinstance(targets[0], ast.Name)):
                return None
            value = stmt.value
        elif isinstance(stmt, ast.AugAssign) and _mentions_all(stmt.target):
            if not isinstance(stmt.op, ast.Add):
                return None
            value, extend = stmt.value, True
        elif (
            isinstance(stmt, ast.Expr)
            and isinstance(call := stmt.value, ast.Call)
            and isinstance(func := call.func, ast.Attribute)
            and _mentions_all(func.value)
        ):
            if func.attr not in ("extend", "append") or len(call.args) != 1:
                return None
            arg = call.args[0]
            value = ast.List(elts=[arg], ctx=ast.Load()) if func.attr == "append" else arg
            extend = True
        else:
            continue
        found = _literal_strings(value)
        if found is None or (extend and names is None):
            return None
        names = [*names, *found] if extend and names is not None else found
    return list(dict.fromkeys(names)) if names is not None else None


def _mentions_all(node: ast.expr) -> bool:
    return any(isinstance(n, ast.Name) and n.id == "__all__" for n in ast.walk(node))


def _literal_strings(node: ast.expr | None) -> list[str] | None:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _resolve_import(module: str, is_package: bool, stmt: ast.ImportFrom) -> str | None:
    """The absolute name of the module a ``from ... import`` reads from."""
    if not stmt.level:
        return stmt.module
    package = module.split(".") if is_package else module.split(".")[:-1]
    up = stmt.level - 1
    if up >= len(package):
        return None  # beyond the top-level package
    base = package[: len(package) - up]
    return ".".join([*base, stmt.module]) if stmt.module else ".".join(base)


def _function_entry(node: _FunctionNode, *, method: bool) -> _Entry:
    decorators = {_decorator_name(d) for d in node.decorator_list}
    doc = ast.get_docstring(node) or ""
    if method and decorators & _PROPERTY_DECORATORS:
        return _Entry(node.name, "property", "", doc)
    signature = _format_arguments(node.args, drop_first=method and "staticmethod" not in decorators)
    if node.returns is not None:
        signature += f" -> {ast.unparse(node.returns)}"
    kind = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return _Entry(node.name, kind, signature, doc)


def _class_entry(node: ast.ClassDef) -> _Entry:
    init: _FunctionNode | None = None
    methods: dict[str, _Entry] = {}
    for stmt in _flatten(node.body):
        if not isinstance(stmt, _FunctionNode):
            continue
        if stmt.name == "__init__" and init is None:
            init = stmt
        if not stmt.name.startswith("_") and stmt.name not in methods:
            methods[stmt.name] = _function_entry(stmt, method=True)
    bases = tuple(ast.unparse(b) for b in node.bases if ast.unparse(b) != "object") + tuple(
        f"{k.arg}={ast.unparse(k.value)}" if k.arg else f"**{ast.unparse(k.value)}"
        for k in node.keywords
    )
    signature = _format_arguments(init.args, drop_first=True) if init is not None else ""
    return _Entry(
        node.name, "class", signature, ast.get_docstring(node) or "", bases, tuple(methods.values())
    )


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _format_arguments(args: ast.arguments, *, drop_first: bool) -> str:
    posonly, regular, defaults = list(args.posonlyargs), list(args.args), list(args.defaults)
    if drop_first and (posonly or regular):
        if len(defaults) == len(posonly) + len(regular):
            defaults = defaults[1:]  # the dropped self/cls had a default too
        if posonly:
            posonly = posonly[1:]
        else:
            regular = regular[1:]
    trimmed = ast.arguments(
        posonlyargs=posonly,
        args=regular,
        vararg=args.vararg,
        kwonlyargs=args.kwonlyargs,
        kw_defaults=args.kw_defaults,
        kwarg=args.kwarg,
        defaults=defaults,
    )
    return f"({ast.unparse(trimmed)})"


def _own_doc(obj: object) -> str:
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _object_namespace(module: ModuleType) -> dict[str, _Entry]:
    """The classes and routines of an extension module, sorted by name."""
    result: dict[str, _Entry] = {}
    namespace = vars(module)
    for name, current in sorted(namespace.items()):
        # sys keeps the originals of the hooks a program may replace (sys.excepthook,
        # sys.unraisablehook, ...) as __excepthook__, ...: document those, not whatever
        # this process installed (a test runner's hook, say).
        original = namespace.get(f"__{name}__")
        obj = original if inspect.isroutine(original) else current
        if inspect.isfunction(obj) or inspect.ismethod(obj):
            continue  # Python code stored in a C module's namespace at run time
        try:
            entry = _object_entry(name, obj)
        except Exception as exc:
            _log.debug("skipping %s.%s: %r", module.__name__, name, exc)
            continue
        if entry is not None:
            result[name] = entry
    return result


def _object_entry(name: str, obj: object) -> _Entry | None:
    if inspect.isclass(obj):
        methods: list[_Entry] = []
        for member_name, member in sorted(vars(obj).items()):
            if member_name.startswith("_"):
                continue
            if inspect.isroutine(member):
                bound = getattr(obj, member_name, member)
                methods.append(
                    _Entry(member_name, "def", _signature(bound, method=True), _own_doc(member))
                )
            elif inspect.isdatadescriptor(member) and _own_doc(member):
                methods.append(_Entry(member_name, "property", "", _own_doc(member)))
        bases = tuple(
            b.__qualname__ if b.__module__ == "builtins" else f"{b.__module__}.{b.__qualname__}"
            for b in obj.__bases__
            if b is not object
        )
        return _Entry(name, "class", _signature(obj), _own_doc(obj), bases, tuple(methods))
    if inspect.isroutine(obj):
        return _Entry(name, "def", _signature(obj), _own_doc(obj))
    return None


def _signature(obj: object, *, method: bool = False) -> str:
    try:
        signature = inspect.signature(obj)  # type: ignore[arg-type]
    except Exception:  # no text signature (ValueError), not introspectable (TypeError), ...
        return ""
    params = list(signature.parameters.values())
    if method and params and params[0].name == "self":
        signature = signature.replace(parameters=params[1:])
    return _ADDRESS.sub("", str(signature))


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deepsearch_stream.corpus``: export the corpus and print its directory."""
    parser = argparse.ArgumentParser(
        prog="python -m deepsearch_stream.corpus",
        description="Export the Python documentation shipped with this interpreter as a "
        "markdown corpus for the DeepSearch local engine, and print its directory.",
    )
    parser.add_argument(
        "--dest",
        type=Path,
        default=None,
        help=f"corpus directory (default: {default_corpus_dir()})",
    )
    parser.add_argument(
        "--force", action="store_true", help="export again even if an up-to-date corpus exists"
    )
    args = parser.parse_args(argv)
    print(export_python_docs(args.dest, force=args.force))
    return 0


if __name__ == "__main__":
    sys.exit(main())
