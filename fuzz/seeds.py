"""Writes the seed inputs of the fuzz targets into a directory per target.

The seeds are the SSE spec vectors of tests/fixtures/sse/ and a few hand-written
requests, in each target's input format (see fuzz/src/*.rs). `make fuzz-seed`
runs this into fuzz/seeds/, then merges them into the committed corpus with
`cargo fuzz cmin`, which keeps only the inputs that add coverage.

    python3 fuzz/seeds.py OUT_DIR
"""

import hashlib
import json
import struct
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "sse"

# sse_decoder: [line limit][event limit][n][n chunk lengths][stream]; a limit byte
# of 128 or more picks the default limit.
DEFAULT_LIMIT = 255


def decoder_seeds() -> list[bytes]:
    vectors = json.loads((FIXTURES / "decode_vectors.json").read_text())["vectors"]
    streams = [
        bytes(v["input_bytes"]) if "input_bytes" in v else v["input"].encode() for v in vectors
    ]
    encoded = json.loads((FIXTURES / "encode_vectors.json").read_text())["events"]
    streams += [e["expected"].encode() for e in encoded]
    seeds = []
    for stream in streams:
        seeds.append(bytes([DEFAULT_LIMIT, DEFAULT_LIMIT, 0]) + stream)
        # Small limits and a few cuts, so that limits and splits are reached early.
        seeds.append(bytes([12, 24, 3, 1, 2, 3]) + stream)
    return seeds


def short_string(text: str) -> bytes:
    raw = text.encode()
    assert len(raw) < 256, text
    return bytes([len(raw)]) + raw


def roundtrip_seeds() -> list[bytes]:
    """One seed per encoder vector (accepted or refused), and one of all of them."""
    vectors = json.loads((FIXTURES / "encode_vectors.json").read_text())
    seeds = []
    for vector in vectors["events"] + vectors["errors"]:
        event = vector["event"]
        flags = 0
        fields = b""
        for bit, name in enumerate(["comment", "event", "id"]):
            if name in event:
                flags |= 1 << bit
                fields += short_string(event[name])
        if "retry" in event:
            flags |= 1 << 3
            fields += struct.pack("<Q", event["retry"])
        if "data" in event:
            flags |= 1 << 4
            fields += short_string(event["data"])
        seeds.append(bytes([flags]) + fields)
    seeds.append(b"".join(seeds))
    return seeds


# request_parser: [flags][content type][body]. Flags: bit 0 genie-tool, bit 1 small
# limits, bits 2-4 content type index (0 application/json, 7 read from the input).
DEEPSEARCH, GENIE, SMALL = 0, 1, 2
CUSTOM_CONTENT_TYPE = 7 << 2

REQUESTS = [
    (DEEPSEARCH, b'{"query": "rust async streams"}'),
    (DEEPSEARCH, b'{"query": "q", "request_id": "req-1:a.b_c", "max_loop": 10, "stream": false}'),
    (DEEPSEARCH, b'{"query": "q", "requestId": "r", "maxLoop": 2, "stream_mode": "intermediate"}'),
    (DEEPSEARCH, b'{"query": "q", "stream_mode": {"mode": "time", "time": 0.5}}'),
    (DEEPSEARCH, b'{"query": "q", "streamMode": {"mode": "token", "token": 7}}'),
    (DEEPSEARCH, b'{"query": "q", "search_engines": [" Local", "searxng", "LOCAL"]}'),
    (DEEPSEARCH, b'{"query": "q", "searchEngines": ["bing"]}'),
    (DEEPSEARCH, b'{"query": "\\u0000", "max_loop": 0}'),
    (DEEPSEARCH, b'{"query": " ", "max_loop": 2.5, "stream": "yes"}'),
    (DEEPSEARCH, b'{"query": null, "request_id": "a b"}'),
    (DEEPSEARCH, b"[1, 2]"),
    (DEEPSEARCH, b'{"query": "q"'),
    (DEEPSEARCH, b'\xff{"query": "q"}'),
    (GENIE, b'{"query": "q", "request_id": "r", "streamMode": {"mode": "general", "token": 3}}'),
    (GENIE, b'{"query": "q", "stream_mode": {"mode": "time"}, "max_loop": null}'),
    (GENIE, b'{"query": "q", "stream_mode": {"mode": "token", "token": 1000000}}'),
    (SMALL, b'{"query": "sixteen chars ok!"}'),
    (SMALL, b'{"query": "seventeen chars no"}'),
    (SMALL, b'{"query": "' + b"x" * 300 + b'"}'),
    (4 << 2, b'{"query": "q"}'),
    (1 << 2, b'{"query": "q"}'),
]


def request_seeds() -> list[bytes]:
    seeds = [bytes([flags]) + body for flags, body in REQUESTS]
    for content_type in [b"application/vnd.api+json", b"application/json ; q=1", b"json"]:
        seeds.append(
            bytes([CUSTOM_CONTENT_TYPE, len(content_type)]) + content_type + b'{"query": "q"}'
        )
    return seeds


def main() -> None:
    out = Path(sys.argv[1])
    targets = {
        "sse_decoder": decoder_seeds(),
        "sse_roundtrip": roundtrip_seeds(),
        "request_parser": request_seeds(),
    }
    for target, seeds in targets.items():
        directory = out / target
        directory.mkdir(parents=True, exist_ok=True)
        for seed in seeds:
            (directory / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
        print(f"{target}: {len(seeds)} seeds in {directory}")


if __name__ == "__main__":
    main()
