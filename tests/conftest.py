from __future__ import annotations

import json
import re

FRAME_SPLIT = re.compile(rb"(?<=\n\n)")


def frames(blob: bytes) -> list[bytes]:
    """Split SSE bytes into whole frames (each ends with a blank line)."""
    out = [f for f in FRAME_SPLIT.split(blob) if f]
    assert all(f.endswith(b"\n\n") for f in out), out
    return out


def message(frame: bytes) -> tuple[int, dict]:
    """Parse an `id: n` + `data: {json}` frame into (id, envelope)."""
    head, data, rest = frame.split(b"\n", 2)
    assert head.startswith(b"id: "), frame
    assert data.startswith(b"data: "), frame
    assert rest == b"\n", frame
    return int(head[4:]), json.loads(data[6:])
