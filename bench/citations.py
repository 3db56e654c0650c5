"""Precision and recall of the citation check, on planted citations (bench/qa/citations.json).

Each case is a small corpus searched by the local engine and a fake OpenAI-compatible
model (``deepsearch_stream.testing``) that streams a fixed answer whose sentences cite sources by
title, some of them wrongly. The check's verdicts come from the ``final`` message's
``citations``. An unsupported verdict on a wrong citation is a true positive.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import write_section

from deepsearch_stream.testing import LocalServer, OpenAIHandler

ROOT = Path(__file__).resolve().parents[1]

FIXTURES = ROOT / "bench" / "qa" / "citations.json"
SOURCE_LINE = re.compile(r"^\[(\d+)\] (.+?) — ", re.MULTILINE)
CHUNK_CHARS = 7  # the answer streams in small pieces, markers split across them


@dataclass
class Verdict:
    cite: str
    gold: str | None
    supported: bool
    moved_to: str | None
    final: str | None  # the source the final answer cites for the sentence, if any


class FakeModel:
    """Plans one query per source, then streams the case's answer with real numbers."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.numbers: dict[str, int] = {}
        fake = self

        class Handler(OpenAIHandler):
            def respond(self, phase: str, request: dict[str, Any]) -> None:
                if phase == "plan":
                    queries = list(case["docs"])[:4]
                    self.reply(json.dumps({"queries": queries}))
                elif phase == "judge":
                    self.reply('{"is_answer": true, "rewrite_query": null, "reason": "ok"}')
                else:
                    prompt = request["messages"][1]["content"]
                    fake.numbers = {t: int(n) for n, t in SOURCE_LINE.findall(prompt)}
                    text = " ".join(
                        f"{s['text'][:-1]} [{fake.numbers[s['cite']]}]{s['text'][-1]}"
                        for s in case["answer"]
                    )
                    self.start_stream()
                    for i in range(0, len(text), CHUNK_CHARS):
                        self.piece(text[i : i + CHUNK_CHARS])
                    self.end_stream()

        self.server = LocalServer(Handler)
        self.url = self.server.url + "/v1"

    def close(self) -> None:
        self.server.close()


def write_corpus(case: dict[str, Any], work: Path) -> Path:
    corpus = work / "corpus"
    corpus.mkdir()
    for n, (title, text) in enumerate(case["docs"].items()):
        url = f"https://example.org/{title.lower()}"
        (corpus / f"{n}.md").write_text(f"<!-- url: {url} -->\n# {title}\n\n{text}\n")
    return work


async def run_case(case: dict[str, Any], work: Path) -> list[Verdict]:
    from deepsearch_stream import DeepSearch

    corpus = work / "corpus"
    fake = FakeModel(case)
    try:
        llm = {"base_url": fake.url, "model": "planted"}
        ds = DeepSearch(["local"], corpus, llm, cache_dir=work / "cache", max_queries=4)
        result = await ds.search(case["question"], max_loop=1)
    finally:
        fake.close()
    titles = {n: t for t, n in fake.numbers.items()}
    checks = result["citations"]
    if len(checks) != len(case["answer"]):
        raise SystemExit(f"{case['question']}: {len(checks)} verdicts for {len(case['answer'])}")
    finals = final_citations(result["answer"], len(case["answer"]))
    return [
        Verdict(
            cite=s["cite"],
            gold=s["gold"],
            supported=c["supported"],
            moved_to=titles.get(c["moved_to"]) if c["moved_to"] else None,
            final=titles.get(f) if f else None,
        )
        for s, c, f in zip(case["answer"], checks, finals, strict=True)
    ]


def final_citations(answer: str, n: int) -> list[int | None]:
    """The source number each sentence of the final answer cites (None: dropped)."""
    sentences = re.split(r"(?<=[.!?])\s+", answer.strip())
    if len(sentences) != n:
        raise SystemExit(f"the final answer has {len(sentences)} sentences, not {n}: {answer}")
    out: list[int | None] = []
    for s in sentences:
        m = re.search(r"\[(\d+)\]", s)
        out.append(int(m.group(1)) if m else None)
    return out


def report(verdicts: list[Verdict], cases: int) -> str:
    wrong = [v for v in verdicts if v.cite != v.gold]
    flagged = [v for v in verdicts if not v.supported]
    caught = [v for v in flagged if v.cite != v.gold]
    precision = len(caught) / len(flagged) if flagged else 1.0
    recall = len(caught) / len(wrong) if wrong else 1.0
    movable = [v for v in wrong if v.gold is not None]
    moved_right = [v for v in movable if v.moved_to == v.gold]
    orphans = [v for v in wrong if v.gold is None]
    dropped = [v for v in orphans if v.final is None]
    before = sum(1 for v in verdicts if v.cite == v.gold)
    kept = [v for v in verdicts if v.final is not None]
    after = sum(1 for v in kept if v.final == v.gold)
    lines = [
        "Command: `make eval` (runs `bench/citations.py`), fixtures `bench/qa/citations.json`: "
        f"{cases} cases, {len(verdicts)} cited sentences, {len(wrong)} of them cited wrongly "
        f"({len(movable)} with another source that says it, {len(orphans)} that no source says).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| precision of 'unsupported' (flagged citations that were wrong) | "
        f"{len(caught)}/{len(flagged)} = {precision:.2f} |",
        f"| recall of 'unsupported' (wrong citations flagged) | "
        f"{len(caught)}/{len(wrong)} = {recall:.2f} |",
        f"| wrong citations moved to the source that says it | {len(moved_right)}/{len(movable)} |",
        f"| citations no source supports, dropped | {len(dropped)}/{len(orphans)} |",
        f"| correct citations in the model's answer | {before}/{len(verdicts)} |",
        f"| correct citations after the check (of those kept) | {after}/{len(kept)} |",
        "",
    ]
    misses = [v for v in verdicts if (v.cite != v.gold) == v.supported]
    if misses:
        lines.append("Misjudged citations (lexical support's limits):")
        lines.append("")
        for v in misses:
            kind = "wrong, judged supported" if v.supported else "correct, judged unsupported"
            lines.append(f"- cited {v.cite}, said by {v.gold or 'no source'}: {kind}")
        lines.append("")
    return "\n".join(lines) + "\n"


async def run_all(cases: list[dict[str, Any]]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    for case in cases:
        with tempfile.TemporaryDirectory() as tmp:
            verdicts += await run_case(case, write_corpus(case, Path(tmp)))
    return verdicts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--write", type=Path, default=None, help="write the section here")
    args = parser.parse_args(argv)
    cases = json.loads(args.fixtures.read_text(encoding="utf-8"))["cases"]
    verdicts = asyncio.run(run_all(cases))
    text = report(verdicts, len(cases))
    print(text)
    if args.write:
        write_section(args.write, "citations", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
