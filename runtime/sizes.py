"""Input sizes a graph can actually run, found by trying: what the numeric gate and validation feed.

A dynamic axis is not a size. A detector whose H/W must be a multiple of 32 fails a broadcast at 8; an
audio model's reflect Pad needs 64 samples or more; a rewrite that crops a dynamic axis to 8 or keeps only
batch element 0 is exact at one size and wrong at every other. So for each model the planner finds:

1. a *primary* size: the declared/traced one when given, else the first of a ladder of realistic sizes
   (8, 16, 32, 64, 128, 224, 256, 512, 1024, 16000 — one value for every non-batch dynamic axis) at which
   the reference runs;
2. a *second* size for the non-batch dynamic axes, odd when the model accepts odd sizes, else another size
   it accepts;
3. batch 3 beside batch 1 when the batch axis is dynamic.

A size whose inputs would take more than :data:`PROBE_BUDGET_BYTES` is passed over, and a run that hangs
or runs out of memory in the worker ends the search: every larger size would cost the full time limit
again. Each run that succeeds is kept as a reference (:class:`FeedSet`); what failed is recorded, so when
nothing runs the reason lists the sizes tried. Axes that share a symbolic name (``seq`` in ``input_ids``
and ``attention_mask``) get the same size.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.core.worker import WorkerFailure
from onnxmend.runtime.inputs import synthesize

LADDER = (8, 16, 32, 64, 128, 224, 256, 512, 1024, 16000)
BATCHES = (1, 3)
MAX_PROBES = 14
# Inputs at a size the planner picks stay below this (declared and --input sizes are the user's to choose).
PROBE_BUDGET_BYTES = 256 << 20

Run = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True)
class FeedSet:
    """One set of inputs and the reference outputs on them."""

    label: str
    feeds: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]


@dataclass
class SizePlan:
    sets: list[FeedSet] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "batch 1, dynamic dims 8: <why>"
    # Set when a run hung or ran out of memory: no further size is tried (each would cost the full limit).
    halted: str = ""

    @property
    def runnable(self) -> bool:
        return bool(self.sets)

    def unavailable(self, what: str) -> str:
        tried = "; ".join(self.failures[:4]) + (f"; and {len(self.failures) - 4} more" if len(self.failures) > 4 else "")
        return f"{what} cannot run at any input size tried ({tried})"


def plan_sizes(specs: Sequence[TensorSpec], run: Run, seed: int = 0,
               given: Mapping[str, np.ndarray] | None = None) -> SizePlan:
    """Feed sets ``run`` accepts: the primary size, a second size, batch 3 — as many as the axes allow."""
    symbols = _symbols(specs)
    batch = {s for s, positions in symbols.items() if any(axis == 0 for _, axis in positions)}
    others = [s for s in symbols if s not in batch]
    plan = SizePlan()
    primary = _primary(specs, symbols, batch, others, run, seed, given, plan)
    if primary is None:
        return plan
    plan.sets.append(primary[1])
    _more_sizes(specs, symbols, batch, others, primary[0], run, seed, plan)
    return plan


def plan_samples(specs: Sequence[TensorSpec], run: Run, samples: Sequence[Mapping[str, np.ndarray]], what: str,
                 seed: int = 0, more_sizes: bool = False) -> SizePlan:
    """The reference on every loaded sample (one sentence naming the first it cannot run); with
    ``more_sizes``, also the second size and batch 3 beside the first sample's sizes, synthesised."""
    plan = SizePlan()
    for index, feeds in enumerate(samples):
        try:
            outputs = run(feeds)
        except Exception as exc:  # the user's data does not fit the model: say which sample and why
            raise OnnxmendError(f"{what} cannot run on loaded sample {index} ({first_line(exc, 200)}).") from exc
        plan.sets.append(FeedSet(f"sample {index}", dict(feeds), outputs))
    if more_sizes and plan.sets:
        symbols = _symbols(specs)
        batch = {s for s, positions in symbols.items() if any(axis == 0 for _, axis in positions)}
        others = [s for s in symbols if s not in batch]
        sizes = _sizes_of(plan.sets[0].feeds, symbols)
        _more_sizes(specs, symbols, batch, others, sizes, run, seed, plan)
    return plan


def _more_sizes(specs, symbols, batch, others, primary: dict[str, int], run, seed, plan) -> None:
    if others:
        _second(specs, symbols, batch, others, primary, run, seed, plan)
    if batch:
        sizes = {**primary, **{s: BATCHES[1] for s in batch}}
        found = _try(specs, symbols, sizes, run, seed, plan, _label(sizes, batch))
        if found is not None:
            plan.sets.append(found)


