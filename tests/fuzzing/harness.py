"""One fuzzing run: build input ``i`` of ``count``, run each command on it, check the input is unchanged,
and summarise — counts per command and outcome, per mutation class, the clean errors by kind, and every
distinct failure signature with one file that reproduces it (kept under ``OUT/repro/``)."""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tests.fuzzing.mutations import Mutant
from tests.fuzzing.outcome import FAILURES, OUTCOMES, CommandRun, normalise, run_command
from tests.fuzzing.seeds import Seed
from tests.fuzzing.targeted import CLASSES, mutant


@dataclass
class Settings:
    count: int
    seed: int = 0
    jobs: int = 1
    commands: tuple[str, ...] = ("inspect", "fix")
    timeout_s: float = 600.0
    memory_bytes: int = 6 << 30
    classes: tuple[str, ...] = CLASSES
    start: int = 0  # first input index (a slice of a larger run)
    gate_timeout_s: float | None = None  # fix --timeout (onnxmend's own limit per onnxruntime run); None: its default


@dataclass
class CaseResult:
    mutant: Mutant
    runs: list[CommandRun]
    input_modified: bool

    def to_json(self) -> dict[str, object]:
        m = self.mutant
        return {"index": m.index, "class": m.kind, "seed": m.seed, "detail": m.detail, "bytes": len(m.data),
                "input_modified": self.input_modified, "runs": [r.to_json() for r in self.runs]}


