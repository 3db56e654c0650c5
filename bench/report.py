"""Turns ``bench/run`` results into the ``bench_run`` section of ``docs/BENCHMARKS.md``
and the PNG charts in ``docs/bench/``."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import matplotlib
from common import write_section

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parent.parent
COLORS = {
    "a": "#d62728",
    "b": "#ff7f0e",
    "c": "#1f77b4",
    "d": "#2ca02c",
    "u": "#bcbd22",
    "ceiling": "#7f7f7f",
}
NAMES = {
    "a": "(a) seed, sse-starlette",
    "b": "(b) seed, fastapi.sse",
    "c": "(c) FastAPI + core",
    "d": "(d) axum",
    "u": "(u) uvicorn floor",
    "ceiling": "loopback ceiling",
}
CANCEL_TARGET_MS = 100.0
JITTER_TARGET_MS = 100.0
IDLE_TARGET_KIB_D = 10.0
# The core's buffer cap (256 messages, at most 4 MiB) + a constant.
BOUND_BYTES = (4 << 20) + (4 << 20)


def fmt(x: Any, digits: int = 1, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and abs(x) >= 1000:
        return f"{x:,.0f}{unit}"
    if isinstance(x, int):
        return f"{x:,}{unit}"
    return f"{x:,.{digits}f}{unit}"


def ok(flag: bool | None) -> str:
    return "–" if flag is None else ("**met**" if flag else "**missed**")


# ---- charts -------------------------------------------------------------------------


def chart_stream(r: dict[str, Any], path: Path) -> None:
    keys = [k for k in ("a", "b", "c", "d", "ceiling") if isinstance(r.get(k), dict)]
    rates = [r[k]["events_per_s"] for k in keys]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 2]})
    bars = ax.barh([NAMES[k] for k in keys], rates, color=[COLORS[k] for k in keys])
    ax.set_xscale("log")
    ax.set_xlabel("events per second, one stream, 200-byte payload (log scale)")
    base = r.get("a", {}).get("events_per_s")
    for bar, k, v in zip(bars, keys, rates, strict=True):
        note = f"{v:,.0f}/s" + (f"  {v / base:.1f}× (a)" if base and k != "a" else "")
        ax.text(v * 1.05, bar.get_y() + bar.get_height() / 2, note, va="center", fontsize=8)
    ax.set_xlim(right=max(rates) * 8)
    ax.invert_yaxis()
    srv = [k for k in keys if k != "ceiling"]
    ax2.barh(
        [NAMES[k] for k in srv],
        [r[k]["server_cpu_us_per_event"] for k in srv],
        color=[COLORS[k] for k in srv],
        label="server",
    )
    ax2.barh(
        [NAMES[k] for k in srv],
        [r[k]["client_cpu_us_per_event"] for k in srv],
        color="none",
        edgecolor="black",
        hatch="//",
        label="load client",
    )
    ax2.set_xlabel("CPU µs per event")
    ax2.legend(fontsize=8)
    ax2.invert_yaxis()
    ax2.set_yticklabels([])
    fig.suptitle("1 · One stream as fast as the client reads")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_idle(r: dict[str, Any], path: Path) -> None:
    keys = [k for k in ("a", "b", "c", "d", "u") if isinstance(r.get(k), dict)]
    ns = sorted({int(n) for k in keys for n in r[k] if "error" not in r[k][n]})
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    width = 0.8 / max(len(keys), 1)
    for i, k in enumerate(keys):
        xs = [j + i * width for j in range(len(ns))]

        def get(n: int, field: str, k: str = k) -> float:
            v = r[k].get(str(n), {}).get(field)
            return float("nan") if v is None else float(v)

        axes[0].bar(
            xs, [get(n, "kib_per_stream") for n in ns], width, color=COLORS[k], label=NAMES[k]
        )
        axes[1].bar(xs, [get(n, "open_s") for n in ns], width, color=COLORS[k])
        axes[2].bar(xs, [get(n, "jitter_ms_p99") for n in ns], width, color=COLORS[k])
        axes[2].scatter(xs, [get(n, "jitter_ms_p50") for n in ns], color="black", s=10, zorder=3)
    for ax, title in zip(
        axes,
        (
            "memory per idle stream (KiB)",
            "time to open N streams (s)",
            "heartbeat jitter p99 (bars), p50 (dots), ms",
        ),
        strict=True,
    ):
        ax.set_xticks([j + width * (len(keys) - 1) / 2 for j in range(len(ns))])
        ax.set_xticklabels([f"N={n:,}" for n in ns])
        ax.set_title(title, fontsize=10)
    axes[0].axhline(IDLE_TARGET_KIB_D, color=COLORS["d"], ls="--", lw=1)
    # Headroom above the tallest bar, so the legend never covers one.
    axes[0].set_ylim(top=axes[0].get_ylim()[1] * 1.45)
    axes[0].legend(fontsize=7, ncol=2, loc="upper center")
    axes[2].axhline(JITTER_TARGET_MS, color="black", ls="--", lw=1)
    axes[2].set_yscale("log")
    fig.suptitle("2 · Idle streams with heartbeats")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_slow(r: dict[str, Any], path: Path, frame_bytes: float) -> None:
    fig, ax = plt.subplots(figsize=(8, 3.6))
    count = max((e["count"] for e in r.values() if isinstance(e, dict)), default=0)
    if count and frame_bytes:
        ax.axhline(
            count * frame_bytes / 2**20,
            color="grey",
            ls=":",
            lw=1,
            label=f"all {count:,} messages held at once (an unbounded buffer)",
        )
    for k in ("a", "b", "c", "d"):
        e = r.get(k)
        if not isinstance(e, dict) or not e.get("timeline"):
            continue
        t = [p[0] for p in e["timeline"]]
        mib = [p[1] / 1024 for p in e["timeline"]]
        ax.plot(t, mib, color=COLORS[k], label=f"{NAMES[k]} (lossless: {e['lossless']})")
    ax.axhline(BOUND_BYTES / 2**20, color="black", ls="--", lw=1, label="bound: buffer cap + 4 MiB")
    ax.set_xlabel("seconds (slow reading, then drain)")
    ax.set_ylabel("server RSS growth (MiB)")
    ax.legend(fontsize=8, loc="center right")
    ax.set_title("3 · Slow consumer: server memory while the reader lags")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_cancel(r: dict[str, Any], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 3.6))
    keys = [k for k in ("a", "b", "c", "d") if isinstance(r.get(k), dict)]
    labels, pos = [], 0
    for k in keys:
        for mode, marker in (("paced", "o"), ("flood", "^")):
            lat = [x for x in r[k].get(mode, {}).get("latencies", []) if x is not None]
            if lat:
                ax.scatter(
                    [max(x, 0.05) for x in lat],
                    [pos] * len(lat),
                    color=COLORS[k],
                    marker=marker,
                    alpha=0.7,
                )
            missing = r[k].get(mode, {}).get("timeouts", 0)
            if missing:
                ax.text(0.06, pos + 0.25, f"{missing} never stopped", fontsize=7)
            done = r[k].get(mode, {}).get("reasons", {}).get("done", 0)
            if done and lat:
                ax.text(
                    min(lat) * 0.9,
                    pos + 0.35,
                    "ran to its end: never saw the disconnect",
                    fontsize=7,
                    ha="right",
                )
            labels.append(f"{NAMES[k]} · {mode}")
            pos += 1
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(CANCEL_TARGET_MS, color="black", ls="--", lw=1)
    ax.set_xlabel("client disconnect → producer stopped (ms, log scale); dashed: 100 ms target")
    ax.invert_yaxis()
    ax.set_title("4 · Cancellation")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def chart_fanout(r: dict[str, Any], path: Path) -> None:
    runs = r.get("runs", [])
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 3.6), squeeze=False)
    colors = {"searxng": "#9467bd", "tavily": "#8c564b", "serper": "#17becf"}
    for ax, run in zip(axes[0], runs, strict=True):
        for i, c in enumerate(run["timeline"]):
            ax.barh(i, c["end_ms"] - c["start_ms"], left=c["start_ms"], color=colors[c["engine"]])
        ax.axvline(run["wall_ms_median"], color="black", ls="--", lw=1)
        ax.text(
            run["wall_ms_median"] * 1.01, 0, f"round: {run['wall_ms_median']:.0f} ms", fontsize=8
        )
        ax.set_xlim(0, max(run["wall_ms_median"] * 1.3, r["delay_ms"] * 3))
        ax.set_yticks([])
        ax.set_xlabel("ms since the round started")
        ax.set_title(
            f"concurrency={run['concurrency']}: {run['calls']} calls, "
            f"sequential would be {run['calls'] * r['delay_ms']:,.0f} ms",
            fontsize=9,
        )
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()]
    axes[0][0].legend(handles, list(colors), fontsize=8, loc="lower right")
    fig.suptitle(f"5 · DeepSearch fan-out: every engine answers after {r['delay_ms']:.0f} ms")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- targets ------------------------------------------------------------------------


def targets(res: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows."""
    stacks = res["stacks"]
    status = {k: v["status"] for k, v in stacks.items()}
    rows: list[tuple[str, str, str]] = []

    def absent(key: str) -> str | None:
        return None if status.get(key) == "ok" else status.get(key, "not run")

    st = res.get("stream", {})
    a_rate = st.get("a", {}).get("events_per_s") if isinstance(st, dict) else None
    for key, factor in (("c", 10), ("d", 30)):
        name = f"({key}) ≥ {factor}× (a) in events/s"
        if absent(key):
            rows.append((name, "–", str(absent(key))))
        elif a_rate and key in st:
            ratio = st[key]["events_per_s"] / a_rate
            rows.append((name, f"{ratio:.1f}×", ok(ratio >= factor)))
        else:
            rows.append((name, "–", "not measured"))

    idle = res.get("idle", {})

    def idle_at(key: str) -> tuple[int, dict[str, Any]] | None:
        entries = idle.get(key, {}) if isinstance(idle, dict) else {}
        good = [(int(n), e) for n, e in entries.items() if "error" not in e]
        return max(good, key=lambda x: x[0]) if good else None

    d_idle = idle_at("d")
    name = f"(d) memory per idle stream ≤ {IDLE_TARGET_KIB_D:g} KiB"
    if absent("d"):
        rows.append((name, "–", str(absent("d"))))
    elif d_idle:
        kib = d_idle[1]["kib_per_stream"]
        rows.append((name, f"{kib:.1f} KiB at N={d_idle[0]:,}", ok(kib <= IDLE_TARGET_KIB_D)))
    c_idle, a_idle = idle_at("c"), idle_at("a")
    name = "(c) memory per idle stream ≤ ½ of (a)'s"
    if c_idle and a_idle:
        n = min(c_idle[0], a_idle[0])
        c_kib = idle["c"][str(n)]["kib_per_stream"]
        a_kib = idle["a"][str(n)]["kib_per_stream"]
        rows.append(
            (
                name,
                f"{c_kib:.1f} vs {a_kib:.1f} KiB ({c_kib / a_kib:.2f}×) at N={n:,}",
                ok(c_kib <= a_kib / 2),
            )
        )
    else:
        rows.append((name, "–", "not measured"))
    name = f"(d) holds 10,000 idle streams, heartbeat p99 jitter ≤ {JITTER_TARGET_MS:g} ms"
    if absent("d"):
        rows.append((name, "–", str(absent("d"))))
    elif d_idle and d_idle[0] >= 10_000:
        e = d_idle[1]
        held = e["opened"] >= 10_000 and not e["closed_early"]
        rows.append(
            (
                name,
                f"{e['opened']:,} open, p99 {fmt(e['jitter_ms_p99'])} ms",
                ok(held and (e["jitter_ms_p99"] or 1e9) <= JITTER_TARGET_MS),
            )
        )
    else:
        rows.append((name, "–", "not measured (N=10,000 runs in the full run)"))

    cancel = res.get("cancel", {})
    for key in ("c", "d"):
        name = f"({key}) cancellation ≤ {CANCEL_TARGET_MS:g} ms (p99, paced and flooding)"
        e = cancel.get(key) if isinstance(cancel, dict) else None
        if absent(key):
            rows.append((name, "–", str(absent(key))))
        elif e and all(isinstance(e.get(m), dict) and "p99" in e[m] for m in ("paced", "flood")):
            worst = max((e[m]["p99"] or 1e9) for m in ("paced", "flood"))
            never = sum(e[m]["timeouts"] for m in ("paced", "flood"))
            text = f"paced {fmt(e['paced']['p99'])} ms, flooding {fmt(e['flood']['p99'])} ms"
            rows.append(
                (
                    name,
                    text + (f", {never} never stopped" if never else ""),
                    ok(worst <= CANCEL_TARGET_MS and not never),
                )
            )
        else:
            rows.append((name, "–", "not measured"))

    slow = res.get("slow", {})
    for key in ("c", "d"):
        name = f"({key}) slow consumer: RSS bounded (cap + constant), no message lost"
        e = slow.get(key) if isinstance(slow, dict) else None
        if absent(key):
            rows.append((name, "–", str(absent(key))))
        elif e:
            bounded = e["growth_kib"] * 1024 <= BOUND_BYTES
            rows.append(
                (
                    name,
                    f"+{e['growth_kib'] / 1024:.1f} MiB, lossless={e['lossless']}",
                    ok(bounded and e["lossless"]),
                )
            )

    fan = res.get("fanout", {})
    if isinstance(fan, dict) and fan.get("runs"):
        run = fan["runs"][0]
        wall, delay = run["wall_ms_median"], fan["delay_ms"]
        rows.append(
            (
                f"fan-out: one round ≈ one engine's delay ({delay:.0f} ms), not the sum",
                f"{wall:.0f} ms for {run['calls']} calls (sum {run['calls'] * delay:,.0f} ms)",
                ok(wall <= 1.5 * delay),
            )
        )
    if isinstance(st, dict) and "client_parse_capacity" in st:
        fastest = max(
            (v["events_per_s"] for k, v in st.items() if k in "abcd" and isinstance(v, dict)),
            default=0.0,
        )
        worst_cpu = max(
            (v["client_cpu_pct"] for k, v in st.items() if k in "abcd" and isinstance(v, dict)),
            default=0.0,
        )
        cap = st["client_parse_capacity"]
        rows.append(
            (
                "load client is not the bottleneck",
                f"client parses {cap:,.0f} ev/s ({cap / max(fastest, 1):.1f}× the fastest server); "
                f"busiest client core {worst_cpu:.0f}% of wall",
                ok(cap >= 2 * fastest and worst_cpu < 90),
            )
        )
    return rows


