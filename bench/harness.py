"""``bench/run``: the four streaming stacks measured side by side in one run.

(a) the seed's endpoint in pure Python on sse-starlette, (b) the same on FastAPI's native
SSE, (c) this project's FastAPI service on the core, (d) this project's axum server. Each
runs as its own process on loopback and is driven by ``bench/loadgen`` (Rust) through
the routes of ``bench/CONTRACT.md``. Server RSS and CPU come from ``/proc``.

Measurements: 1 one stream as fast as the client reads, 2 idle streams with heartbeats,
3 a slow consumer, 4 cancellation, 5 DeepSearch fan-out, 6 the loopback ceiling. Results
go to ``docs/BENCHMARKS.md`` (between ``<!-- bench_run:start/end -->``), charts to
``docs/bench/*.png``, raw figures to ``docs/bench/bench_run.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from common import cpu_model

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
LOADGEN = TARGET / "release" / "loadgen"
AXUM = TARGET / "release" / "deepsearch-server"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAYLOAD = 200

CORPUS = {
    "tokio.md": "<!-- url: https://tokio.rs/ -->\n# Tokio\n\n"
    "Tokio is an asynchronous runtime for the Rust programming language.\n",
    "udp.md": "<!-- url: https://net.example/udp -->\n# UDP\n\n"
    "UDP is a connectionless transport protocol without delivery guarantees.\n",
}


@dataclass(frozen=True)
class Profile:
    name: str
    stream_seconds: float  # target length of one throughput run
    stream_rounds: int
    idle_streams: tuple[int, ...]
    heartbeat: float
    idle_hold: float
    slow_count: int
    slow_seconds: float
    read_interval_ms: float
    cancel_trials: int
    flood_trials: int
    fanout_rounds: int


QUICK = Profile("quick", 0.4, 3, (1000,), 2.0, 5.0, 60_000, 3.0, 20.0, 5, 3, 2)
FULL = Profile("full", 1.5, 5, (1000, 5000, 10000), 10.0, 23.0, 200_000, 8.0, 20.0, 20, 5, 5)


# ---- stacks and server processes ----------------------------------------------------


@dataclass
class Stack:
    key: str
    label: str
    argv: list[str] | None
    status: str = "ok"
    env: dict[str, str] = field(default_factory=dict)
    only: tuple[str, ...] = ()  # the measurements it takes part in; empty: all

    @property
    def ok(self) -> bool:
        return self.argv is not None and self.status == "ok"

    def runs(self, measurement: str) -> bool:
        return self.ok and (not self.only or measurement in self.only)


def stacks(heartbeat: float, corpus: Path, cache: Path, wanted: Sequence[str]) -> list[Stack]:
    common = ["--host", "127.0.0.1", "--port", "0", "--heartbeat", f"{heartbeat:g}"]
    core = [
        "--corpus",
        str(corpus),
        "--cache-dir",
        str(cache),
        "--engines",
        "local",
        "--max-streams",
        "20000",
        "--bench-routes",
    ]
    peers = ROOT / "bench" / "peers"
    out = [
        Stack(
            "a",
            "seed endpoint, pure Python, sse-starlette",
            [PY, str(peers / "seed_sse_starlette.py"), *common, "--log-level", "warning"],
        ),
        Stack(
            "b",
            "seed endpoint, pure Python, fastapi.sse",
            [PY, str(peers / "seed_fastapi_sse.py"), *common, "--log-level", "warning"],
        ),
        Stack(
            "c",
            "this project: FastAPI service on the core",
            [PY, "-m", "deepsearch_stream", "serve", *common, *core, "--log-level", "warning"],
        ),
        Stack(
            "d", "this project: axum server", [str(AXUM), *common, *core], env={"RUST_LOG": "warn"}
        ),
        Stack(
            "u",
            "reference: bare ASGI app on uvicorn, one heartbeat task (idle streams only)",
            [PY, str(peers / "asgi_floor.py"), *common, "--log-level", "warning"],
            only=("idle",),
        ),
    ]
    for s in out:
        if s.key not in wanted:
            s.status = "not selected"
    return out


class Server:
    """One stack as a process; ``url`` once it printed ``listening on http://...``."""

    def __init__(self, stack: Stack, logdir: Path) -> None:
        assert stack.argv is not None
        self.stack = stack
        self.log = (logdir / f"server-{stack.key}.log").open("ab")
        self.proc = subprocess.Popen(
            stack.argv,
            stdout=subprocess.PIPE,
            stderr=self.log,
            env={**os.environ, **stack.env},
            cwd=ROOT,
        )
        self.url = ""

    def wait_ready(self, timeout: float = 90.0) -> None:
        assert self.proc.stdout is not None
        found: list[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:  # keeps draining after the line: never blocks the server
                line = raw.decode(errors="replace")
                if not found and "listening on http://" in line:
                    found.append(line.rsplit(" ", 1)[-1].strip())

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"({self.stack.key}) did not start; see its log")
            time.sleep(0.02)
        self.url = found[0]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kb(self) -> int:
        return _status_kb(self.pid, "VmRSS")

    def hwm_kb(self) -> int:
        return _status_kb(self.pid, "VmHWM")

    def reset_hwm(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            return True
        except OSError:
            return False

    def cpu_s(self) -> float:
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return float("nan")
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def threads(self) -> int:
        try:
            return len(os.listdir(f"/proc/{self.pid}/task"))
        except OSError:
            return 0

    def stop(self, grace: float = 5.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # e.g. (a) still spinning on a producer nobody reads
                self.proc.wait()
        self.log.close()


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@contextmanager
def serving(stack: Stack, logdir: Path, grace: float = 5.0) -> Iterator[Server]:
    server = Server(stack, logdir)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop(grace)


class Sampler:
    """Samples a server's RSS (and CPU) every ``every`` seconds in a thread."""

    def __init__(self, server: Server, every: float) -> None:
        self.server, self.every = server, every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self.t0, self.server.rss_kb()))
            self._stop.wait(self.every)

    def start(self) -> Sampler:
        self.t0 = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> list[tuple[float, int]]:
        self._stop.set()
        self._thread.join()
        return self.samples


