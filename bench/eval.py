"""Answer quality of the offline default: DeepSearch (local engine, no model) over a QA file.

Each line of the QA file is ``{"q", "source_any", "answer_any", "answer_all"}``. Per
``max_loop`` it reports:

- cited-gold: a source cited by ``[n]`` has a title or URL containing one of ``source_any``;
- answer-key: the answer (lowercased) holds one of ``answer_any`` (when given) and all of
  ``answer_all``;
- faithful: the answer has at least one ``[n]`` and every ``[n]`` names a returned source;
- "no answer": the answer is the no-answer text;
- latency of one whole search (p50, p99), in this process, wall clock.

``make eval`` runs it on the dev set and writes the ``eval`` section of docs/QUALITY.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import cpu_model, write_section

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_QA = ROOT / "bench" / "qa" / "dev.jsonl"
NO_ANSWER = "No answer found in the retrieved documents."
CITATION = re.compile(r"\[(\d+)\]")


@dataclass
class Case:
    q: str
    source_any: list[str]
    answer_any: list[str]
    answer_all: list[str]


@dataclass
class Outcome:
    case: Case
    answer: str
    cited: list[dict[str, Any]]
    queries: list[str]
    seconds: float
    cited_gold: bool
    answer_key: bool
    faithful: bool
    no_answer: bool


@dataclass
class Run:
    max_loop: int
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, name: str) -> int:
        return sum(1 for o in self.outcomes if getattr(o, name))

    def latency_ms(self, quantile: float) -> float:
        times = sorted(o.seconds for o in self.outcomes)
        if not times:
            return 0.0
        return 1000 * times[min(len(times) - 1, round(quantile * (len(times) - 1)))]


def load_cases(path: Path) -> list[Case]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            cases.append(
                Case(
                    q=row["q"],
                    source_any=[s.lower() for s in row.get("source_any", [])],
                    answer_any=[s.lower() for s in row.get("answer_any", [])],
                    answer_all=[s.lower() for s in row.get("answer_all", [])],
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SystemExit(f"{path}:{n}: not a QA row ({exc!r})") from exc
    return cases


def judge(case: Case, result: dict[str, Any], seconds: float) -> Outcome:
    answer: str = result["answer"]
    by_id = {s["id"]: s for s in result["sources"]}
    numbers = [int(n) for n in CITATION.findall(answer)]
    cited = [by_id[n] for n in dict.fromkeys(numbers) if n in by_id]
    text = answer.lower()
    gold = any(
        needle in f"{s['title']} {s['url']}".lower() for s in cited for needle in case.source_any
    )
    key = (not case.answer_any or any(k in text for k in case.answer_any)) and all(
        k in text for k in case.answer_all
    )
    return Outcome(
        case=case,
        answer=answer,
        cited=cited,
        queries=result.get("queries", []),
        seconds=seconds,
        cited_gold=gold,
        answer_key=key,
        faithful=bool(numbers) and all(n in by_id for n in numbers),
        no_answer=answer.strip() == NO_ANSWER,
    )


async def run_all(ds: Any, cases: list[Case], loops: list[int]) -> list[Run]:
    runs = []
    for max_loop in loops:
        run = Run(max_loop)
        for case in cases:
            started = time.perf_counter()
            result = await ds.search(case.q, max_loop=max_loop)
            run.outcomes.append(judge(case, result, time.perf_counter() - started))
        runs.append(run)
    return runs


async def differing(ds: Any, run: Run) -> int:
    """How many answers of ``run`` come out different when asked again."""
    changed = 0
    for o in run.outcomes:
        again = await ds.search(o.case.q, max_loop=run.max_loop)
        changed += again["answer"] != o.answer
    return changed


def summary(runs: list[Run], total: int) -> str:
    lines = [
        "| max_loop | cited-gold | answer-key | faithful | no answer | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.max_loop} | {r.count('cited_gold')}/{total} | {r.count('answer_key')}/{total}"
            f" | {r.count('faithful')}/{total} | {r.count('no_answer')}"
            f" | {r.latency_ms(0.5):.1f} | {r.latency_ms(0.99):.1f} |"
        )
    return "\n".join(lines) + "\n"


def misses(run: Run) -> str:
    out = []
    for o in run.outcomes:
        failed = [
            name
            for name, ok in (
                ("cited-gold", o.cited_gold),
                ("answer-key", o.answer_key),
                ("faithful", o.faithful),
            )
            if not ok
        ]
        if not failed:
            continue
        titles = "; ".join(s["title"] for s in o.cited) or "none"
        answer = o.answer if len(o.answer) <= 300 else o.answer[:300] + "…"
        out.append(
            f"- **{o.case.q}** — missed {', '.join(failed)}. Cited: {titles}.\n"
            f"  Answer: {answer.replace(chr(10), ' ')}"
        )
    return "\n".join(out) + "\n" if out else "None.\n"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def report(runs: list[Run], qa: Path, n: int, command: str, changed: int) -> str:
    parts = [
        f"Command: `{command}` (commit {git_commit()}, {cpu_model()}, "
        f"Python {sys.version.split()[0]}). QA file: `{qa.name}`, {n} questions; corpus: "
        "the default Python-documentation export; latency: one whole search (every round, "
        "the answer included) in this process.\n",
        summary(runs, n),
        f"Deterministic: asked again, {changed} of {n} answers at max_loop "
        f"{runs[0].max_loop} came out different.\n",
    ]
    for r in runs:
        parts.append(f"Misses at max_loop {r.max_loop}:\n\n{misses(r)}")
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--qa", type=Path, default=DEFAULT_QA, help="QA file (JSON lines)")
    parser.add_argument("--loops", default="1,2", help="max_loop values, comma-separated")
    parser.add_argument("--corpus", type=Path, default=None, help="corpus (default: Python docs)")
    parser.add_argument("--write", type=Path, default=None, help="write the eval section here")
    parser.add_argument("--json-out", type=Path, default=None, help="every outcome as JSON")
    args = parser.parse_args(argv)

    from deepsearch_stream import DeepSearch
    from deepsearch_stream.corpus import export_python_docs

    if not args.qa.is_file():
        raise SystemExit(f"no QA file at {args.qa} (pass --qa FILE)")
    cases = load_cases(args.qa)
    loops = [int(x) for x in args.loops.split(",") if x.strip()]
    corpus = args.corpus or export_python_docs()
    ds = DeepSearch(engines=["local"], corpus=corpus, llm="offline")

    async def measure() -> tuple[list[Run], int]:
        await ds.search("warm up the index", max_loop=1)
        runs = await run_all(ds, cases, loops)
        return runs, await differing(ds, runs[0])

    runs, changed = asyncio.run(measure())
    default = args.qa.resolve() == DEFAULT_QA.resolve()
    command = "make eval" if default else f"make eval QA={args.qa}"
    text = report(runs, args.qa, len(cases), command, changed)
    print(text)
    if args.write:
        write_section(args.write, "eval", text)
    if args.json_out:
        rows = [
            {
                "max_loop": r.max_loop,
                "q": o.case.q,
                "answer": o.answer,
                "cited": o.cited,
                "queries": o.queries,
                "cited_gold": o.cited_gold,
                "answer_key": o.answer_key,
                "faithful": o.faithful,
            }
            for r in runs
            for o in r.outcomes
        ]
        args.json_out.write_text(json.dumps(rows, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