def _symbols(specs: Sequence[TensorSpec]) -> dict[str, list[tuple[str, int]]]:
    """Each dynamic axis under its symbol: its dim_param, or a name of its own when it has none."""
    found: dict[str, list[tuple[str, int]]] = {}
    for spec in specs:
        for axis, dim in enumerate(spec.shape):
            if not isinstance(dim, int):
                found.setdefault(dim if isinstance(dim, str) and dim else f"{spec.name}[{axis}]", []).append((spec.name, axis))
    return found


def _primary(specs, symbols, batch, others, run, seed, given, plan) -> tuple[dict[str, int], FeedSet] | None:
    if given is not None:
        found = _run_feeds(dict(given), run, plan, "the given inputs")
        if found is not None:
            return _sizes_of(given, symbols), FeedSet("given inputs", dict(given), found)
    ladder = LADDER if others else LADDER[:1]
    for value in ladder[:MAX_PROBES]:
        sizes = {**{s: BATCHES[0] for s in batch}, **{s: value for s in others}}
        found = _try(specs, symbols, sizes, run, seed, plan, _label(sizes, batch))
        if found is not None:
            return sizes, found
    return None


def _second(specs, symbols, batch, others, primary: dict[str, int], run, seed, plan) -> None:
    """Another size for the non-batch axes: odd if the model takes it, else any other it takes."""
    base = max(primary[s] for s in others)
    odd = [base + 1 if base % 2 == 0 else base + 2, base - 1, 2 * base + 1, 7, 15, 33]
    even = [2 * base, base + 32, base // 2]
    for value in dict.fromkeys(v for v in odd + even if v > 0 and v != base):
        sizes = {**primary, **{s: value for s in others}}
        found = _try(specs, symbols, sizes, run, seed, plan, _label(sizes, batch), keep_failure=False)
        if found is not None:
            plan.sets.append(found)
            return
    plan.failures.append(f"no second size for the dynamic axes besides {base} runs")


def _try(specs, symbols, sizes, run, seed, plan, label, keep_failure: bool = True) -> FeedSet | None:
    if plan.halted:
        return None
    concrete = _concrete(specs, symbols, sizes)
    size = sum(int(np.prod(s.shape, dtype=np.float64)) * np.dtype(s.dtype).itemsize for s in concrete)
    if sizes and size > PROBE_BUDGET_BYTES:  # a size we chose, not one the model or the user fixed
        if keep_failure:
            plan.failures.append(f"{label}: the inputs would take {size / 1e6:.0f} MB")
        return None
    try:
        feeds = synthesize(concrete, seed=seed)
    except MemoryError:  # a declared size (a file's dims of 10^9) past what this machine can allocate
        plan.failures.append(f"{label}: its inputs ({size / 1e9:.1f} GB) cannot be allocated on this machine")
        return None
    outputs = _run_feeds(feeds, run, plan, label, keep_failure)
    if outputs is None:
        return None
    return FeedSet(label, feeds, outputs)


def _run_feeds(feeds, run, plan: SizePlan, label: str, keep_failure: bool = True) -> dict[str, np.ndarray] | None:
    try:
        return run(feeds)
    except Exception as exc:  # any failure at this size (ORT error, worker timeout or crash) means "not here"
        if isinstance(exc, WorkerFailure) and exc.kind in ("timeout", "memory"):
            plan.halted = f"{label}: {first_line(exc, 160)}"  # larger sizes would only take longer
            plan.failures.append(plan.halted)
        elif keep_failure:
            plan.failures.append(f"{label}: {first_line(exc, 160)}")
        return None


def _concrete(specs, symbols, sizes: dict[str, int]) -> list[TensorSpec]:
    at = {position: sizes[s] for s, positions in symbols.items() for position in positions}
    return [replace(spec, shape=tuple(at.get((spec.name, a), d) for a, d in enumerate(spec.shape))) for spec in specs]


def _sizes_of(feeds: Mapping[str, np.ndarray], symbols) -> dict[str, int]:
    return {s: int(np.shape(feeds[name])[axis]) for s, positions in symbols.items()
            for name, axis in positions[:1] if name in feeds}


def _label(sizes: dict[str, int], batch: set[str]) -> str:
    b = sorted({v for s, v in sizes.items() if s in batch})
    o = sorted({v for s, v in sizes.items() if s not in batch})
    parts = ([f"batch {b[0]}"] if b else []) + ([f"dynamic dims {', '.join(map(str, o))}"] if o else [])
    return ", ".join(parts) or "the declared sizes"
