"""Comparing two sets of outputs: the numbers, the verdict, and the tolerance that would have passed.

A :class:`Comparator` pairs outputs by name (frameworks rename outputs, so by order when the names
differ), computes every metric of :mod:`~onnxmend.runtime.compare.metrics` per pair plus any extra ones it
was given, and judges each pair with its criterion:

- :class:`Tolerance` — ``|ref − x| ≤ atol·max(1, max|ref|) + rtol·|ref|`` everywhere; the report gives the
  atol/rtol that would have passed. A reference that is near-constant or near-zero makes such a
  comparison meaningless (a random-weight classifier whose logits are all ~1e-11 "matches" anything
  small), so it is ``degenerate``, never ``pass``.
- :class:`Thresholds` — minimum cosine, SQNR and top-1 agreement, for artifacts that are meant to differ a
  little (int8).
- :class:`QuantizationSteps` — ``|ref − x| ≤ steps · step`` everywhere, for the integer outputs of a
  quantized source model (a TFLite int8 model's output against its ONNX conversion: kernels that
  requantize in another order land one step apart). Scale is 1: max abs is in the output's own units, so
  for an int8 output it *is* the number of steps. Given per output (``Comparator(per_output=...)``).

``compare_batches`` concatenates several seeded batches per output before measuring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence, Union

import numpy as np

from onnxmend.runtime.compare.metrics import BUILT_IN, Metric

Verdict = Literal["pass", "mismatch", "degenerate"]

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
# Below these the reference carries no signal worth comparing against.
DEGENERATE_STD = 1e-6
DEGENERATE_ABS = 1e-6


@dataclass(frozen=True)
class Tolerance:
    """allclose with ``atol`` relative to each output's scale ``max(1, max|ref|)``."""

    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL


@dataclass(frozen=True)
class Thresholds:
    """Minimum scores an approximate artifact must reach on every output."""

    min_cosine: float = 0.99
    min_sqnr: float | None = None
    min_top1: float | None = None


@dataclass(frozen=True)
class QuantizationSteps:
    """At most ``steps`` quantization steps of size ``step`` (in the output's units) apart, everywhere."""

    step: float = 1.0
    steps: float = 1.0


Criterion = Union[Tolerance, Thresholds, QuantizationSteps]


@dataclass(frozen=True)
class OutputComparison:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    sqnr_db: float | None  # None: the two are identical
    top1: float | None  # None: not classifier-shaped
    scale: float  # max(1, max |reference|): atol is applied relative to it
    ref_std: float
    atol: float
    rtol: float
    needed_atol: float  # smallest atol (at this rtol, times scale) that would have passed
    needed_rtol: float  # smallest rtol (at this atol) that would have passed
    verdict: Verdict
    reason: str = ""
    extra: dict[str, float | None] = field(default_factory=dict)

    @property
    def max_abs_scaled(self) -> float:
        return self.max_abs / self.scale

    def to_json(self) -> dict[str, object]:
        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["shape"] = list(self.shape)
        data["max_abs_scaled"] = self.max_abs_scaled
        return data


@dataclass(frozen=True)
class Comparison:
    outputs: list[OutputComparison]
    reference: str = ""  # what the outputs were compared with, e.g. "fp32 ONNX", "source (torch)"
    batches: int = 1

    @property
    def verdict(self) -> Verdict:
        verdicts = {o.verdict for o in self.outputs}
        if "mismatch" in verdicts:
            return "mismatch"
        if "degenerate" in verdicts or not self.outputs:
            return "degenerate"
        return "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def failures(self) -> list[str]:
        """One line per output that did not pass, naming what it was compared with."""
        where = f" vs {self.reference}" if self.reference else ""
        return [f"{o.name}{where}: {o.reason}" for o in self.outputs if o.verdict != "pass"]

    @property
    def worst_max_abs_scaled(self) -> float:
        return max((o.max_abs_scaled for o in self.outputs), default=0.0)

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "reference": self.reference, "batches": self.batches,
                "outputs": [o.to_json() for o in self.outputs], "failures": self.failures}


