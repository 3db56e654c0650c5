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

Modules: :mod:`.locations` (the cache directory rule), :mod:`.export` (stamp and atomic
install), :mod:`.render` (markdown), :mod:`.stdlib` (reading what the standard library
documents), :mod:`.cli` (the command line).
"""

from .cli import main
from .export import FORMAT_VERSION, STAMP_FILE, export_python_docs
from .locations import CACHE_DIR_ENV, CORPUS_DIR_NAME, default_cache_dir, default_corpus_dir

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
