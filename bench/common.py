"""What the bench scripts share: the machine's CPU name and their section of
docs/BENCHMARKS.md (each script owns the part between its two markers)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["cpu_model", "write_section"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def write_section(path: Path, name: str, text: str) -> None:
    """Replaces the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in
    ``path`` with ``text``, or appends the marked section when it is not there yet."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text}{end}\n"
    doc = path.read_text() if path.exists() else "# Benchmarks\n\n"
    if start in doc and end in doc:
        head, rest = doc.split(start, 1)
        _, tail = rest.split(end, 1)
        doc = head + block + tail.lstrip("\n")
    else:
        doc = doc.rstrip("\n") + "\n\n" + block
    path.write_text(doc)