class Comparator:
    """Pairs outputs, measures them with every metric, and judges them with one criterion."""

    def __init__(self, criterion: Criterion | None = None, extra_metrics: Mapping[str, Metric] | None = None,
                 reference: str = "", per_output: Mapping[str, Criterion] | None = None) -> None:
        self.criterion = criterion or Tolerance()
        self.extra_metrics = dict(extra_metrics or {})
        self.reference = reference
        self.per_output = dict(per_output or {})  # output name -> its own criterion

    def compare(self, reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]) -> Comparison:
        """Compare outputs by name; when names differ (frameworks rename outputs) fall back to order."""
        outputs = [self.compare_arrays(n, r, a) for n, r, a in pair_outputs(reference, actual)]
        return Comparison(outputs, self.reference)

    def compare_batches(self, references: Sequence[Mapping[str, np.ndarray]],
                        actuals: Sequence[Mapping[str, np.ndarray]]) -> Comparison:
        """Several seeded batches, concatenated per output along axis 0, then compared as one."""
        pairs = [pair_outputs(r, a) for r, a in zip(references, actuals)]
        outputs = []
        for k, (name, _, _) in enumerate(pairs[0]):
            ref = np.concatenate([_rows(p[k][1]) for p in pairs])
            act = np.concatenate([_rows(p[k][2]) for p in pairs])
            outputs.append(self.compare_arrays(name, ref, act))
        return Comparison(outputs, self.reference, len(pairs))

    def compare_arrays(self, name: str, reference: np.ndarray, actual: np.ndarray) -> OutputComparison:
        ref = np.asarray(reference, dtype=np.float64)
        act = np.asarray(actual, dtype=np.float64)
        if ref.shape != act.shape:
            if ref.size != act.size:
                return _shape_mismatch(name, ref, act, self.criterion)
            act = act.reshape(ref.shape)
        values = {key: fn(ref, act) for key, fn in BUILT_IN.items()}
        extra = {key: fn(ref, act) for key, fn in self.extra_metrics.items()}
        criterion = self.per_output.get(name, self.criterion)
        if isinstance(criterion, Tolerance):
            return _judge_tolerance(name, ref, act, values, criterion, extra)
        if isinstance(criterion, QuantizationSteps):
            return _judge_steps(name, ref, act, values, criterion, extra)
        return _judge_thresholds(name, ref, act, values, criterion, extra)


