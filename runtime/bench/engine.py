"""The timing engine of ``onnxmend bench``: cold run, warm-up, and interleaved rounds with rotating order.

Pure timing over callables and an injectable clock (``time.perf_counter_ns`` in :func:`onnxmend.runtime.bench.bench`);
the measurement procedure is described in :mod:`onnxmend.runtime.bench`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

Clock = Callable[[], int]


@dataclass
class Samples:
    """Raw timings of one subject in one cell: cold run, warm-up, and the timed rounds."""

    cold_ns: int | None = None
    warmup_ns: list[int] = field(default_factory=list)
    rounds: list[list[int]] = field(default_factory=list)

    @property
    def timed_ns(self) -> list[int]:
        return [t for block in self.rounds for t in block]


def time_once(fn: Callable[[], object], clock: Clock) -> int:
    start = clock()
    fn()
    return clock() - start


def plan_blocks(estimate_ns: float, runs: int | None, budget_s: float | None, rounds: int) -> list[int]:
    """How many runs a subject does in each round: ``runs`` split evenly, or filling ``budget_s``, or both."""
    if runs is not None:
        rounds = min(rounds, runs)
        per_round = [runs // rounds + (1 if r < runs % rounds else 0) for r in range(rounds)]
    else:
        per_round = [math.inf] * rounds
    if budget_s is not None:
        fits = max(1, int(budget_s * 1e9 / rounds / max(estimate_ns, 1.0)))
        per_round = [min(n, fits) for n in per_round]
    return [int(n) for n in per_round]


def measure_interleaved(
    fns: Sequence[Callable[[], object]], warmup: int, runs: int | None, budget_s: float | None,
    rounds: int, clock: Clock, samples: Sequence[Samples] | None = None,
) -> tuple[list[Samples], list[str]]:
    """Warm up each subject, then run them in interleaved rounds. ``samples`` may carry cold timings."""
    samples = list(samples) if samples is not None else [Samples() for _ in fns]
    for fn, sample in zip(fns, samples):
        sample.warmup_ns = [time_once(fn, clock) for _ in range(warmup)]
    plans = [plan_blocks(_estimate(s), runs, budget_s, rounds) for s in samples]
    n_rounds = min(len(p) for p in plans)
    # Warm-up can under-predict; past three times the budget, blocks shrink to one run and rounds stop.
    deadline = None if budget_s is None else clock() + int(3 * budget_s * 1e9 * len(fns))
    notes = []
    for r in range(n_rounds):
        # Rotating the starting subject each round spreads order effects (whoever runs after a session
        # whose threads still spin, or after a cache flush) over all subjects alike.
        for i in _rotation(len(fns), r):
            samples[i].rounds.append(_block(fns[i], plans[i][r], clock, deadline))
        if deadline is not None and clock() > deadline and r + 1 < n_rounds:
            notes.append(f"stopped after {r + 1} of {n_rounds} rounds: runs were slower than the warm-up predicted")
            break
    return samples, notes


def _rotation(count: int, round_index: int) -> list[int]:
    start = round_index % count
    return list(range(start, count)) + list(range(start))


def _block(fn: Callable[[], object], count: int, clock: Clock, deadline: int | None) -> list[int]:
    timings = [time_once(fn, clock)]
    while len(timings) < count and (deadline is None or clock() <= deadline):
        timings.append(time_once(fn, clock))
    return timings


def _estimate(sample: Samples) -> float:
    timings = sample.warmup_ns or ([sample.cold_ns] if sample.cold_ns else [])
    return float(np.median(timings)) if timings else 1e6