# ---- the Markdown section -----------------------------------------------------------


def section(res: dict[str, Any], charts: Path, doc: Path) -> str:
    rel = Path("bench") if charts.parent == doc.parent else charts
    m = res["machine"]
    load0 = ", ".join(f"{x:.1f}" for x in m["loadavg_start"])
    load1 = ", ".join(f"{x:.1f}" for x in m["loadavg_end"])
    prof = res["profile"]
    pk = m["packages"]
    L: list[str] = [
        "## Streaming servers side by side (issue: bench harness)",
        "",
        f"Command: `{res['command']}` ({res['total_seconds']:.0f} s; `make bench` runs the full "
        "set, `make bench-quick` the quick one).  ",
        f"Run: {res['date']} on {m['cpu']}, {m['nproc']} cores, {m['mem_gib']} GiB, "
        f"{m['kernel']}; Python {m['python']}, {m['rustc']}; uvicorn {pk['uvicorn']} "
        f"(default install: h11, asyncio), FastAPI {pk['fastapi']}, Starlette {pk['starlette']}, "
        f"sse-starlette {pk['sse-starlette']}. RLIMIT_NOFILE {m['nofile']:,}, somaxconn "
        f"{m['somaxconn']}.  ",
        f"**The machine was shared**: load average {load0} at the start and {load1} at the "
        "end (other "
        "builds were running). Absolute figures are noisy; every comparison below is a ratio "
        "between stacks measured in this same run, interleaved.",
        "",
        f"Profile `{prof['name']}`: heartbeat {prof['heartbeat']:g} s, idle N = "
        f"{', '.join(f'{n:,}' for n in prof['idle_streams'])} held {prof['idle_hold']:g} s, "
        f"{prof['stream_rounds']} interleaved throughput rounds of ~{prof['stream_seconds']:g} s, "
        f"slow consumer {prof['slow_count']:,} messages read one per "
        f"{prof['read_interval_ms']:g} ms for {prof['slow_seconds']:g} s.",
        "",
        "| stack | what | status |",
        "|---|---|---|",
    ]
    for key, s in res["stacks"].items():
        L.append(f"| ({key}) | {s['label']} | {s['status']} |")
    L += [
        "",
        "All stacks answer the same routes (`bench/CONTRACT.md`): `POST /bench/stream`, "
        "`POST /bench/idle`, `GET /bench/producer`; the load client is `bench/loadgen` (Rust, "
        "one thread).",
        "",
        "### Targets",
        "",
        "| target | measured (this run) | verdict |",
        "|---|---|---|",
    ]
    rows = targets(res)
    L += [f"| {t} | {mv} | {v} |" for t, mv, v in rows]
    L.append("")
    notes_file = doc.parent / "bench" / "notes.json"
    if notes_file.is_file():
        open_rows = [t for t, _, v in rows if v not in ("**met**",)]
        all_notes = json.loads(notes_file.read_text())
        notes = [
            n
            for n in all_notes
            if not n.get("observation") and any(t.startswith(n["target"]) for t in open_rows)
        ]
        if notes:
            L += ["Targets not met, and why:", ""]
            L += [f"- *{n['target'].strip()}*: {n['note']}" for n in notes]
            L.append("")
        seen = [n for n in all_notes if n.get("observation")]
        if seen:
            L += ["Other things this harness showed (not targets):", ""]
            L += [f"- *{n['target'].strip()}*: {n['note']}" for n in seen]
            L.append("")

    st = res.get("stream")
    if isinstance(st, dict) and "error" not in st:
        a_rate = st.get("a", {}).get("events_per_s")
        ceil = st.get("ceiling", {}).get("events_per_s")
        L += [
            "### 1 · One stream as fast as the client reads; 6 · the loopback ceiling",
            "",
            "![one stream](" + str(rel / "stream_throughput.png") + ")",
            "",
            "| stack | events/s | × (a) | % of ceiling | server CPU µs/event | client CPU "
            "µs/event | client CPU % of wall | bytes/event on the wire |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for k in ("a", "b", "c", "d"):
            e = st.get(k)
            if not isinstance(e, dict):
                continue
            L.append(
                f"| {NAMES[k]} | {e['events_per_s']:,.0f} | "
                f"{e['events_per_s'] / a_rate:.1f}× | {100 * e['events_per_s'] / ceil:.1f}% | "
                f"{e['server_cpu_us_per_event']:.2f} | {e['client_cpu_us_per_event']:.2f} | "
                f"{e['client_cpu_pct']:.0f}% | {e['wire_bytes_per_event']:.0f} |"
            )
        e = st["ceiling"]
        L += [
            f"| {NAMES['ceiling']} (same frames, raw socket, no HTTP/SSE) | {ceil:,.0f} | "
            f"{ceil / a_rate:.0f}× | 100% | {e['writer_cpu_us_per_event']:.2f} (writer) | "
            f"{e['client_cpu_us_per_event']:.2f} | {e['client_cpu_pct']:.0f}% | "
            f"{e['frame_bytes']:.0f} |",
            "",
            f"Median of {prof['stream_rounds']} rounds; each round runs every stack once, in a "
            "rotating order. Server CPU is user+system of the whole server process from "
            "`/proc/PID/stat` (10 ms ticks). The client parses every frame; on its own it "
            f"parses {st['client_parse_capacity']:,.0f} events/s (`loadgen ceiling --parse`).",
            "",
        ]
    idle = res.get("idle")
    if isinstance(idle, dict) and "error" not in idle:
        L += [
            "### 2 · Idle streams: memory, time to open, heartbeat jitter",
            "",
            "![idle streams](" + str(rel / "idle_streams.png") + ")",
            "",
            "| stack | N | opened | time to open | KiB per stream | jitter p50 | jitter p99 | "
            "jitter max | p99 / max once all open | server CPU while idle | threads |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for n in sorted({int(n) for v in idle.values() for n in v}):
            for k in ("a", "b", "c", "d", "u"):
                e = idle.get(k, {}).get(str(n))
                if not e:
                    continue
                if "error" in e:
                    L.append(f"| {NAMES[k]} | {n:,} | failed: {e['error'][:80]} | | | | | | | | |")
                    continue
                L.append(
                    f"| {NAMES[k]} | {n:,} | {e['opened']:,} | {e['open_s']:.2f} s | "
                    f"{e['kib_per_stream']:.1f} | {fmt(e['jitter_ms_p50'], 2)} ms | "
                    f"{fmt(e['jitter_ms_p99'], 2)} ms | {fmt(e['jitter_ms_max'], 1)} ms | "
                    f"{fmt(e.get('jitter_after_open_ms_p99'), 2)} / "
                    f"{fmt(e.get('jitter_after_open_ms_max'), 1)} ms | "
                    f"{e['server_cpu_pct_hold']:.1f}% | {e['server_threads']} |"
                )
        L += [
            "",
            "KiB per stream: (median server RSS while the N streams are held − RSS before) / N. "
            "Jitter: |interval between two heartbeats on one stream − the heartbeat period|, over "
            'every interval of every stream; "once all open" counts only the intervals that '
            "began after the last stream opened (opening thousands takes a Python server longer "
            "than one heartbeat period here). The client opens 256 connections at a time. (u) is "
            "no stack but the floor under (a), (b) and (c): a bare ASGI app on the same uvicorn "
            "that holds the connection with one heartbeat task "
            "(`bench/peers/asgi_floor.py`).",
            "",
        ]
    slow = res.get("slow")
    if isinstance(slow, dict) and "error" not in slow:
        L += [
            "### 3 · Slow consumer",
            "",
            "![slow consumer](" + str(rel / "slow_consumer.png") + ")",
            "",
            "| stack | messages | lossless | peak RSS growth | producer ahead of the reader "
            "at the end of the slow phase | producer ÷ reader speed |",
            "|---|---:|---|---:|---:|---:|",
        ]
        st_rates = st if isinstance(st, dict) else {}
        for k in ("a", "b", "c", "d"):
            e = slow.get(k)
            if not isinstance(e, dict):
                continue
            ahead = (
                f"{e['producer_sent_at_slow_end'] - e['slow_read']:,} messages"
                if e.get("producer_sent_at_slow_end") is not None
                else "– (not reported)"
            )
            speed = st_rates.get(k, {}).get("events_per_s")
            ratio = f"{speed / e['reader_events_per_s']:,.0f}×" if speed else "–"
            L.append(
                f"| {NAMES[k]} | {e['received']:,}/{e['count']:,} | {e['lossless']} | "
                f"{e['growth_kib'] / 1024:.1f} MiB | {ahead} | {ratio} |"
            )
        L += [
            "",
            f"The reader takes one frame every {prof['read_interval_ms']:g} ms (its socket is "
            "read 512 bytes at a time only when no whole frame is buffered) for "
            f"{prof['slow_seconds']:g} s, then drains as fast as it can and checks that every "
            "`seq` arrived once and in order. Bounded means growth ≤ the core's buffer cap (256 "
            "messages, at most 4 MiB) + 4 MiB. What is in flight beyond the server's own "
            "buffer sits in the kernel's socket buffers, outside RSS.",
            "",
        ]
    cancel = res.get("cancel")
    if isinstance(cancel, dict) and "error" not in cancel:
        L += [
            "### 4 · Cancellation: client disconnect → producer stopped",
            "",
            "![cancellation](" + str(rel / "cancellation.png") + ")",
            "",
            "| stack | paced producer p50 / p99 / max | flooding producer p50 / p99 / max | "
            "how the flooding producer ended |",
            "|---|---:|---:|---|",
        ]
        for k in ("a", "b", "c", "d"):
            e = cancel.get(k)
            if not isinstance(e, dict):
                continue

            def trio(m: dict[str, Any]) -> str:
                if "error" in m:
                    return "failed"
                return f"{fmt(m['p50'], 1)} / {fmt(m['p99'], 1)} / {fmt(m['max'], 1)} ms"

            flood = e.get("flood", {})
            how = ", ".join(f"{v}× {r}" for r, v in flood.get("reasons", {}).items())
            if flood.get("timeouts"):
                how += f", {flood['timeouts']}× never stopped"
            L.append(
                f"| {NAMES[k]} | {trio(e.get('paced', {}))} | {trio(flood)} | "
                f"{how} (count {e['flood_count']:,}) |"
            )
        L += [
            "",
            "Paced: the producer sends one message every 10 ms (it awaits, like a search "
            "waiting on engines). Flooding: it sends as fast as it can, bounded by a count worth "
            "about 3 s of that stack's throughput, so a producer that never notices the "
            "disconnect shows up as `done` after seconds instead of hanging the run. The client "
            "reads 5 messages, notes the wall clock, closes the socket, then polls "
            "`GET /bench/producer` for the time the producer itself recorded when it stopped.",
            "",
        ]
    fan = res.get("fanout")
    if isinstance(fan, dict) and fan.get("runs"):
        L += [
            "### 5 · DeepSearch fan-out",
            "",
            "![fan-out](" + str(rel / "fanout.png") + ")",
            "",
            "| `DeepSearch(concurrency=)` | calls | round wall time (median) | ÷ one engine's "
            "delay | ÷ the calls' sum |",
            "|---:|---:|---:|---:|---:|",
        ]
        for run in fan["runs"]:
            total = run["calls"] * fan["delay_ms"]
            L.append(
                f"| {run['concurrency']} | {run['calls']} | {run['wall_ms_median']:.0f} ms | "
                f"{run['wall_ms_median'] / fan['delay_ms']:.2f}× | "
                f"{run['wall_ms_median'] / total:.3f}× |"
            )
        q = fan["runs"][0]["queries"]
        L += [
            "",
            f"Engines {', '.join(fan['engines'])}, each a local HTTP server speaking that "
            f"provider's JSON and answering after {fan['delay_ms']:.0f} ms; the core's "
            f'`DeepSearch` with `llm="offline"`, `max_loop=1`, `max_queries='
            f"{fan['max_queries']}`. Query: “{fan['query']}”; the offline planner made "
            f"{len(q)} sub-queries: " + "; ".join(f"“{x}”" for x in q) + ". With the default "
            "`concurrency=8`, 15 calls need two waves.",
            "",
        ]
    ba = doc.parent / "bench" / "before_after.json"
    if ba.is_file():
        L += ["### Fixes found by this harness (before → after)", ""]
        for fix in json.loads(ba.read_text()):
            L += [
                f"- **{fix['title']}** ({fix['commit']}). {fix['cause']}",
                f"  - Before: {fix['before']}",
                f"  - After: {fix['after']}",
                f"  - Measured with: `{fix['command']}`",
            ]
        L.append("")
    L += [
        "### Exact commands",
        "",
        "Servers (port 0; the harness reads the `listening on` line):",
        "",
        "```",
    ]
    for key, s in res["stacks"].items():
        if s["argv"]:
            L.append(f"({key}) " + " ".join(shown_arg(a) for a in s["argv"]))
    L += [
        "```",
        "",
        "Load client (one example per measurement; `bench/loadgen` is `target/release/loadgen`):",
        "",
        "```",
    ]
    L += [f"# {label}\n{cmd}" for label, cmd in res.get("commands", {}).items()]
    L += ["```", ""]
    return "\n".join(L)


def shown_arg(arg: str) -> str:
    """Paths as a reader would type them: relative to the repository, temp dirs elided."""
    if arg.startswith(str(ROOT) + "/"):
        return arg[len(str(ROOT)) + 1 :]
    if "/tmp/" in arg or arg.startswith(tempfile.gettempdir() + "/"):
        return "$TMP/" + Path(arg).name
    if Path(arg).name.startswith("python"):
        return "python"
    return arg


def write_report(res: dict[str, Any], doc: Path, charts: Path) -> None:
    charts.mkdir(parents=True, exist_ok=True)
    frame = res.get("stream", {}).get("ceiling", {}).get("frame_bytes", 331.0)
    makers = (
        ("stream", "stream_throughput.png", chart_stream),
        ("idle", "idle_streams.png", chart_idle),
        ("slow", "slow_consumer.png", lambda d, p: chart_slow(d, p, frame)),
        ("cancel", "cancellation.png", chart_cancel),
        ("fanout", "fanout.png", chart_fanout),
    )
    for key, name, make in makers:
        data = res.get(key)
        if isinstance(data, dict) and "error" not in data:
            make(data, charts / name)
    (charts / "bench_run.json").write_text(json.dumps(res, indent=1, default=str) + "\n")
    write_section(doc, "bench_run", section(res, charts, doc))