# ---- the load client ----------------------------------------------------------------


class LoadgenError(RuntimeError):
    pass


COMMANDS: dict[str, str] = {}  # one example command line per measurement, for the report


def loadgen(
    cmd: str,
    args: dict[str, Any],
    *,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    timeout: float = 300.0,
    label: str | None = None,
) -> dict[str, Any]:
    argv = [str(LOADGEN), cmd]
    for name, value in args.items():
        if value is True:
            argv.append(f"--{name}")
        elif value is not None and value is not False:
            argv += [f"--{name}", str(value)]
    if label:
        shown = [shlex.quote(a) if not a.startswith("http://") else "$URL" for a in argv[1:]]
        COMMANDS[label] = " ".join(["bench/loadgen", *shown])
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    result: dict[str, Any] = {}
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            obj = json.loads(line)
            if "event" in obj:
                if on_event:
                    on_event(obj)
            else:
                result = obj
        proc.wait()
    finally:
        timer.cancel()
    if not result or "error" in result:
        raise LoadgenError(f"loadgen {cmd}: {result.get('error', 'no result (killed?)')}")
    return result


def med(values: Sequence[float]) -> float:
    vals = [v for v in values if v == v]  # drop NaN
    return statistics.median(vals) if vals else float("nan")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- measurements -------------------------------------------------------------------


