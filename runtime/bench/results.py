"""What a benchmark reports: statistics over timings, the result schema, ``bench.json`` and the chart.

Statistics are computed from raw ``perf_counter_ns`` samples: percentiles (linear interpolation), mean,
sample standard deviation, throughput in items (batch rows) per second at the mean latency. Speedups
against the baseline are per-round ratios (see :mod:`onnxmend.runtime.bench.cells`), reported as their median
and p10–p90 spread.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from onnxmend.core.fileio import write_json
from onnxmend.runtime.machine import Memory

SCHEMA = "onnxmend.bench/1"

# ---------------------------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class Stats:
    """Latency statistics in milliseconds over the timed runs; throughput in items (batch rows) per second."""

    runs: int
    p10_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    throughput: float
    cold_ms: float | None


def summarize(samples_ns: Sequence[int], batch: int, cold_ns: int | None = None) -> Stats:
    if not samples_ns:
        raise ValueError("no timed runs to summarize")
    ms = np.asarray(samples_ns, dtype=np.float64) / 1e6
    p10, p50, p90, p99 = np.percentile(ms, [10, 50, 90, 99])
    mean = float(ms.mean())
    return Stats(
        runs=len(ms), p10_ms=float(p10), p50_ms=float(p50), p90_ms=float(p90), p99_ms=float(p99),
        mean_ms=mean, std_ms=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
        min_ms=float(ms.min()), max_ms=float(ms.max()),
        throughput=batch * 1000.0 / mean if mean > 0 else math.inf,
        cold_ms=None if cold_ns is None else cold_ns / 1e6,
    )


@dataclass(frozen=True)
class Ratio:
    """Speedup against the baseline (>1: faster than it), the median of per-round ratios and their spread."""

    baseline: str
    median: float
    p10: float
    p90: float
    rounds: int


def round_speedups(baseline_rounds: Sequence[Sequence[int]], rounds: Sequence[Sequence[int]]) -> list[float]:
    """Per round: median of the baseline's block over median of this subject's block."""
    pairs = zip(baseline_rounds, rounds)
    return [float(np.median(base) / np.median(mine)) for base, mine in pairs if len(base) and len(mine)]


def summarize_ratio(baseline: str, speedups: Sequence[float]) -> Ratio:
    p10, p50, p90 = np.percentile(np.asarray(speedups, dtype=np.float64), [10, 50, 90])
    return Ratio(baseline, float(p50), float(p10), float(p90), len(speedups))



@dataclass
class ArtifactResult:
    """One row of the report: a subject in a (provider, batch) cell, measured or skipped with a reason."""

    label: str
    kind: str
    path: str | None
    provider: str
    batch: int
    status: str = "ok"  # "ok" or "skipped"
    reason: str | None = None
    stats: Stats | None = None
    speedup: Ratio | None = None
    memory: Memory | None = None
    round_p50_ms: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # How close this subject's outputs are to the reference subject's on the same inputs.
    agreement: dict[str, object] | None = None


@dataclass
class BenchResult:
    machine: dict[str, object]
    settings: dict[str, object]
    baseline: str
    results: list[ArtifactResult]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    inputs: dict[str, object] | None = None  # which inputs were used (InputsUsed.to_json)
    # Each subject's outputs in the first cell (source layout), for --save-outputs; not in bench.json.
    outputs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict, repr=False)
    saved_outputs: Path | None = None  # where --save-outputs wrote them


    def to_json(self) -> dict[str, object]:
        return {
            "schema": SCHEMA, "machine": self.machine, "settings": self.settings, "baseline": self.baseline,
            "seconds": round(self.seconds, 3), "notes": list(self.notes), "inputs": self.inputs,
            "results": [_row_json(row) for row in self.results],
        }


def _row_json(row: ArtifactResult) -> dict[str, object]:
    data = {k: v for k, v in row.__dict__.items() if k not in ("stats", "speedup", "memory")}
    for key in ("stats", "speedup", "memory"):
        value = getattr(row, key)
        data[key] = asdict(value) if is_dataclass(value) else None
    return data


def write_report(result: BenchResult, out_dir: str | Path) -> tuple[Path, Path | None]:
    """Write ``bench.json`` and, when anything was measured, ``bench.png`` into ``out_dir``."""
    from onnxmend.runtime.bench.chart import write_chart

    out_dir = Path(out_dir)
    json_path = write_json(out_dir / "bench.json", result.to_json())
    measured = [row for row in result.results if row.stats is not None]
    if not measured:
        return json_path, None
    return json_path, write_chart(result, out_dir / "bench.png")
