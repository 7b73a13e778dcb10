"""Capture and compare intermediate tensors without holding them all: chunks under a memory budget, or
bisection.

A :class:`Probe` names one comparison point on both sides (a source layer and an ONNX tensor, or two ONNX
tensors) and its size. ``chunks`` exposes consecutive probes until their bytes reach the budget, compares
them and drops the arrays before the next chunk; every probe is measured. ``bisect`` exposes a few probes
spread over the range still in doubt, keeps the half where the first failure lies, and repeats: it
measures only ``~k·log_k(n)`` probes, assuming an error, once in, stays (it names the first failing
*probed* point). Each chunk or step is one run of each side (one onnxruntime session with those tensors
exposed); the counts are reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Literal, Sequence

import numpy as np

from onnxmend.runtime.compare import Comparator, Tolerance
from onnxmend.runtime.layers.layout import Perm, to_frame

Capture = Callable[[Sequence[str]], dict[str, np.ndarray]]
Strategy = Literal["chunks", "bisect"]
DEFAULT_BUDGET = 256 * 2**20  # bytes of exposed tensors per run, both sides together
BISECT_FANOUT = 4


@dataclass(frozen=True)
class Probe:
    label: str
    ref_key: str  # what the reference side captures (a source layer, or an ONNX tensor)
    act_key: str  # the ONNX tensor on the side under test
    ref_perm: Perm | None = None  # reference array = transpose(frame, perm); None: already in the frame
    act_perm: Perm | None = None
    nbytes: int = 0


@dataclass(frozen=True)
class ProbeResult:
    probe: Probe
    verdict: str  # "pass", "mismatch", "degenerate", "missing"
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    cosine: float = float("nan")
    rel_l2: float = float("nan")  # ‖ref − act‖ / ‖ref‖
    scale: float = 1.0
    shape: tuple[int, ...] = ()
    reason: str = ""
    needed_atol: float = float("nan")  # the smallest atol (× scale, at this rtol) that would have passed

    @property
    def failed(self) -> bool:
        return self.verdict == "mismatch"

    def to_json(self) -> dict[str, object]:
        return {"label": self.probe.label, "reference": self.probe.ref_key, "tensor": self.probe.act_key,
                "verdict": self.verdict, "max_abs": _num(self.max_abs), "max_rel": _num(self.max_rel),
                "cosine": _num(self.cosine), "rel_l2": _num(self.rel_l2), "scale": _num(self.scale),
                "needed_atol": _num(self.needed_atol), "shape": list(self.shape), "reason": self.reason}


@dataclass
class ProbeRun:
    results: list[ProbeResult]
    strategy: str
    runs: int = 0  # runs of each side (one exposed onnxruntime session each)
    peak_bytes: int = 0  # the largest chunk of captured arrays held at once
    seconds: float = 0.0
    capture_seconds: float = 0.0  # of ``seconds``: running both sides with the tensors exposed
    notes: list[str] = field(default_factory=list)


def run_probes(probes: Sequence[Probe], reference: Capture, actual: Capture, tolerance: Tolerance,
               budget: int = DEFAULT_BUDGET, strategy: Strategy = "chunks") -> ProbeRun:
    start = time.perf_counter()
    engine = _Engine(reference, actual, Comparator(tolerance))
    if strategy == "bisect":
        results = engine.bisect(list(probes), budget)
    else:
        results = [r for chunk in _chunks(probes, budget) for r in engine.measure(chunk)]
    return ProbeRun(results, strategy, engine.runs, engine.peak, time.perf_counter() - start, engine.capture_seconds)


def _chunks(probes: Sequence[Probe], budget: int) -> list[list[Probe]]:
    chunks: list[list[Probe]] = [[]]
    held = 0
    for probe in probes:
        if chunks[-1] and held + probe.nbytes > budget:
            chunks.append([])
            held = 0
        chunks[-1].append(probe)
        held += probe.nbytes
    return [c for c in chunks if c]


class _Engine:
    def __init__(self, reference: Capture, actual: Capture, comparator: Comparator) -> None:
        self.reference, self.actual, self.comparator = reference, actual, comparator
        self.runs = 0
        self.peak = 0
        self.capture_seconds = 0.0

    def measure(self, chunk: Sequence[Probe]) -> list[ProbeResult]:
        start = time.perf_counter()
        refs = self.reference(list(dict.fromkeys(p.ref_key for p in chunk)))
        acts = self.actual(list(dict.fromkeys(p.act_key for p in chunk)))
        self.capture_seconds += time.perf_counter() - start
        self.runs += 1
        self.peak = max(self.peak, sum(v.nbytes for v in refs.values()) + sum(v.nbytes for v in acts.values()))
        results = [self._compare(p, refs.get(p.ref_key), acts.get(p.act_key)) for p in chunk]
        del refs, acts
        return results

    def bisect(self, probes: list[Probe], budget: int) -> list[ProbeResult]:
        """Keep the first failing probe's neighbourhood; the results hold every probe measured, in order."""
        measured: dict[int, ProbeResult] = {}
        low, high = 0, len(probes) - 1  # the first failure lies in [low, high] (if any)
        if not probes:
            return []
        while True:
            pending = [i for i in _spread(low, high, BISECT_FANOUT) if i not in measured]
            if not pending:
                break
            for chunk in _chunks([probes[i] for i in pending], budget):
                for result in self.measure(chunk):
                    measured[probes.index(result.probe)] = result
            failing = [i for i in range(low, high + 1) if i in measured and measured[i].failed]
            passing = [i for i in range(low, high + 1) if i in measured and not measured[i].failed]
            if not failing:
                break
            first = failing[0]
            low, high = max([i for i in passing if i < first], default=low - 1) + 1, first
            if high - low <= 0 or all(i in measured for i in range(low, high + 1)):
                break
        return [measured[i] for i in sorted(measured)]

    def _compare(self, probe: Probe, ref: np.ndarray | None, act: np.ndarray | None) -> ProbeResult:
        if ref is None or act is None:
            side = "the reference" if ref is None else "the ONNX graph"
            return ProbeResult(probe, "missing", reason=f"{side} did not produce it")
        ref = to_frame(np.asarray(ref), probe.ref_perm)
        act = to_frame(np.asarray(act), probe.act_perm, tuple(ref.shape))
        if ref.shape != act.shape and ref.size != act.size:
            return ProbeResult(probe, "mismatch", shape=tuple(ref.shape),
                               reason=f"shape {tuple(act.shape)} vs {tuple(ref.shape)}")
        o = self.comparator.compare_arrays(probe.label, ref, act.reshape(ref.shape))
        # ‖ref − x‖ / ‖ref‖ from the SQNR the comparator computed (None: identical)
        rel = 0.0 if o.sqnr_db is None else (float("inf") if o.sqnr_db == float("-inf") else 10 ** (-o.sqnr_db / 20))
        return ProbeResult(probe, o.verdict, o.max_abs, o.max_rel, o.cosine, rel, o.scale, tuple(ref.shape), o.reason,
                           o.needed_atol)


def _spread(low: int, high: int, k: int) -> list[int]:
    """Up to ``k`` indices spread over [low, high], always including ``high``."""
    if high < low:
        return []
    count = min(k, high - low + 1)
    return sorted({low + round((high - low) * (j + 1) / count) for j in range(count)} | {high})


def _num(value: float) -> float | None:
    return None if value != value or value in (float("inf"), float("-inf")) else float(value)