def measure_stream(stacks_: list[Stack], prof: Profile, logdir: Path) -> dict[str, Any]:
    """1 and 6: one stream as fast as the client reads; the same bytes through a socket."""
    live = [s for s in stacks_ if s.runs("stream")]
    servers: dict[str, Server] = {}
    try:
        for s in live:
            srv = Server(s, logdir)
            srv.wait_ready()
            servers[s.key] = srv
        counts: dict[str, int] = {}
        for key, srv in servers.items():
            loadgen("stream", {"url": srv.url, "count": 2000})  # warm-up
            pilot = 5_000 if key in "ab" else 100_000
            rate = loadgen("stream", {"url": srv.url, "count": pilot})["events_per_s"]
            counts[key] = int(min(max(rate * prof.stream_seconds, 5_000), 20_000_000))
        ceiling_rate = loadgen("ceiling", {"count": 2_000_000})["events_per_s"]
        counts["ceiling"] = int(min(max(ceiling_rate * prof.stream_seconds, 1e6), 50_000_000))
        runs: dict[str, list[dict[str, Any]]] = {k: [] for k in [*servers, "ceiling"]}
        keys = [*servers, "ceiling"]
        for r in range(prof.stream_rounds):
            order = keys[r % len(keys) :] + keys[: r % len(keys)]  # rotate: spread the noise
            for key in order:
                if key == "ceiling":
                    runs[key].append(loadgen("ceiling", {"count": counts[key]}, label="6 ceiling"))
                    continue
                srv = servers[key]
                cpu0 = srv.cpu_s()
                res = loadgen(
                    "stream", {"url": srv.url, "count": counts[key]}, label=f"1 stream ({key})"
                )
                res["server_cpu_s"] = srv.cpu_s() - cpu0
                if not res["complete"]:
                    raise LoadgenError(f"({key}) stream incomplete: {res}")
                runs[key].append(res)
            log(f"stream round {r + 1}/{prof.stream_rounds} done")
        parse = loadgen(
            "ceiling", {"count": counts["ceiling"], "parse": True}, label="6 client parse capacity"
        )
    finally:
        for srv in servers.values():
            srv.stop()
    out: dict[str, Any] = {"counts": counts, "client_parse_capacity": parse["events_per_s"]}
    for key, rs in runs.items():
        ev = [x["events"] for x in rs]
        out[key] = {
            "events_per_s": med([x["events_per_s"] for x in rs]),
            "events_per_s_all": [x["events_per_s"] for x in rs],
            "mb_per_s": med([x["mb_per_s"] for x in rs]),
            "client_cpu_us_per_event": med(
                [x["client_cpu_s"] * 1e6 / e for x, e in zip(rs, ev, strict=True)]
            ),
            "client_cpu_pct": med([x["client_cpu_pct"] for x in rs]),
            "events": ev[0],
        }
        if key != "ceiling":
            out[key]["server_cpu_us_per_event"] = med(
                [x["server_cpu_s"] * 1e6 / e for x, e in zip(rs, ev, strict=True)]
            )
            out[key]["wire_bytes_per_event"] = rs[0]["wire_bytes"] / ev[0]
        else:
            out[key]["writer_cpu_us_per_event"] = med(
                [x["writer_cpu_s"] * 1e6 / e for x, e in zip(rs, ev, strict=True)]
            )
            out[key]["frame_bytes"] = rs[0]["frame_bytes"]
    return out


def steady_rss(srv: Server, samples: int = 3) -> int:
    values = []
    for _ in range(samples):
        values.append(srv.rss_kb())
        time.sleep(0.1)
    return int(med(values))


def on_open(
    srv: Server, sampler: Sampler, at_open: dict[str, float]
) -> Callable[[dict[str, Any]], None]:
    """When every stream is open: note the server's CPU and start sampling its RSS."""

    def opened(_: dict[str, Any]) -> None:
        at_open["cpu"] = srv.cpu_s()
        at_open["t"] = time.monotonic()
        sampler.start()

    return opened