def pair_outputs(reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray]
                 ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, reference, actual) per output: by name when the names agree, else by order."""
    if set(reference) == set(actual):
        return [(n, reference[n], actual[n]) for n in reference]
    if len(reference) == len(actual):
        return [(a, r, actual[a]) for (_, r), a in zip(reference.items(), actual)]
    raise ValueError(
        f"the reference has {len(reference)} output(s) and the model {len(actual)}; they cannot be paired"
    )


def _rows(value: np.ndarray) -> np.ndarray:
    value = np.asarray(value)
    return value.reshape(1, -1) if value.ndim < 2 else value


def _judge_tolerance(name: str, ref: np.ndarray, act: np.ndarray, m: dict, tol: Tolerance,
                     extra: dict) -> OutputComparison:
    diff = np.abs(ref - act)
    abs_ref = np.abs(ref)
    scale = max(1.0, float(abs_ref.max()) if ref.size else 0.0)
    ref_std = float(ref.std()) if ref.size else 0.0
    needed_atol = float(np.maximum(diff - tol.rtol * abs_ref, 0).max() / scale) if diff.size else 0.0
    needed_rtol = float((np.maximum(diff - tol.atol * scale, 0) / np.maximum(abs_ref, 1e-12)).max()) if diff.size else 0.0
    finite = bool(np.isfinite(act).all())
    close = finite and bool(np.all(diff <= tol.atol * scale + tol.rtol * abs_ref))
    verdict: Verdict
    reason = ""
    if not np.isfinite(ref).all():
        verdict, reason = "degenerate", "the reference output contains NaN or Inf"
    elif ref.size and (float(abs_ref.max()) < DEGENERATE_ABS):
        verdict, reason = "degenerate", f"the reference output is near zero (max |x| = {abs_ref.max():.2e})"
    elif ref.size > 1 and ref_std < DEGENERATE_STD * scale:
        verdict, reason = "degenerate", f"the reference output is near constant (std = {ref_std:.2e})"
    elif close:
        verdict = "pass"
    else:
        verdict = "mismatch"
        reason = "non-finite values in the output" if not finite else (
            f"max abs diff {m['max_abs']:.3g} exceeds atol {tol.atol:g}×{scale:.3g} + rtol {tol.rtol:g}×|ref|"
        )
    return OutputComparison(
        name, tuple(ref.shape), m["max_abs"], m["mean_abs"], m["max_rel"], m["cosine"], m["sqnr_db"], m["top1"],
        scale, ref_std, tol.atol, tol.rtol, needed_atol, needed_rtol, verdict, reason, extra,
    )


def _judge_steps(name: str, ref: np.ndarray, act: np.ndarray, m: dict, q: QuantizationSteps,
                 extra: dict) -> OutputComparison:
    allowed = q.steps * q.step
    taken = m["max_abs"] / q.step
    extra = {**extra, "quantization_step": q.step, "steps": taken}
    ref_std = float(ref.std()) if ref.size else 0.0
    verdict: Verdict = "pass"
    reason = ""
    if ref.size > 1 and ref_std < q.step:
        verdict, reason = "degenerate", f"the reference output is near constant (std {ref_std:.3g} < one step {q.step:g})"
    elif not np.isfinite(act).all() or m["max_abs"] > allowed * (1 + 1e-6):
        verdict = "mismatch"
        reason = f"max abs diff {m['max_abs']:.3g} is {taken:.3g} quantization steps of {q.step:g} (allowed {q.steps:g})"
    return OutputComparison(
        name, tuple(ref.shape), m["max_abs"], m["mean_abs"], m["max_rel"], m["cosine"], m["sqnr_db"], m["top1"],
        1.0, ref_std, allowed, 0.0, m["max_abs"], m["max_rel"], verdict, reason, extra,
    )


def _judge_thresholds(name: str, ref: np.ndarray, act: np.ndarray, m: dict, th: Thresholds,
                      extra: dict) -> OutputComparison:
    failures = []
    if m["cosine"] < th.min_cosine:
        failures.append(f"cosine {m['cosine']:.5f} < {th.min_cosine}")
    if th.min_sqnr is not None and m["sqnr_db"] is not None and m["sqnr_db"] < th.min_sqnr:
        failures.append(f"SQNR {m['sqnr_db']:.1f} dB < {th.min_sqnr} dB")
    if th.min_top1 is not None and m["top1"] is not None and m["top1"] < th.min_top1:
        failures.append(f"top-1 agreement {m['top1']:.3f} < {th.min_top1}")
    scale = max(1.0, float(np.abs(ref).max()) if ref.size else 0.0)
    return OutputComparison(
        name, tuple(ref.shape), m["max_abs"], m["mean_abs"], m["max_rel"], m["cosine"], m["sqnr_db"], m["top1"],
        scale, float(ref.std()) if ref.size else 0.0, 0.0, 0.0, m["max_abs"] / scale, m["max_rel"],
        "mismatch" if failures else "pass", "; ".join(failures), extra,
    )


def _shape_mismatch(name: str, ref: np.ndarray, act: np.ndarray, criterion: Criterion) -> OutputComparison:
    atol = criterion.atol if isinstance(criterion, Tolerance) else 0.0
    rtol = criterion.rtol if isinstance(criterion, Tolerance) else 0.0
    inf = float("inf")
    return OutputComparison(
        name, tuple(ref.shape), inf, inf, inf, 0.0, -inf, None, 1.0, float(ref.std()) if ref.size else 0.0,
        atol, rtol, inf, inf, "mismatch", f"shape {tuple(act.shape)} does not match the reference shape {tuple(ref.shape)}",
    )
