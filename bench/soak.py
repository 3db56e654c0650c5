"""``bench/run soak``: memory over repeated searches whose engine returns large results.

Each face (the FastAPI service and the axum server) runs as its own process, offline
model, one SearXNG-format engine: a keep-alive HTTP/1.1 stand-in on loopback answering
every query with ``--hits`` results of ``--hit-bytes`` of text each (about 400 KB of
JSON by default). A run is ``--searches`` searches, ``--concurrency`` at a time, each
read to ``[DONE]``; after each run the server idles ``--settle`` seconds and its RSS is
read from ``/proc``. The replay logs are capped (``--replay-max-bytes``), so what the
server holds beyond that cap, its engine connections and its allocator's leftovers, is
what the figures show: flat over runs once the first runs have warmed it up.

``--write docs/BENCHMARKS.md`` puts the table between ``<!-- soak:start -->`` and
``<!-- soak:end -->``; ``--check`` exits 1 when a face's last RSS is more than
``--max-growth`` above its RSS after the second run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
AXUM = TARGET / "release" / "deepsearch-server"
START, END = "<!-- soak:start -->", "<!-- soak:end -->"


class LargeEngine:
    """SearXNG's JSON API, keep-alive, every answer ``hits`` results long."""

    def __init__(self, hits: int, hit_bytes: int) -> None:
        self.requests = 0
        owner = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.requests += 1
                query = self.path.partition("q=")[2].partition("&")[0]
                body = owner.body(query)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.hits, self.hit_bytes = hits, hit_bytes
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def body(self, query: str) -> bytes:
        # Distinct per query, so nothing is deduplicated away before it is held.
        filler = ("tokio runtime async rust network " * (self.hit_bytes // 30 + 1))[
            : self.hit_bytes
        ]
        results = [
            {
                "title": f"Result {n} for {query}",
                "url": f"https://example.org/{query}/{n}",
                "content": f"{query} {n} {filler}",
            }
            for n in range(self.hits)
        ]
        return json.dumps({"query": query, "results": results}).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Face:
    name: str
    rss_mb: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    failed: int = 0


def command(face: str) -> list[str]:
    if face == "fastapi":
        return [sys.executable, "-m", "deepsearch_stream", "serve"]
    if not AXUM.is_file():
        sys.exit(f"bench/soak: {AXUM} missing: cargo build --release --bin deepsearch-server")
    return [str(AXUM)]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) / 1024 if found else float("nan")


def start(
    face: str, engine: LargeEngine, args: argparse.Namespace
) -> tuple[subprocess.Popen[bytes], str]:
    flags = [
        "--host", "127.0.0.1", "--port", "0", "--engines", "searxng",
        "--replay-max-bytes", str(args.replay_max_bytes),
        "--replay-max-stream-bytes", str(min(1 << 20, args.replay_max_bytes)),
        "--max-streams", str(max(64, args.concurrency * 2)),
    ]  # fmt: skip
    env = {**os.environ, "SEARXNG_URL": engine.url, "RUST_LOG": "warn"}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    proc = subprocess.Popen(
        command(face) + flags,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for raw in proc.stdout:
        line = raw.decode(errors="replace")
        if "listening on http://" in line:
            url = line.rsplit(" ", 1)[-1].strip()
            threading.Thread(target=lambda: proc.stdout.read(), daemon=True).start()  # type: ignore[union-attr]
            return proc, url
        if time.monotonic() > deadline:
            break
    proc.kill()
    sys.exit(f"bench/soak: the {face} server did not start")


def one_search(client: httpx.Client, url: str, n: int) -> bool:
    body = {"query": f"tokio soak {n}", "request_id": f"soak-{n}", "max_loop": 1}
    with client.stream("POST", url + "/deepsearch", json=body, timeout=120) as r:
        text = b"".join(r.iter_bytes())
    return r.status_code == 200 and text.rstrip().endswith(b"data: [DONE]")


def soak(face: str, args: argparse.Namespace) -> Face:
    engine = LargeEngine(args.hits, args.hit_bytes)
    proc, url = start(face, engine, args)
    result = Face(face)
    print(f"{face}: start {rss_mb(proc.pid):.1f} MB", flush=True)
    result.rss_mb.append(rss_mb(proc.pid))
    counter = 0
    try:
        with httpx.Client(limits=httpx.Limits(max_connections=args.concurrency)) as client:
            for run in range(1, args.runs + 1):
                began = time.monotonic()
                numbers = range(counter, counter + args.searches)
                counter += args.searches
                with ThreadPoolExecutor(args.concurrency) as pool:
                    ok = list(pool.map(lambda n: one_search(client, url, n), numbers))
                result.failed += ok.count(False)
                result.seconds.append(time.monotonic() - began)
                time.sleep(args.settle)
                result.rss_mb.append(rss_mb(proc.pid))
                print(
                    f"{face}: run {run}: {result.rss_mb[-1]:.1f} MB "
                    f"({result.seconds[-1]:.1f} s, {ok.count(False)} failed)",
                    flush=True,
                )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        engine.close()
    return result


def table(faces: list[Face], args: argparse.Namespace) -> str:
    runs = max(len(f.rss_mb) for f in faces) - 1
    head = "| face | start | " + " | ".join(f"run {n}" for n in range(1, runs + 1)) + " |"
    rule = "|---|---:|" + "---:|" * runs
    rows = [f"| {f.name} | " + " | ".join(f"{v:.0f}" for v in f.rss_mb) + " |" for f in faces]
    payload = args.hits * args.hit_bytes // 1024
    return "\n".join(
        [
            f"RSS in MB after each run of {args.searches} searches ({args.concurrency} at a "
            f"time, one round, offline model) against a keep-alive SearXNG stand-in whose "
            f"every answer holds {args.hits} results of {args.hit_bytes} bytes (~{payload} "
            f"KB); replay cap {args.replay_max_bytes >> 20} MB, RSS read {args.settle:g} s "
            "after each run. Command: `bench/run soak "
            f"--runs {args.runs} --searches {args.searches} --concurrency {args.concurrency}`.",
            "",
            head,
            rule,
            *rows,
        ]
    )


def write(path: Path, text: str) -> None:
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    title = "## Memory over repeated large-result searches (bench/soak.py)"
    block = f"{START}\n{title}\n\n{text}\n{END}"
    if START in doc and END in doc:
        doc = doc[: doc.index(START)] + block + doc[doc.index(END) + len(END) :]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc, encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--faces", default="axum,fastapi")
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--searches", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--hits", type=int, default=100)
    p.add_argument("--hit-bytes", type=int, default=4000)
    p.add_argument("--replay-max-bytes", type=int, default=8 << 20)
    p.add_argument("--settle", type=float, default=3.0)
    p.add_argument("--write", type=Path)
    p.add_argument("--check", action="store_true")
    p.add_argument("--max-growth", type=float, default=0.25)
    args = p.parse_args()
    faces = [soak(face, args) for face in args.faces.split(",")]
    text = table(faces, args)
    print(text)
    if args.write:
        write(args.write, text)
    bad = [f.name for f in faces if f.failed]
    if bad:
        print(f"bench/soak: searches failed on {bad}", file=sys.stderr)
        return 1
    if args.check:
        for f in faces:
            base = f.rss_mb[min(2, len(f.rss_mb) - 1)]
            if f.rss_mb[-1] > base * (1 + args.max_growth):
                print(
                    f"bench/soak: {f.name} grew from {base:.0f} to {f.rss_mb[-1]:.0f} MB",
                    file=sys.stderr,
                )
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