def measure_idle(stacks_: list[Stack], prof: Profile, logdir: Path) -> dict[str, Any]:
    """2: N idle streams: memory per stream, time to open, heartbeat jitter."""
    out: dict[str, Any] = {}
    for n in prof.idle_streams:
        for s in [s for s in stacks_ if s.runs("idle")]:
            with serving(s, logdir) as srv:
                if not s.only:
                    loadgen("stream", {"url": srv.url, "count": 1000})
                loadgen("idle", {"url": srv.url, "streams": 20, "hold": 0.3, "period": 60})
                time.sleep(0.5)
                base = steady_rss(srv)
                sampler = Sampler(srv, 0.25)
                at_open: dict[str, float] = {}
                opened = on_open(srv, sampler, at_open)
                try:
                    res = loadgen(
                        "idle",
                        {
                            "url": srv.url,
                            "streams": n,
                            "hold": prof.idle_hold,
                            "period": prof.heartbeat,
                            "open-timeout": 180,
                        },
                        on_event=opened,
                        timeout=prof.idle_hold + 400,
                        label=f"2 idle N={n}",
                    )
                except LoadgenError as e:
                    out.setdefault(s.key, {})[str(n)] = {"error": str(e)}
                    log(f"idle ({s.key}) N={n}: {e}")
                    continue
                hold_cpu = srv.cpu_s() - at_open.get("cpu", float("nan"))
                hold_s = time.monotonic() - at_open.get("t", time.monotonic())
                samples = sampler.stop() if at_open else []
                threads = srv.threads()
            rss_hold = med([kb for _, kb in samples]) if samples else float("nan")
            opened_n = max(res["opened"], 1)
            out.setdefault(s.key, {})[str(n)] = {
                "opened": res["opened"],
                "open_errors": res["open_errors"],
                "errors": res["errors"],
                "open_s": res["open_s"],
                "open_ms_p99": res["open_ms"]["p99"],
                "rss_base_kb": base,
                "rss_hold_kb": rss_hold,
                "kib_per_stream": (rss_hold - base) / opened_n,
                "jitter_ms_p50": res["jitter_ms"]["p50"],
                "jitter_ms_p99": res["jitter_ms"]["p99"],
                "jitter_ms_max": res["jitter_ms"]["max"],
                "jitter_quantiles": res["jitter_ms"]["quantiles"],
                "intervals": res["jitter_ms"]["n"],
                "jitter_after_open_ms_p50": res["jitter_after_open_ms"]["p50"],
                "jitter_after_open_ms_p99": res["jitter_after_open_ms"]["p99"],
                "jitter_after_open_ms_max": res["jitter_after_open_ms"]["max"],
                "intervals_after_open": res["jitter_after_open_ms"]["n"],
                "streams_without_heartbeat": res["streams_without_heartbeat"],
                "closed_early": res["closed_early"],
                "server_cpu_pct_hold": 100 * hold_cpu / hold_s if hold_s > 0 else float("nan"),
                "server_threads": threads,
                "client_cpu_s": res["client_cpu_s"],
            }
            log(
                f"idle ({s.key}) N={n}: {out[s.key][str(n)]['kib_per_stream']:.1f} KiB/stream, "
                f"open {res['open_s']:.2f}s, jitter p99 {res['jitter_ms']['p99']} ms"
            )
    return out


def measure_slow(stacks_: list[Stack], prof: Profile, logdir: Path) -> dict[str, Any]:
    """3: a reader far slower than the producer: peak RSS and lost messages."""
    out: dict[str, Any] = {}
    for s in [s for s in stacks_ if s.runs("slow")]:
        with serving(s, logdir) as srv:
            loadgen("stream", {"url": srv.url, "count": 1000})
            time.sleep(0.3)
            base = steady_rss(srv)
            hwm_reset = srv.reset_hwm()
            sampler = Sampler(srv, 0.05).start()
            res = loadgen(
                "slow",
                {
                    "url": srv.url,
                    "count": prof.slow_count,
                    "read-interval-ms": prof.read_interval_ms,
                    "slow-seconds": prof.slow_seconds,
                    "payload-bytes": PAYLOAD,
                },
                timeout=prof.slow_seconds + 300,
                label="3 slow",
            )
            samples = sampler.stop()
            peak = max([kb for _, kb in samples] + ([srv.hwm_kb()] if hwm_reset else []))
        producer = res.get("producer_at_slow_end") or {}
        out[s.key] = {
            "rss_base_kb": base,
            "rss_peak_kb": peak,
            "growth_kib": peak - base,
            "timeline": [(round(t, 3), kb - base) for t, kb in samples],
            "received": res["received"],
            "count": res["count"],
            "missing": res["missing"],
            "out_of_order": res["out_of_order"],
            "lossless": res["lossless"],
            "slow_read": res["slow_read"],
            "slow_seconds": res["slow_seconds"],
            "producer_sent_at_slow_end": producer.get("sent"),
            "reader_events_per_s": res["reader_events_per_s"],
        }
        log(f"slow ({s.key}): +{peak - base} KiB peak, lossless={res['lossless']}")
    return out


