"""The corpus as markdown: one file per public module, the pydoc topics by page."""

from __future__ import annotations

import ast
import logging
import os
import re
import sys
import threading
import warnings
from collections.abc import Iterator, Sequence
from importlib import import_module
from pathlib import Path
from urllib.parse import quote

from .stdlib import _IMPLEMENTATION, _Entry, _read_source, _Stdlib

_log = logging.getLogger(__name__)

# Top-level modules never exported: they run code on import (antigravity opens a browser,
# this prints), are applications or demos, or are tests.
_EXCLUDED = frozenset({"__main__", "antigravity", "idlelib", "test", "this", "turtledemo"})

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

_UNDERLINE = re.compile(r"([=*\-~^\"'`#+])\1{2,}")

_BLOCK_START = ("#", "```", "~~~")
# A documented name opening a topic entry: "str.join(iterable)", "object.__init__(self)".
_ENTRY = re.compile(r"(?:class )?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|[A-Za-z_]\w*(?=\())(\(.*\))?")


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
    """Topic text (reStructuredText rendered as plain text) with its section titles as
    ``###`` headings, so the local engine indexes each section (``__slots__`` of "Data
    model") as a passage of its own instead of one long topic."""
    # Neutralized first: the headings added here are the only structure the text keeps.
    source = _neutralize(text).splitlines()
    out: list[str] = []
    for i, line in enumerate(source):
        title = source[i - 1].strip() if i else ""
        if title and _UNDERLINE.fullmatch(line.strip()) and len(line.strip()) >= len(title):
            out[-1] = f"### {title}"  # drop the underline, make the title a heading
            continue
        entry = _ENTRY.fullmatch(line)
        text_below = source[i + 1 : i + 2] == [""] and source[i + 2 : i + 3] != []
        if entry and text_below and source[i + 2].startswith("   ") and source[i + 2].strip():
            # An entry documenting a name ("str.join(iterable)" above its indented text):
            # a heading of its own, so a question naming it finds this very entry.
            out += [f"#### {entry.group(1)}", "", "    " + line]
        else:
            out.append(line)
    return "\n".join(out)