@dataclass
class Summary:
    settings: Settings
    seeds: list[Seed]
    cases: list[CaseResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def tried(self) -> int:
        return len(self.cases)

    def counts(self) -> dict[str, dict[str, int]]:
        """Per command: how many runs ended in each outcome."""
        table = {c: dict.fromkeys(OUTCOMES, 0) for c in self.settings.commands}
        for case in self.cases:
            for run in case.runs:
                table[run.command][run.outcome] += 1
        return table

    def failures(self) -> dict[str, int]:
        """The figures a clean run must show as zero (runs over all commands, inputs for modification)."""
        totals = dict.fromkeys(FAILURES, 0)
        for case in self.cases:
            for run in case.runs:
                if run.outcome in totals:
                    totals[run.outcome] += 1
        totals["input-modified"] = sum(c.input_modified for c in self.cases)
        return totals

    def signatures(self) -> list[dict[str, object]]:
        groups: dict[str, list[tuple[CaseResult, CommandRun]]] = collections.defaultdict(list)
        for case in self.cases:
            for run in case.runs:
                if run.signature:
                    groups[run.signature].append((case, run))
            if case.input_modified:
                groups["input modified"].append((case, case.runs[-1]))
        found = []
        for sig, hits in sorted(groups.items(), key=lambda kv: -len(kv[1])):
            case, run = hits[0]
            found.append({"signature": sig, "outcome": run.outcome if sig != "input modified" else "input-modified",
                          "count": len(hits), "classes": sorted({c.mutant.kind for c, _ in hits}),
                          "example": {"index": case.mutant.index, "class": case.mutant.kind, "seed": case.mutant.seed,
                                      "detail": case.mutant.detail, "message": run.message,
                                      "file": f"repro/{case.mutant.index:05d}{case.mutant.suffix}"}})
        return found

    def clean_errors(self) -> dict[str, int]:
        """The sentences of clean errors, grouped by kind (specifics taken out), most frequent first."""
        kinds = collections.Counter(normalise(r.message) for c in self.cases for r in c.runs if r.outcome == "clean-error")
        return dict(kinds.most_common())

    def by_class(self) -> dict[str, dict[str, int]]:
        table: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        for case in self.cases:
            table[case.mutant.kind]["inputs"] += 1
            for run in case.runs:
                table[case.mutant.kind][f"{run.command}:{run.outcome}"] += 1
        return {k: dict(v) for k, v in sorted(table.items())}

    def watchdog(self) -> dict[str, int]:
        """Runs in which onnxmend's own limits stopped a hang, a memory bomb or a crash of a worker process,
        by kind (a run may have gone on to a result: a pass skipped, a size not verified)."""
        return dict(collections.Counter(r.watchdog for c in self.cases for r in c.runs if r.watchdog))

    def to_json(self) -> dict[str, object]:
        s = self.settings
        return {
            "settings": {"count": s.count, "seed": s.seed, "jobs": s.jobs, "commands": list(s.commands),
                         "timeout_s": s.timeout_s, "memory_bytes": s.memory_bytes, "start": s.start,
                         "gate_timeout_s": s.gate_timeout_s},
            "seeds": [{"name": x.name, "bytes": len(x.data), "sha256": x.sha256} for x in self.seeds],
            "tried": self.tried, "seconds": round(self.seconds, 1), "counts": self.counts(),
            "failures": self.failures(), "watchdog_ended": self.watchdog(), "clean_errors": self.clean_errors(),
            "by_class": self.by_class(), "signatures": self.signatures(),
        }


def run_case(m: Mutant, root: Path, settings: Settings) -> CaseResult:
    work = root / "cases" / f"{m.index:05d}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    path = work / f"input{m.suffix}"
    path.write_bytes(m.data)
    before = hashlib.sha256(m.data).hexdigest()
    runs = [run_command(c, path, work, settings.timeout_s, settings.memory_bytes, settings.gate_timeout_s)
            for c in settings.commands]
    modified = not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != before
    result = CaseResult(m, runs, modified)
    if modified or any(r.signature for r in runs):
        repro = root / "repro"
        repro.mkdir(exist_ok=True)
        (repro / f"{m.index:05d}{m.suffix}").write_bytes(m.data)
        for log in sorted((work / "logs").glob("*.log")):  # internal-error logs: the tracebacks
            shutil.copy(log, repro / f"{m.index:05d}.{log.name}")
    shutil.rmtree(work, ignore_errors=True)
    return result


def run(settings: Settings, seeds: Sequence[Seed], root: Path,
        on_case: Callable[[CaseResult], None] | None = None) -> Summary:
    """Run inputs ``start .. start+count`` of the run seeded ``settings.seed`` and write ``root/summary.json``."""
    root.mkdir(parents=True, exist_ok=True)
    summary = Summary(settings, list(seeds))
    start = time.monotonic()
    indices = range(settings.start, settings.start + settings.count)

    def one(index: int) -> CaseResult:
        result = run_case(mutant(index, settings.seed, seeds, settings.classes), root, settings)
        if on_case:
            on_case(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, settings.jobs)) as pool, (root / "cases.jsonl").open("w") as log:
        for result in pool.map(one, indices):
            summary.cases.append(result)
            log.write(json.dumps(result.to_json()) + "\n")
            log.flush()
    summary.seconds = time.monotonic() - start
    (root / "summary.json").write_text(json.dumps(summary.to_json(), indent=2) + "\n")
    return summary


def table(summary: Summary) -> str:
    """The summary as plain-text tables: outcomes per command, the failure figures, the signatures."""
    counts = summary.counts()
    width = max(len(o) for o in OUTCOMES)
    lines = [f"tried {summary.tried} inputs in {summary.seconds:.0f} s "
             f"(seed {summary.settings.seed}, {len(summary.seeds)} seed graphs, jobs {summary.settings.jobs})", ""]
    lines.append(f"{'outcome':<{width}}  " + "  ".join(f"{c:>8}" for c in counts))
    for outcome in OUTCOMES:
        lines.append(f"{outcome:<{width}}  " + "  ".join(f"{counts[c][outcome]:>8}" for c in counts))
    lines += ["", "must be zero: " + ", ".join(f"{k} {v}" for k, v in summary.failures().items())]
    watchdog = summary.watchdog()
    lines.append("ended by onnxmend's watchdog: " + (", ".join(f"{k} {v}" for k, v in watchdog.items()) or "none"))
    lines += ["", "clean errors by kind:"]
    lines += [f"  {n:>6}  {kind}" for kind, n in list(summary.clean_errors().items())[:25]]
    sigs = summary.signatures()
    lines += ["", f"failure signatures: {len(sigs)}"]
    lines += [f"  {s['count']:>6}  {s['signature']}  [{s['example']['file']}]" for s in sigs]
    return "\n".join(lines)
