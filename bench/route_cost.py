#!/usr/bin/env python3
"""The real search route's cost: server CPU per delivered event of ``POST /deepsearch``
on the offline default corpus, beside ``POST /bench/stream`` on the same server, for one
or more builds of the axum binary side by side in one run.

    python bench/route_cost.py --server before=/tmp/ds-before \
        --server after=target/release/deepsearch-server --write docs/BENCHMARKS.md

Each server is started with ``--bench-routes``; the servers take turns (``--rounds``)
so a noisy machine affects them alike. CPU is the server process's user + system time
(``/proc/PID/stat``) across the searches, divided by the data events the client read
(heartbeats and ``[DONE]`` not counted). The client reads every byte, so nothing the
server sends is left in a buffer when the CPU is read.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_model, write_section

# Questions the default Python-docs corpus answers: the route does its full work
# (plan, rounds, answer with citations) for each.
QUESTIONS = (
    "How do I run a subprocess and capture its output?",
    "What does dict.setdefault do?",
    "How do I create a bounded asyncio queue?",
    "What does functools.lru_cache do?",
    "How do I read a file line by line?",
    "What does the with statement do?",
    "How do I parse command line arguments?",
    "What does str.join do?",
)
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Server:
    def __init__(self, label: str, binary: str, extra: list[str]) -> None:
        self.label = label
        args = [binary, "--host", "127.0.0.1", "--port", "0", "--bench-routes"]
        args += ["--max-streams", "20000", *extra]
        env = {**os.environ, "RUST_LOG": "warn"}
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{label}: server exited before listening")
            if "listening on http://" in line:
                hostport = line.split("listening on http://", 1)[1].split()[0].rstrip("/")
                self.host, port = hostport.rsplit(":", 1)
                self.port = int(port)
                return
        raise RuntimeError(f"{label}: no listening line within 120 s")

    def post(self, conn: http.client.HTTPConnection, path: str, body: dict) -> tuple[int, int]:
        """Reads the whole SSE answer; returns (data events, bytes)."""
        conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"{self.label} {path}: HTTP {resp.status}: {raw[:200]!r}")
        events = 0
        for frame in raw.split(b"\n\n"):
            for line in frame.split(b"\n"):
                if line.startswith(b"data: ") and line not in (b"data: [DONE]", b"data: heartbeat"):
                    events += 1
                    break
        return events, len(raw)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def measure(server: Server, searches: int, max_loop: int) -> dict[str, float]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=120)
    for q in QUESTIONS[:2]:  # warm-up: index opened, caches filled
        server.post(conn, "/deepsearch", {"query": q, "max_loop": max_loop})
    events = nbytes = 0
    start_cpu, start = cpu_seconds(server.proc.pid), time.perf_counter()
    for i in range(searches):
        q = QUESTIONS[i % len(QUESTIONS)]
        e, b = server.post(conn, "/deepsearch", {"query": q, "max_loop": max_loop})
        events += e
        nbytes += b
    search_cpu = cpu_seconds(server.proc.pid) - start_cpu
    wall = time.perf_counter() - start
    # Twenty times as many events through the bench route (its cost per event is far
    # smaller, and CPU time is read in clock ticks), 200-byte payloads (about a
    # /deepsearch event's size), in streams of the same length as a search's.
    per_stream = max(1, events // searches)
    start_cpu = cpu_seconds(server.proc.pid)
    bench_events = 0
    for _ in range(20 * searches):
        e, _b = server.post(conn, "/bench/stream", {"count": per_stream, "payload_bytes": 200})
        bench_events += e
    bench_cpu = cpu_seconds(server.proc.pid) - start_cpu
    conn.close()
    return {
        "events_per_search": events / searches,
        "bytes_per_search": nbytes / searches,
        "search_cpu_us_per_event": search_cpu / events * 1e6,
        "search_cpu_ms_per_search": search_cpu / searches * 1e3,
        "searches_per_s": searches / wall,
        "bench_cpu_us_per_event": bench_cpu / bench_events * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--server", action="append", required=True, metavar="LABEL=BINARY")
    p.add_argument("--searches", type=int, default=300, help="searches per round (default 300)")
    p.add_argument("--rounds", type=int, default=3, help="turns per server (default 3)")
    p.add_argument("--max-loop", type=int, default=2, help="max_loop of each search (default 2)")
    p.add_argument("--write", type=Path, help="write the route_cost section of this file")
    p.add_argument("server_args", nargs="*", help="extra server flags after --")
    args = p.parse_args(argv)
    builds = [s.split("=", 1) for s in args.server]
    results: dict[str, list[dict[str, float]]] = {label: [] for label, _ in builds}
    for r in range(args.rounds):
        for label, binary in builds:
            server = Server(label, binary, args.server_args)
            try:
                results[label].append(measure(server, args.searches, args.max_loop))
            finally:
                server.stop()
            print(f"round {r + 1} {label}: {results[label][-1]}", file=sys.stderr)
    medians = {
        label: {k: statistics.median(run[k] for run in runs) for k in runs[0]}
        for label, runs in results.items()
    }
    lines = [
        "## The real route: `/deepsearch` beside `/bench/stream`\n",
        "Server CPU per delivered event (user + system time of the server process over the "
        f"searches, heartbeats and `[DONE]` not counted); {args.searches} sequential searches "
        f"per round (`max_loop` {args.max_loop}, the offline default corpus), then twenty "
        "times as many 200-byte events through `/bench/stream` in streams of the same "
        f"length; medians of {args.rounds} rounds, the builds taking turns. "
        f"{cpu_model()}, {os.cpu_count()} cores.\n",
        "```",
        "python bench/route_cost.py "
        + " ".join(f"--server {s}" for s in args.server)
        + f" --searches {args.searches} --rounds {args.rounds}",
        "```\n",
        "| build | events/search | bytes/search | CPU µs/event `/deepsearch` | CPU ms/search "
        "| searches/s (1 client) | CPU µs/event `/bench/stream` | route ÷ bench |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, m in medians.items():
        ratio = m["search_cpu_us_per_event"] / m["bench_cpu_us_per_event"]
        lines.append(
            f"| {label} | {m['events_per_search']:.1f} | {m['bytes_per_search']:.0f} "
            f"| {m['search_cpu_us_per_event']:.1f} | {m['search_cpu_ms_per_search']:.2f} "
            f"| {m['searches_per_s']:.1f} | {m['bench_cpu_us_per_event']:.2f} | {ratio:.1f}× |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        write_section(args.write, "route_cost", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
