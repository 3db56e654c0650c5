"""Every envelope is byte-for-byte what json.dumps(..., ensure_ascii=False) writes."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import frames, message
from deepsearch_stream import EventStream

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=30,
)


async def encode(kind: str, data: object) -> bytes:
    s = EventStream("req")
    await s.send(kind, data)
    s.complete()
    out = b""
    async for chunk in s:
        out += chunk
    return frames(out)[0]


@settings(max_examples=300, deadline=None)
@given(kind=st.text(max_size=10), data=values)
def test_envelope_matches_json_dumps(kind: str, data: object) -> None:
    import asyncio

    frame = asyncio.run(encode(kind, data))
    _, env = message(frame)
    expected = json.dumps(
        {"type": kind, "data": data, "requestId": "req", "timestamp": env["timestamp"]},
        ensure_ascii=False,
    )
    assert frame == b"data: " + expected.encode() + b"\nid: 1\n\n"


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_repr_matches_python(x: float) -> None:
    import asyncio

    frame = asyncio.run(encode("f", x))
    assert b'"data": ' + repr(x).encode() + b", " in frame


def test_dict_keys_are_converted_like_json_dumps() -> None:
    import asyncio

    data = {1: "a", 2.5: "b", False: "c", None: "d", "s": "e"}
    frame = asyncio.run(encode("k", data))
    assert json.dumps(data, ensure_ascii=False).encode() in frame
