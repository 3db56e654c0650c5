"""Writing the corpus: build in a hidden sibling, stamp last, rename into place."""

from __future__ import annotations

import os
import shutil
import sys
import time
import uuid
from pathlib import Path

from .locations import default_corpus_dir
from .render import _render_corpus

#: Completion marker inside the corpus directory; hidden, so it is never indexed.
STAMP_FILE = ".stamp"

#: Bump whenever the exported files change for the same Python, so old exports are redone.
FORMAT_VERSION = 2

_STAMP_HEADER = "deepsearch-stream python-docs corpus"

#: Leftover build/replaced directories older than this are swept after an export.
_LEFTOVER_AGE_SECONDS = 3600.0

_INSTALL_ATTEMPTS = 50


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