def measure_cancel(
    stacks_: list[Stack], prof: Profile, logdir: Path, rates: dict[str, float]
) -> dict[str, Any]:
    """4: disconnect, then ask the server when its producer stopped."""
    out: dict[str, Any] = {}
    for s in [s for s in stacks_ if s.runs("cancel")]:
        rate = rates.get(s.key) or (30_000.0 if s.key in "ab" else 500_000.0)
        flood_count = int(max(20_000, rate * 3))  # about 3 s of work if nothing stops it
        entry: dict[str, Any] = {"flood_count": flood_count}
        with serving(s, logdir, grace=3.0) as srv:
            for mode, args in (
                ("paced", {"interval-ms": 10, "trials": prof.cancel_trials, "timeout-s": 5}),
                (
                    "flood",
                    {
                        "interval-ms": 0,
                        "count": flood_count,
                        "trials": prof.flood_trials,
                        "timeout-s": round(flood_count / rate * 3 + 5),
                    },
                ),
            ):
                try:
                    res = loadgen(
                        "cancel",
                        {"url": srv.url, "payload-bytes": PAYLOAD, **args},
                        timeout=600,
                        label=f"4 cancel, {mode} ({s.key})",
                    )
                except LoadgenError as e:
                    entry[mode] = {"error": str(e)}
                    continue
                lat = res["latency_ms"]
                entry[mode] = {
                    "p50": lat["p50"],
                    "p99": lat["p99"],
                    "max": lat["max"],
                    "n": lat["n"],
                    "timeouts": res["timeouts"],
                    "reasons": res["reasons"],
                    "latencies": [r.get("latency_ms") for r in res["rows"]],
                }
        out[s.key] = entry
        log(
            f"cancel ({s.key}): paced p99 {entry.get('paced', {}).get('p99')} ms, "
            f"flood p99 {entry.get('flood', {}).get('p99')} ms"
        )
    return out


def measure_fanout(prof: Profile) -> dict[str, Any]:
    """5: one DeepSearch round, 5 sub-queries on 3 engines answering after 200 ms."""
    argv = [PY, str(ROOT / "bench" / "fanout.py"), "--rounds", str(prof.fanout_rounds)]
    COMMANDS["5 fan-out"] = shlex.join(["python", "bench/fanout.py", *argv[2:]])
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"fanout failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# ---- machine, build -----------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    mem_kb = 0
    try:
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        pass

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    pkgs = {}
    for name in ("uvicorn", "fastapi", "starlette", "sse-starlette", "h11", "pydantic"):
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = "missing"
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "mem_gib": round(mem_kb / 2**20, 1),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "rustc": version(["rustc", "--version"]),
        "packages": pkgs,
        "nofile": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "somaxconn": _read_int("/proc/sys/net/core/somaxconn"),
        "loadavg_start": os.getloadavg(),
    }


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by every process


def build(no_build: bool) -> dict[str, str]:
    """Builds loadgen and, when this branch has it, the axum binary."""
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET)}
    notes: dict[str, str] = {}
    if not no_build:
        log("cargo build --release (bench/loadgen)")
        subprocess.run(
            ["cargo", "build", "--release", "-q", "--manifest-path", "bench/loadgen/Cargo.toml"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        log("cargo build --release --bin deepsearch-server")
        done = subprocess.run(
            ["cargo", "build", "--release", "-q", "--bin", "deepsearch-server"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            if "no bin target named" in done.stderr:
                notes["d"] = "not built: this branch has no `deepsearch-server` binary"
            else:
                last = (done.stderr.strip().splitlines() or ["?"])[-1][:200]
                notes["d"] = f"not built: `cargo build --bin deepsearch-server` failed ({last})"
    if not LOADGEN.is_file():
        raise SystemExit(f"{LOADGEN} is missing: run without --no-build")
    if "d" not in notes:
        if not AXUM.is_file():
            notes["d"] = "not built: no target/release/deepsearch-server"
        elif "--bench-routes" not in _help([str(AXUM), "--help"]):
            notes["d"] = "built, but without `--bench-routes` (bench/CONTRACT.md)"
    if "--bench-routes" not in _help([PY, "-m", "deepsearch_stream", "serve", "--help"]):
        notes["c"] = "no `--bench-routes` in `deepsearch-stream serve` (bench/CONTRACT.md)"
    return notes


def _help(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=ROOT).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ""


# ---- main ---------------------------------------------------------------------------

MEASUREMENTS = ("stream", "idle", "slow", "cancel", "fanout")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, well under 2 minutes")
    parser.add_argument(
        "--stacks", default="a,b,c,d,u", help="comma-separated subset of a,b,c,d,u (u: floor)"
    )
    parser.add_argument(
        "--only", default=",".join(MEASUREMENTS), help="comma-separated: " + ",".join(MEASUREMENTS)
    )
    parser.add_argument("--no-build", action="store_true", help="use the binaries as built")
    parser.add_argument("--write", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print JSON, write nothing")
    parser.add_argument("--charts", type=Path, default=ROOT / "docs" / "bench")
    parser.add_argument("--json-out", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--idle-streams",
        help="comma-separated stream counts for the idle measurement (default: the profile's)",
    )
    args = parser.parse_args(argv)
    prof = QUICK if args.quick else FULL
    if args.idle_streams:
        counts = tuple(int(n) for n in args.idle_streams.split(",") if n.strip())
        prof = replace(prof, idle_streams=counts)
    only = [m.strip() for m in args.only.split(",") if m.strip()]
    started = time.monotonic()
    raise_nofile()
    info = machine()
    notes = build(args.no_build)
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        work = Path(tmp)
        corpus = work / "corpus"
        corpus.mkdir()
        for name, text in CORPUS.items():
            (corpus / name).write_text(text)
        logdir = Path(os.environ.get("BENCH_LOG_DIR") or work)
        all_stacks = stacks(prof.heartbeat, corpus, work / "cache", args.stacks.split(","))
        for s in all_stacks:
            if s.key in notes and s.status == "ok":
                s.status = notes[s.key]
        results: dict[str, Any] = {
            "profile": prof.__dict__,
            "machine": info,
            "stacks": {
                s.key: {"label": s.label, "status": s.status, "argv": s.argv} for s in all_stacks
            },
        }
        log("stacks: " + ", ".join(f"({s.key}) {s.status}" for s in all_stacks))
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("stream", lambda: measure_stream(all_stacks, prof, logdir)),
            ("idle", lambda: measure_idle(all_stacks, prof, logdir)),
            ("slow", lambda: measure_slow(all_stacks, prof, logdir)),
            (
                "cancel",
                lambda: measure_cancel(
                    all_stacks,
                    prof,
                    logdir,
                    {
                        k: v["events_per_s"]
                        for k, v in results.get("stream", {}).items()
                        if isinstance(v, dict) and "events_per_s" in v
                    },
                ),
            ),
            ("fanout", lambda: measure_fanout(prof)),
        ]
        for name, step in steps:
            if name not in only:
                continue
            t0 = time.monotonic()
            log(f"measurement: {name}")
            try:
                results[name] = step()
            except (LoadgenError, RuntimeError, subprocess.SubprocessError) as e:
                results[name] = {"error": str(e)}
                log(f"{name} failed: {e}")
            results.setdefault("seconds", {})[name] = time.monotonic() - t0
    info["loadavg_end"] = os.getloadavg()
    results["commands"] = dict(COMMANDS)
    given = list(argv if argv is not None else sys.argv[1:])
    results["command"] = shlex.join(["bench/run", *given])
    results["total_seconds"] = time.monotonic() - started
    results["date"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=1))
    if args.no_write:
        print(json.dumps(results, indent=1))
        return 0
    from report import write_report  # matplotlib is only needed from here on

    write_report(results, args.write, args.charts)
    log(f"done in {results['total_seconds']:.0f} s; wrote {args.write} and {args.charts}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
